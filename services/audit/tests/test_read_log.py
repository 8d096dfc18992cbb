"""How a replay reads the log: to the end it had when the replay began, whatever the polls.

The consumer here hands out scripted polls, as a log does under load: empty polls before
the end (a slow fetch, a rebalance) and records handed out a second time.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pytest

from servicekit.eventlog import Record
from services.audit import rebuild
from services.audit.tests.journey import Journey


@dataclass
class Counters:
    processed: int = 0
    total: int = 0
    skipped: int = 0


class ScriptedConsumer:
    def __init__(self, polls: Sequence[list[Record]], ends: dict[tuple[str, int], int]) -> None:
        self.polls = list(polls)
        self.ends = ends

    async def poll(self, max_records: int = 500, timeout_ms: int = 1000) -> list[Record]:
        return self.polls.pop(0) if self.polls else []

    async def end_offsets(self) -> dict[tuple[str, int], int]:
        return self.ends


def records(count: int) -> list[Record]:
    envelopes = Journey("p-1").full()[:count]
    return [
        Record(
            topic="t", partition=0, offset=n, key="p-1", value=e.to_message().value, timestamp_ms=0
        )
        for n, e in enumerate(envelopes)
    ]


async def read_all(consumer: ScriptedConsumer, **options: float) -> tuple[list[str], Counters]:
    counters = Counters()
    ids = []
    async for batch in rebuild.read_log(consumer, counters, starts=None, **options):  # type: ignore[arg-type]
        ids += [facts.event_id for facts, _ in batch]
    return ids, counters


async def test_empty_polls_before_the_end_do_not_end_the_replay() -> None:
    first, second, third = records(3)
    consumer = ScriptedConsumer([[first], [], [], [first, second], [], [third]], {("t", 0): 3})
    ids, counters = await read_all(consumer)
    assert len(ids) == len(set(ids)) == 3  # the record handed out twice is read once
    assert (counters.processed, counters.total, counters.skipped) == (3, 3, 0)


async def test_a_log_that_stops_short_of_its_end_fails_the_replay() -> None:
    consumer = ScriptedConsumer([records(2)], {("t", 0): 3})
    with pytest.raises(rebuild.LogStalled, match="1 of 3 still to read"):
        await read_all(consumer, patience_seconds=0.05)
