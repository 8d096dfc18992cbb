"""The embedded event log keeps Kafka's semantics (ADR 0001): tests/event_log_contract.py."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from servicekit.eventlog import open_event_log, partition_for
from servicekit.eventlog.embedded import EmbeddedEventLog
from tests.event_log_contract import EventLogContract, drain


class TestEmbeddedEventLog(EventLogContract):
    @pytest.fixture
    async def log(self, tmp_path: Path) -> AsyncIterator[EmbeddedEventLog]:
        event_log = EmbeddedEventLog(tmp_path / "log.db")
        await event_log.start()
        yield event_log
        await event_log.close()

    def partition_of(self, log: EmbeddedEventLog, key: str) -> int:
        return partition_for(key, log.partitions)


async def test_several_processes_append_to_one_log_without_losing_a_record(tmp_path: Path):
    path = tmp_path / "shared.db"
    script = (
        "import asyncio, sys\n"
        "from servicekit.eventlog.embedded import EmbeddedEventLog\n"
        "from servicekit.eventlog import OutgoingRecord\n"
        "async def main():\n"
        f"    log = EmbeddedEventLog(__import__('pathlib').Path({str(path)!r}))\n"
        "    await log.start()\n"
        "    for i in range(50):\n"
        "        await log.publish([OutgoingRecord('pb.t', f'P{i % 5}', sys.argv[1].encode())])\n"
        "asyncio.run(main())\n"
    )
    writers = [subprocess.Popen([sys.executable, "-c", script, f"w{n}"]) for n in range(3)]
    assert [w.wait(60) for w in writers] == [0, 0, 0]
    log = open_event_log(f"sqlite:///{path}")
    await log.start()
    records = await drain(log.consumer("g", ["pb.t"]), expect=150)
    await log.close()
    assert len(records) == 150
    offsets = {(r.partition, r.offset) for r in records}
    assert len(offsets) == 150


def test_an_unknown_log_url_is_refused_with_the_forms_it_accepts():
    with pytest.raises(ValueError, match="sqlite:///PATH or kafka://HOST:PORT"):
        open_event_log("redis://localhost")
