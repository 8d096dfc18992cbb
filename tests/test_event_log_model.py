"""The embedded log against a model of Kafka's semantics, over random sequences of calls.

The model is a list of records per (topic, partition) and, per consumer group, the next
offset it will be handed and the offset it committed. Hypothesis drives appends of
records of three topics in batches of any size, polls of any page size by three groups
that read different topics, commits, consumers restarted (resuming from their group's
committed offsets), rewinds, and the log itself closed and opened again. After every
step the log must agree with the model:

- a poll hands a group, partition by partition, exactly the model's next records of its
  own topics, in offset order, never more than the page it asked for, and something
  whenever the model says there is something to read;
- a restarted consumer resumes at its group's committed offsets: what it had been handed
  but not committed comes again, nothing committed does;
- the end offsets are the model's, and every record keeps its key, value and headers.

Runs are cut at three records here (ADR 26 keeps up to 128), so appends span several
runs and polls stop inside them at every turn.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from servicekit.eventlog import OutgoingRecord, Record, embedded, partition_for
from servicekit.eventlog.embedded import EmbeddedConsumer, EmbeddedEventLog

T = TypeVar("T")

TOPICS = ("pb.a", "pb.b", "pb.c")
GROUPS = {"everything": list(TOPICS), "only-a": ["pb.a"], "b-and-c": ["pb.b", "pb.c"]}
KEYS = ("P1", "P2", "P3")
PARTITIONS = embedded.DEFAULT_PARTITIONS
Slot = tuple[str, int]

outgoing_records = st.lists(
    st.tuples(
        st.sampled_from(TOPICS),
        st.sampled_from(KEYS),
        st.sampled_from([{}, {"content-type": b"application/cloudevents+json"}, {"n": b"7"}]),
    ),
    min_size=1,
    max_size=12,
)


class EmbeddedLogModel(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.directory = Path(tempfile.mkdtemp(prefix="pbj-log-model-"))
        self.path = self.directory / "log.db"
        self.log = EmbeddedEventLog(self.path)
        self.run(self.log.start())
        self.partitions: dict[Slot, list[tuple[str, bytes, dict[str, bytes]]]] = {}
        self.consumers: dict[str, EmbeddedConsumer] = {}
        self.handed: dict[str, dict[Slot, int]] = {}  # the next offset a group is handed
        self.committed: dict[str, dict[Slot, int]] = {}
        self.uncommitted: dict[str, list[Record]] = {}
        self.appended = 0
        for group in GROUPS:
            self.committed[group] = {}
            self.open(group)

    def run(self, work: Coroutine[Any, Any, T]) -> T:
        return self.loop.run_until_complete(work)

    def open(self, group: str) -> None:
        consumer = self.log.consumer(group, GROUPS[group])
        assert isinstance(consumer, EmbeddedConsumer)
        self.consumers[group] = consumer
        self.handed[group] = dict(self.committed[group])
        self.uncommitted[group] = []

    def unread(self, group: str) -> int:
        return sum(
            len(records) - self.handed[group].get(slot, 0)
            for slot, records in self.partitions.items()
            if slot[0] in GROUPS[group]
        )

    @rule(batch=outgoing_records)
    def append(self, batch: list[tuple[str, str, dict[str, bytes]]]) -> None:
        outgoing = []
        for topic, key, headers in batch:
            value = b"value-%d" % self.appended
            self.appended += 1
            outgoing.append(OutgoingRecord(topic, key, value, dict(headers)))
            slot = (topic, partition_for(key, PARTITIONS))
            self.partitions.setdefault(slot, []).append((key, value, dict(headers)))
        self.run(self.log.publish(outgoing))

    @rule(group=st.sampled_from(sorted(GROUPS)), page=st.integers(1, 7))
    def poll(self, group: str, page: int) -> None:
        expected = self.unread(group)
        timeout_ms = 2000 if expected else 0
        records = self.run(self.consumers[group].poll(max_records=page, timeout_ms=timeout_ms))
        assert len(records) <= page
        if expected:
            assert records, f"{group} was handed nothing with {expected} records to read"
        for record in records:
            slot = (record.topic, record.partition)
            assert record.topic in GROUPS[group], f"{group} was handed {record.topic}"
            offset = self.handed[group].get(slot, 0)
            assert record.offset == offset, f"{group} on {slot}: {record.offset}, not {offset}"
            key, value, headers = self.partitions[slot][offset]
            assert (record.key, record.value, dict(record.headers)) == (key, value, headers)
            self.handed[group][slot] = offset + 1
        self.uncommitted[group] += records

    @precondition(lambda self: any(self.uncommitted.values()))
    @rule(group=st.sampled_from(sorted(GROUPS)))
    def commit(self, group: str) -> None:
        records = self.uncommitted[group]
        self.run(self.consumers[group].commit(records))
        for record in records:
            self.committed[group][(record.topic, record.partition)] = record.offset + 1
        self.uncommitted[group] = []

    @rule(group=st.sampled_from(sorted(GROUPS)))
    def restart_consumer(self, group: str) -> None:
        self.run(self.consumers[group].close())
        self.open(group)

    @rule(group=st.sampled_from(sorted(GROUPS)))
    def rewind(self, group: str) -> None:
        self.run(self.consumers[group].seek_to_beginning())
        self.handed[group] = {}
        self.uncommitted[group] = []

    @rule()
    def reopen_log(self) -> None:
        for consumer in self.consumers.values():
            self.run(consumer.close())
        self.run(self.log.close())
        self.log = EmbeddedEventLog(self.path)
        self.run(self.log.start())
        for group in GROUPS:
            self.open(group)

    @invariant()
    def end_offsets_are_the_models(self) -> None:
        ends = self.run(self.consumers["everything"].end_offsets())
        model = {(t, p): len(self.partitions.get((t, p), [])) for t in TOPICS for p in range(4)}
        assert ends == model

    def teardown(self) -> None:
        try:
            for consumer in self.consumers.values():
                self.run(consumer.close())
            self.run(self.log.close())
        finally:
            self.loop.close()
            shutil.rmtree(self.directory, ignore_errors=True)


@pytest.fixture
def short_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(embedded, "_RUN_RECORDS", 3)


def test_the_embedded_log_keeps_kafkas_semantics_over_random_calls(short_runs: None) -> None:
    machine = settings(
        max_examples=100,
        stateful_step_count=30,
        derandomize=True,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
        database=None,
    )(EmbeddedLogModel)
    machine.TestCase().runTest()
