"""Event log adapters: the embedded SQLite log and Apache Kafka, behind one protocol."""

from __future__ import annotations

from pathlib import Path

from servicekit.eventlog.base import Consumer, EventLog, OutgoingRecord, Record, partition_for

__all__ = ["Consumer", "EventLog", "OutgoingRecord", "Record", "open_event_log", "partition_for"]


def open_event_log(url: str) -> EventLog:
    """`sqlite:///PATH` for the embedded log, `kafka://HOST:PORT[,HOST:PORT]` for Kafka."""
    if url.startswith("sqlite:///"):
        from servicekit.eventlog.embedded import EmbeddedEventLog

        return EmbeddedEventLog(Path(url.removeprefix("sqlite:///")))
    if url.startswith("kafka://"):
        from servicekit.eventlog.kafka import KafkaEventLog  # type: ignore[import-not-found]

        return KafkaEventLog(url.removeprefix("kafka://"))  # type: ignore[no-any-return]
    raise ValueError(f"unknown event log URL {url!r}: use sqlite:///PATH or kafka://HOST:PORT")
