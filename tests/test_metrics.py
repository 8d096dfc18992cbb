"""Prometheus metrics move with the work: request latency, outbox backlog, events published
and consumed, consumer lag; and the Grafana dashboard charts only metrics that exist."""

from __future__ import annotations

import asyncio
import json
import re
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

from prometheus_client import REGISTRY, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from contracts.events import AssessmentStarted
from contracts.vocabulary import AgeBand, ClientGroup, CompletedBy
from servicekit.eventlog import OutgoingRecord
from servicekit.eventlog.embedded import EmbeddedEventLog
from servicekit.metrics import (
    CONSUMER_LAG,
    EVENTS_CONSUMED,
    OUTBOX_BACKLOG,
    OUTBOX_PUBLISHED,
    REQUEST_LATENCY,
    ConsumerProgress,
)
from servicekit.sampling import sample_once
from servicekit.testing import REPO_ROOT, Tokens, running, runtime_of
from services.assessment.api import create_app as assessment_app
from services.assessment.settings import Settings as AssessmentSettings
from services.audit.api import create_app as audit_app
from services.audit.settings import Settings as AuditSettings

DASHBOARD = REPO_ROOT / "deploy" / "grafana" / "pb-journey.json"


Page = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def samples(text: str) -> Page:
    """Every sample of a /metrics page: (name, sorted labels) -> value."""
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def value(
    page: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str
) -> float:
    """The sum of a metric's samples whose labels include these (0 when there are none)."""
    return sum(v for (n, ls), v in page.items() if n == name and set(labels.items()) <= set(ls))


async def test_metrics_move_with_requests_events_and_consumers(
    data_dir: Path, policies_dir: Path, tokens: Tokens
) -> None:
    settings = {"data_dir": data_dir, "policies_dir": policies_dir, "metrics_sample_seconds": 0.05}
    assessment = assessment_app(AssessmentSettings(**settings))
    audit = audit_app(AuditSettings(**settings))
    async with running(assessment) as client, running(audit) as audit_client:
        before = samples((await client.get("/metrics")).text)
        before_audit = samples((await audit_client.get("/metrics")).text)
        for n in range(3):
            r = await client.post(
                "/v1/assessments",
                json={
                    "person_id": f"P-METRICS-{n}",
                    "client_group": "older_people",
                    "completed_by": "supported",
                    "team": "North",
                    "key_worker_id": "KW7",
                    "age_band": "75-84",
                },
                headers=tokens.headers("care_manager"),
            )
            assert r.status_code == 201, r.text

        async def audit_applied_three() -> bool:
            page = samples((await audit_client.get("/metrics")).text)
            applied = value(page, "pbj_events_consumed_total", consumer="audit", outcome="applied")
            was = value(
                before_audit, "pbj_events_consumed_total", consumer="audit", outcome="applied"
            )
            lag = page.get(("pbj_consumer_lag", (("consumer", "audit"),)))
            return applied - was >= 3 and lag == 0  # caught up, and the gauge says so

        await _eventually(audit_applied_three)
        after = samples((await client.get("/metrics")).text)
        after_audit = samples((await audit_client.get("/metrics")).text)

    route = {"service": "assessment", "method": "POST", "route": "/v1/assessments"}
    assert (
        value(after, "pbj_http_request_seconds_count", **route)
        - value(before, "pbj_http_request_seconds_count", **route)
        == 3
    )
    assert (
        value(after, "pbj_outbox_published_total", service="assessment")
        - value(before, "pbj_outbox_published_total", service="assessment")
        >= 3
    )
    assert value(after, "pbj_outbox_backlog", service="assessment") == 0
    assert ("pbj_consumer_lag", (("consumer", "audit"),)) in after_audit


async def test_the_outbox_backlog_gauge_counts_what_waits_to_be_published(
    data_dir: Path, policies_dir: Path
) -> None:
    app = assessment_app(AssessmentSettings(data_dir=data_dir, policies_dir=policies_dir))
    runtime = runtime_of(app)
    await runtime.database.migrate(runtime.migrations_dir)  # not started: no relay running
    async with runtime.uow() as uow:
        for n in range(2):
            uow.emit(
                AssessmentStarted(
                    person_id=f"p-{n}",
                    council="lancashire",
                    assessment_id=uuid.uuid4(),
                    client_group=ClientGroup.CARERS,
                    completed_by=CompletedBy.SELF,
                    team="t",
                    key_worker_id="k",
                    age_band=AgeBand.AGE_18_64,
                    community_based=True,
                    policy_version="lancashire/2009.1",
                )
            )
        await uow.commit()
    await sample_once(runtime)
    assert _gauge("pbj_outbox_backlog", service="assessment") == 2
    await runtime.event_log.start()
    await runtime.relay.drain()
    await sample_once(runtime)
    assert _gauge("pbj_outbox_backlog", service="assessment") == 0
    await runtime.event_log.close()
    await runtime.database.dispose()


async def test_consumer_lag_is_what_the_log_holds_beyond_what_was_applied(
    tmp_path: Path,
) -> None:
    log = EmbeddedEventLog(tmp_path / "log.db", partitions=1)
    await log.start()
    await log.ensure_topics(["pb.lag"])
    await log.publish(
        [OutgoingRecord(topic="pb.lag", key="p", value=b"{}", headers={}) for _ in range(5)]
    )
    reader = log.consumer("lag-test", ["pb.lag"])
    progress = ConsumerProgress()
    assert await progress.lag() is None  # nothing read yet: no figure rather than a wrong one
    progress.observe(reader, await reader.poll(max_records=2, timeout_ms=100))
    assert await progress.lag() == 3
    progress.observe(reader, await reader.poll(max_records=10, timeout_ms=100))
    assert await progress.lag() == 0
    await reader.close()
    await log.close()


def test_every_metric_the_dashboard_charts_is_exported() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    expressions = [
        target["expr"] for panel in dashboard["panels"] for target in panel.get("targets", [])
    ]
    assert len(expressions) >= 6
    used = {name for expr in expressions for name in re.findall(r"\bpbj_[a-z_]+", expr)}
    exported = set()
    for family in text_string_to_metric_families(_registry_text()):
        exported |= {s.name for s in family.samples}
    assert used and used <= exported, f"charted but not exported: {sorted(used - exported)}"
    assert {
        "pbj_http_request_seconds_bucket",
        "pbj_outbox_backlog",
        "pbj_consumer_lag",
        "pbj_events_consumed_total",
        "pbj_outbox_published_total",
    } <= used


def _registry_text() -> str:
    """What /metrics serves, with one child of every labelled metric (a labelled metric
    shows no samples until it has one)."""
    REQUEST_LATENCY.labels("probe", "GET", "/probe", "200").observe(0.001)
    OUTBOX_BACKLOG.labels("probe").set(0)
    OUTBOX_PUBLISHED.labels("probe").inc(0)
    CONSUMER_LAG.labels("probe").set(0)
    EVENTS_CONSUMED.labels("probe", "applied").inc(0)
    return generate_latest().decode()


def _gauge(name: str, **labels: str) -> float:
    found = REGISTRY.get_sample_value(name, labels)
    return -1 if found is None else found


async def _eventually(check: Callable[[], Awaitable[bool]], seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not await check():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.05)
