"""Prometheus metrics every service exposes at /metrics."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

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
