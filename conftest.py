"""Fixtures every test folder shares."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from hypothesis import settings

from servicekit.auth import ensure_dev_keys
from servicekit.testing import POLICIES_DIR, Tokens

# Hypothesis's per-example deadline is a timing assertion: on a shared two-core machine it
# fails by the load, not by the code. Speed is measured in bench/, not in tests.
settings.register_profile("pb-journey", deadline=None)
settings.load_profile("pb-journey")


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    """A fresh data directory: SQLite files, the embedded log and the signing key."""
    return tmp_path


@pytest.fixture(scope="session")
def signing_keys(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """One development key pair for the session: an RSA key takes ~40 ms to generate, and
    most tests start an app with a data directory of its own."""
    return ensure_dev_keys(tmp_path_factory.mktemp("keys"))


@pytest.fixture
def tokens(data_dir: Path, signing_keys: tuple[Path, Path]) -> Tokens:
    """Tokens signed with the key the data directory's services will trust: the session's
    pair, unless something in the test made the directory a pair of its own first."""
    if not (data_dir / signing_keys[0].name).exists():
        for key in signing_keys:
            shutil.copy(key, data_dir / key.name)
    return Tokens(data_dir)


@pytest.fixture
def policies_dir() -> Path:
    return POLICIES_DIR
