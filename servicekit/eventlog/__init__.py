"""Event log adapters: the embedded SQLite log and Apache Kafka, behind one protocol."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qsl

from servicekit.eventlog.base import Consumer, EventLog, OutgoingRecord, Record, partition_for

__all__ = ["Consumer", "EventLog", "OutgoingRecord", "Record", "open_event_log", "partition_for"]


def open_event_log(url: str) -> EventLog:
    """`sqlite:///PATH` for the embedded log, `kafka://HOST:PORT[,HOST:PORT]` for Kafka.

    A Kafka URL may carry `?namespace=NAME` to prefix every topic and group id.
    """
    if url.startswith("sqlite:///"):
        from servicekit.eventlog.embedded import EmbeddedEventLog

        return EmbeddedEventLog(Path(url.removeprefix("sqlite:///")))
    if url.startswith("kafka://"):
        from servicekit.eventlog.kafka import KafkaEventLog

        bootstrap, _, query = url.removeprefix("kafka://").partition("?")
        options = dict(parse_qsl(query))
        unknown = set(options) - {"namespace"}
        if unknown:
            raise ValueError(f"unknown Kafka URL option(s) {sorted(unknown)}: only namespace")
        return KafkaEventLog(bootstrap, namespace=options.get("namespace", ""))
    raise ValueError(f"unknown event log URL {url!r}: use sqlite:///PATH or kafka://HOST:PORT")
