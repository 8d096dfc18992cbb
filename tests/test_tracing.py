"""One trace from an HTTP call, through the event log, into the next service: the trace
context travels inside the event (CloudEvents distributed-tracing extension)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from contracts.envelope import Envelope, decode
from contracts.events import AssessmentStarted
from servicekit.testing import Tokens, outbox_events, running, runtime_of
from servicekit.tracing import SampledWhileReceived, add_span_processor, current_trace_headers
from services.assessment.api import create_app as assessment_app
from services.assessment.consumer import CONTACT_CONSUMER
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
        started, server = await _start_assessment(assessment, client, tokens, spans, "P-TRACE-1")
        writer_span_id = started.traceparent.split("-")[2] if started.traceparent else ""
        # Written inside the request: by the route's span, a descendant of the SERVER span.
        request_spans = {_hex(s.context.span_id, 16): s for s in spans.get_finished_spans()}
        assert writer_span_id in request_spans
        assert _ancestors(request_spans[writer_span_id], request_spans)[-1] is server
        assert decode(started.to_message().value or b"").traceparent == started.traceparent

        # The relay publishes to the embedded log; audit's consumer reads it from there.
        await runtime_of(assessment).relay.drain()
        consumed = await _consumer_span(spans, "audit", started)

    _assert_continues(consumed, started)


async def test_each_event_a_consumer_decides_in_a_batch_has_its_own_span_in_its_trace(
    data_dir: Path, policies_dir: Path, tokens: Tokens, spans: InMemorySpanExporter
) -> None:
    """Audit starts after three assessments are on the log, so its first poll applies them
    in one batch, through its batch handler, as does assessment's last-contact consumer."""
    assessment = assessment_app(AssessmentSettings(data_dir=data_dir, policies_dir=policies_dir))
    audit = audit_app(AuditSettings(data_dir=data_dir, policies_dir=policies_dir))
    async with running(assessment) as client:
        started = [
            (await _start_assessment(assessment, client, tokens, spans, person))[0]
            for person in ("P-TRACE-1", "P-TRACE-2", "P-TRACE-3")
        ]
        await runtime_of(assessment).relay.drain()
        async with running(audit):
            applied = [await _consumer_span(spans, "audit", envelope) for envelope in started]
        for consumed, envelope in zip(applied, started, strict=True):
            _assert_continues(consumed, envelope)
        # Decided together: each span opened before any closed (one by one, none overlap).
        assert max(_start(s) for s in applied) < min(_end(s) for s in applied)
        for envelope in started:
            _assert_continues(await _consumer_span(spans, CONTACT_CONSUMER, envelope), envelope)


async def _start_assessment(
    app: FastAPI,
    client: httpx.AsyncClient,
    tokens: Tokens,
    spans: InMemorySpanExporter,
    person_id: str,
) -> tuple[Envelope, ReadableSpan]:
    """POST an assessment from a caller in trace CALLER_TRACE; its started event and the
    request's SERVER span."""
    before = len(spans.get_finished_spans())
    r = await client.post(
        "/v1/assessments",
        json={
            "person_id": person_id,
            "client_group": "older_people",
            "completed_by": "supported",
            "team": "North",
            "key_worker_id": "KW7",
            "age_band": "75-84",
        },
        headers=tokens.headers("care_manager", traceparent=f"00-{CALLER_TRACE}-{CALLER_SPAN}-01"),
    )
    assert r.status_code == 201, r.text
    new_spans = spans.get_finished_spans()[before:]
    [server] = [s for s in new_spans if s.kind is SpanKind.SERVER]
    assert _hex(server.context.trace_id, 32) == CALLER_TRACE
    assert server.parent is not None and _hex(server.parent.span_id, 16) == CALLER_SPAN
    assert server.name == "POST /v1/assessments"
    [started] = [
        e
        for e in await outbox_events(app)
        if e.type.endswith("started.v1") and e.subject.endswith(person_id)
    ]
    assert isinstance(started.event, AssessmentStarted)
    assert started.traceparent is not None
    assert started.traceparent.split("-")[1] == CALLER_TRACE
    return started, server


def _assert_continues(consumed: ReadableSpan, envelope: Envelope) -> None:
    """The consumer's span is in the caller's trace, a child of the span that wrote it."""
    assert envelope.traceparent is not None
    assert _hex(consumed.context.trace_id, 32) == CALLER_TRACE
    assert consumed.parent is not None
    assert _hex(consumed.parent.span_id, 16) == envelope.traceparent.split("-")[2]
    assert consumed.attributes is not None
    assert consumed.attributes["messaging.message.id"] == envelope.id


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


def _start(span: ReadableSpan) -> int:
    assert span.start_time is not None
    return span.start_time


def _end(span: ReadableSpan) -> int:
    assert span.end_time is not None
    return span.end_time


def _ancestors(span: ReadableSpan, by_id: dict[str, ReadableSpan]) -> list[ReadableSpan]:
    """The span and its parents within the process, innermost first."""
    chain = [span]
    while chain[-1].parent is not None and _hex(chain[-1].parent.span_id, 16) in by_id:
        chain.append(by_id[_hex(chain[-1].parent.span_id, 16)])
    return chain


@pytest.mark.parametrize("received", [False, True])
def test_a_span_continues_the_callers_trace_into_the_events_whether_or_not_it_is_recorded(
    received: bool,
) -> None:
    """Nothing receiving spans (no exporter, the default), they are not recorded, and the
    events written under them still carry the caller's trace on, each from a span of its
    own; once something receives them they are recorded as well."""
    sampling = SampledWhileReceived()
    sampling.received = received
    tracer = TracerProvider(sampler=sampling).get_tracer("test")
    caller = TraceContextTextMapPropagator().extract(
        {"traceparent": f"00-{CALLER_TRACE}-{CALLER_SPAN}-01"}
    )
    with tracer.start_as_current_span("POST /v1/assessments", context=caller) as span:
        traceparent, _ = current_trace_headers()
        assert span.is_recording() is received
    assert traceparent is not None
    _, trace_id, span_id, flags = traceparent.split("-")
    assert trace_id == CALLER_TRACE
    assert span_id == _hex(span.get_span_context().span_id, 16) != CALLER_SPAN
    assert flags == ("01" if received else "00")


@pytest.mark.parametrize(("sampler", "recorded"), [("always_off", "False"), ("always_on", "True")])
def test_once_spans_are_received_the_sampler_the_environment_names_decides(
    sampler: str, recorded: str
) -> None:
    """OTEL_TRACES_SAMPLER still decides once an exporter receives spans; a fresh process,
    since the provider is installed once per process."""
    program = (
        "from opentelemetry import trace\n"
        "from servicekit.tracing import configure_tracing\n"
        "configure_tracing('audit')\n"
        "with trace.get_tracer('t').start_as_current_span('s') as span:\n"
        "    print(span.is_recording(), flush=True)\n"
        "import os; os._exit(0)  # before the exporter's flush at exit tries to send\n"
    )
    environment = {
        **os.environ,
        "OTEL_TRACES_SAMPLER": sampler,
        "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9",  # nothing listens; never sent
    }
    ran = subprocess.run(
        [sys.executable, "-c", program],
        env=environment,
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).resolve().parent.parent,
    )
    assert ran.stdout.strip() == recorded
