"""The allocation service in-process, as its tests call it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from servicekit.testing import Tokens, running
from services.allocation.api import create_app
from services.allocation.settings import Settings


@pytest.fixture
def app(data_dir: Path, policies_dir: Path) -> FastAPI:
    return create_app(Settings(data_dir=data_dir, policies_dir=policies_dir))


@pytest.fixture
async def client(app: FastAPI, tokens: Tokens) -> AsyncIterator[httpx.AsyncClient]:
    # `tokens` first: it writes the development key pair the app verifies tokens with.
    async with running(app) as c:
        yield c
