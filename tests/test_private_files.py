"""Files the product writes under its data directory are readable by their owner only."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from contracts.vocabulary import Role
from pbj.cli import app as pbj
from servicekit.testing import POLICIES_DIR, Tokens, running
from services.assessment.api import create_app
from services.assessment.settings import Settings

A_COMMON_SHELL_UMASK = 0o022


@pytest.fixture(autouse=True)
def started_from_a_common_shell() -> Iterator[None]:
    """As an operator's shell would start the process: group and others may read."""
    before = os.umask(A_COMMON_SHELL_UMASK)
    try:
        yield
    finally:
        os.umask(before)


def open_to_others(data_dir: Path) -> list[str]:
    """Everything under data_dir that its group or other users could read or enter."""
    return [
        f"{path.relative_to(data_dir)} {stat.filemode(path.stat().st_mode)}"
        for path in sorted(data_dir.rglob("*"))
        if path.stat().st_mode & 0o077
    ]


async def test_a_service_creates_its_databases_log_and_keys_for_its_owner_only(tmp_path: Path):
    data_dir = tmp_path / "var"
    app = create_app(Settings(data_dir=data_dir, policies_dir=POLICIES_DIR))
    tokens = Tokens(data_dir)
    async with running(app) as client:
        started = await client.post(
            "/v1/assessments",
            json={
                "person_id": "P1",
                "client_group": "older_people",
                "completed_by": "supported",
                "team": "North",
                "key_worker_id": "kw-1",
                "personal_details": {"name": "Ada Example", "date_of_birth": "1940-02-03"},
            },
            headers=tokens.headers(Role.CARE_MANAGER, "lancashire", **{"Idempotency-Key": "k1"}),
        )
        assert started.status_code == 201, started.text
    written = {p.name for p in data_dir.rglob("*")}
    assert {"assessment.db", "eventlog.db"} <= written
    assert open_to_others(data_dir) == []


def test_a_pbj_command_writes_its_files_for_their_owner_only(tmp_path: Path):
    data_dir = tmp_path / "var"
    minted = CliRunner().invoke(
        pbj, ["token", "--role", "care_manager", "--data-dir", str(data_dir)]
    )
    assert minted.exit_code == 0, minted.output
    assert any(data_dir.iterdir())
    assert open_to_others(data_dir) == []
