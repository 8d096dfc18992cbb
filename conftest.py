"""Fixtures every test folder shares."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import settings

from servicekit.testing import POLICIES_DIR, Tokens

# Hypothesis's per-example deadline is a timing assertion: on a shared two-core machine it
# fails by the load, not by the code. Speed is measured in bench/, not in tests.
settings.register_profile("pb-journey", deadline=None)
settings.load_profile("pb-journey")


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    """A fresh data directory: SQLite files, the embedded log and the signing key."""
    return tmp_path


@pytest.fixture
def tokens(data_dir: Path) -> Tokens:
    return Tokens(data_dir)


@pytest.fixture
def policies_dir() -> Path:
    return POLICIES_DIR
