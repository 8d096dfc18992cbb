"""The assessment service in-process, and tokens for the roles its tests call it as."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from contracts.vocabulary import Role
from servicekit.testing import Tokens, running
from services.assessment.api import create_app
from services.assessment.settings import Settings


@pytest.fixture
def app(data_dir: Path, policies_dir: Path) -> FastAPI:
    return create_app(Settings(data_dir=data_dir, policies_dir=policies_dir))


@pytest.fixture
async def client(app: FastAPI, tokens: Tokens) -> AsyncIterator[httpx.AsyncClient]:
    # `tokens` first: it writes the development signing key the app checks tokens with.
    async with running(app) as client:
        yield client


@pytest.fixture
def care_manager(tokens: Tokens) -> dict[str, str]:
    return tokens.headers(Role.CARE_MANAGER, "lancashire", user_id="cm-1")


@pytest.fixture
def finance(tokens: Tokens) -> dict[str, str]:
    return tokens.headers(Role.FINANCE, "lancashire", user_id="fo-1")
