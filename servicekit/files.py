"""Files the product writes are its owner's alone.

The data directory holds SQLite databases and their write-ahead logs, the embedded event
log, idempotency answers, exports and keys: special category personal data and the means
to act as anyone. Every process that writes there (each service, `pbj`) narrows its umask
once at start, so whatever it creates (including the files SQLite makes on its own,
which no `chmod` after the fact could cover in time) is 0600 and each directory 0700.
"""

from __future__ import annotations

import os

PRIVATE_UMASK = 0o077
"""Group and others get nothing: files 0600, directories 0700."""


def keep_files_private() -> None:
    """From now on this process creates files for its owner only."""
    os.umask(PRIVATE_UMASK)
