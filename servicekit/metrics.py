"""Prometheus metrics every service exposes at /metrics (docs/operability.md lists them;
deploy/grafana/pb-journey.json charts them)."""

from __future__ import annotations

from collections.abc import Sequence

from prometheus_client import Counter, Gauge, Histogram

from servicekit.eventlog import Consumer, Record

REQUEST_LATENCY = Histogram(
    "pbj_http_request_seconds",
    "HTTP request latency",
    ["service", "method", "route", "status"],
    buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
)
OUTBOX_BACKLOG = Gauge("pbj_outbox_backlog", "Events committed but not yet published", ["service"])
OUTBOX_PUBLISHED = Counter("pbj_outbox_published_total", "Events published", ["service"])
EVENTS_CONSUMED = Counter(
    "pbj_events_consumed_total", "Events applied by a consumer", ["consumer", "outcome"]
)
CONSUMER_LAG = Gauge(
    "pbj_consumer_lag",
    "Records in the log after the last one a consumer has applied, over the partitions it "
    "has read since it started",
    ["consumer"],
)


class ConsumerProgress:
    """Where a consumer has got to in each partition, for its lag gauge."""

    def __init__(self) -> None:
        self.next_offsets: dict[tuple[str, int], int] = {}
        self.reader: Consumer | None = None

    def observe(self, reader: Consumer, records: Sequence[Record]) -> None:
        self.reader = reader
        for record in records:
            key = (record.topic, record.partition)
            self.next_offsets[key] = max(self.next_offsets.get(key, 0), record.offset + 1)

    async def lag(self) -> int | None:
        """Records not yet applied; None before the consumer has read anything."""
        if self.reader is None:
            return None
        ends = await self.reader.end_offsets()
        return sum(
            max(0, end - self.next_offsets[key])
            for key, end in ends.items()
            if key in self.next_offsets
        )
