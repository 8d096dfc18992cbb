"""The event log as the services see it: Kafka's semantics, whichever engine is behind.

Topics split into partitions; a record's key (the person's opaque id) picks its
partition, so one person's events keep their order. Consumer groups commit offsets.
The embedded SQLite log and the Kafka adapter both implement these two protocols.
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import msgspec


@dataclass(frozen=True)
class OutgoingRecord:
    topic: str
    key: str
    value: bytes
    headers: dict[str, bytes] = field(default_factory=dict)


class Record(msgspec.Struct, frozen=True, gc=False, array_like=True):
    """A record read from the log.

    A msgspec Struct rather than a frozen dataclass: a log hands out records by the
    hundred thousand on a replay, and a Struct is built by one C call with no attribute
    dict. The embedded log stores runs of records encoded as arrays of these fields
    (array_like: no field names repeated per record), and a page of them is decoded
    straight into records in one call (ADR 0026). Outside the cyclic collector
    (gc=False): a record holds strings, bytes, ints and a mapping of strings to bytes,
    so it can never be part of a reference cycle, and tracking it only made the collector
    walk every record.
    """

    topic: str
    partition: int
    offset: int
    key: str
    value: bytes
    timestamp_ms: int
    headers: Mapping[str, bytes] = msgspec.field(default_factory=dict)
    _log_position: int | None = None
    """Where an embedded log keeps the record (its commit() stores it); not part of the
    record's value: not compared, not shown."""

    def __eq__(self, other: object) -> bool:
        if type(other) is not Record:
            return NotImplemented
        return _fields_of(self) == _fields_of(other)

    __hash__ = None  # type: ignore[assignment]  # unhashable, as the dataclass was

    def __repr__(self) -> str:
        return f"Record({', '.join(f'{n}={getattr(self, n)!r}' for n in _SHOWN_FIELDS)})"


_SHOWN_FIELDS = Record.__struct_fields__[:-1]


def _fields_of(record: Record) -> tuple[object, ...]:
    return tuple(getattr(record, name) for name in _SHOWN_FIELDS)


def partition_for(key: str, partitions: int) -> int:
    """A stable partition for a key (CRC32, the same in every process and run)."""
    return zlib.crc32(key.encode("utf-8")) % partitions


class Consumer(Protocol):
    async def poll(self, max_records: int = 500, timeout_ms: int = 1000) -> list[Record]:
        """The next records after this consumer's position; empty after the timeout."""
        ...

    async def commit(self, records: Sequence[Record]) -> None:
        """Record that these records (and all before them in their partitions) are done.

        It may return before the log has stored the offsets (Kafka's round trip overlaps
        the caller's next poll); the next commit, poll, seek or close waits for it, and a
        failure is raised by the next commit, poll or seek. Callers commit only after their
        own transaction, so a lost offset commit means records delivered again, never lost."""
        ...

    async def seek_to_beginning(self) -> None: ...

    async def seek_to_time(self, timestamp_ms: int) -> dict[tuple[str, int], int]:
        """Move each partition to its first record at or after the time (or to its end
        when it has none); returns the offset each (topic, partition) now stands at."""
        ...

    async def end_offsets(self) -> dict[tuple[str, int], int]:
        """The next offset to be written, per (topic, partition): for progress bars."""
        ...

    async def close(self) -> None: ...


class EventLog(Protocol):
    async def start(self) -> None: ...

    async def close(self) -> None: ...

    async def ensure_topics(self, topics: Sequence[str]) -> None: ...

    async def publish(self, records: Sequence[OutgoingRecord]) -> None:
        """Append records durably; returns only once the log has accepted all of them."""
        ...

    def consumer(self, group_id: str, topics: Sequence[str]) -> Consumer:
        """A consumer in a group, starting from the group's committed offsets."""
        ...

    async def ready(self) -> bool:
        """True when the log can take and serve records now."""
        ...
