"""One trace from an HTTP call, through the event log, into the next service: the trace
context travels inside the event (CloudEvents distributed-tracing extension)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from contracts.envelope import Envelope, decode
from contracts.events import AssessmentStarted
from servicekit.testing import Tokens, outbox_events, running, runtime_of
from servicekit.tracing import add_span_processor
from services.assessment.api import create_app as assessment_app
from services.assessment.settings import Settings as AssessmentSettings
from services.audit.api import create_app as audit_app
from services.audit.settings import Settings as AuditSettings

CALLER_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
CALLER_SPAN = "00f067aa0ba902b7"

_exporter = InMemorySpanExporter()
_installed = False


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    global _installed
    if not _installed:  # the provider is the process's; add our exporter to it once
        add_span_processor(SimpleSpanProcessor(_exporter))
        _installed = True
    _exporter.clear()
    yield _exporter
    _exporter.clear()


def _hex(value: int, width: int) -> str:
    return format(value, f"0{width}x")


async def test_a_trace_spans_the_http_call_the_event_and_the_consumer_in_the_next_service(
    data_dir: Path, policies_dir: Path, tokens: Tokens, spans: InMemorySpanExporter
) -> None:
    assessment = assessment_app(AssessmentSettings(data_dir=data_dir, policies_dir=policies_dir))
    audit = audit_app(AuditSettings(data_dir=data_dir, policies_dir=policies_dir))
    async with running(assessment) as client, running(audit):
        r = await client.post(
            "/v1/assessments",
            json={
                "person_id": "P-TRACE-1",
                "client_group": "older_people",
                "completed_by": "supported",
                "team": "North",
                "key_worker_id": "KW7",
                "age_band": "75-84",
            },
            headers=tokens.headers(
                "care_manager", traceparent=f"00-{CALLER_TRACE}-{CALLER_SPAN}-01"
            ),
        )
        assert r.status_code == 201, r.text

        [server] = [s for s in spans.get_finished_spans() if s.kind is SpanKind.SERVER]
        assert _hex(server.context.trace_id, 32) == CALLER_TRACE
        assert server.parent is not None and _hex(server.parent.span_id, 16) == CALLER_SPAN
        assert server.name == "POST /v1/assessments"

        [started] = [e for e in await outbox_events(assessment) if e.type.endswith("started.v1")]
        assert isinstance(started.event, AssessmentStarted)
        assert started.traceparent is not None
        _, trace_id, writer_span_id, _ = started.traceparent.split("-")
        assert trace_id == CALLER_TRACE
        # Written inside the request: by the route's span, a descendant of the SERVER span.
        request_spans = {_hex(s.context.span_id, 16): s for s in spans.get_finished_spans()}
        assert writer_span_id in request_spans
        assert _ancestors(request_spans[writer_span_id], request_spans)[-1] is server
        assert decode(started.to_message().value or b"").traceparent == started.traceparent

        # The relay publishes to the embedded log; audit's consumer reads it from there.
        await runtime_of(assessment).relay.drain()
        consumed = await _consumer_span(spans, "audit", started)

    assert _hex(consumed.context.trace_id, 32) == CALLER_TRACE
    assert consumed.parent is not None
    assert _hex(consumed.parent.span_id, 16) == writer_span_id
    assert consumed.attributes is not None
    assert consumed.attributes["messaging.message.id"] == started.id


async def test_an_event_written_outside_any_trace_starts_its_consumer_a_new_one(
    spans: InMemorySpanExporter,
) -> None:
    envelope = Envelope(
        event=AssessmentStarted.model_validate(
            {
                "person_id": "p-1",
                "council": "lancashire",
                "assessment_id": "0f5a3c2e-6b1d-4f7e-9a8c-3d2e1f0a9b8c",
                "client_group": "carers",
                "completed_by": "self",
                "team": "t",
                "key_worker_id": "k",
                "age_band": "18-64",
                "community_based": True,
                "policy_version": "lancashire/2009.1",
            }
        )
    )
    value = envelope.to_message().value or b""
    assert b"traceparent" not in value
    assert decode(value).traceparent is None
    tampered = value.replace(b'"specversion"', b'"traceparent":"not-a-trace","specversion"')
    assert decode(tampered).traceparent is None  # dropped, the event still reads


async def _consumer_span(
    spans: InMemorySpanExporter, consumer: str, envelope: Envelope, seconds: float = 10
) -> ReadableSpan:
    deadline = time.monotonic() + seconds
    while True:
        for span in spans.get_finished_spans():
            attributes = span.attributes or {}
            if (
                span.kind is SpanKind.CONSUMER
                and attributes.get("messaging.consumer.group.name") == consumer
                and attributes.get("messaging.message.id") == envelope.id
            ):
                return span
        assert time.monotonic() < deadline, "the consumer never applied the event"
        await asyncio.sleep(0.05)


def _ancestors(span: ReadableSpan, by_id: dict[str, ReadableSpan]) -> list[ReadableSpan]:
    """The span and its parents within the process, innermost first."""
    chain = [span]
    while chain[-1].parent is not None and _hex(chain[-1].parent.span_id, 16) in by_id:
        chain.append(by_id[_hex(chain[-1].parent.span_id, 16)])
    return chain
