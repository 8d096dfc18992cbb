"""OpenTelemetry tracing: one trace from an HTTP call, through the event log, into the next
service (docs/operability.md).

The trace context travels inside each event as the CloudEvents distributed-tracing
extension (`traceparent`, `tracestate`, W3C Trace Context): the unit of work stamps it
from the current span when an event is written, so it survives the outbox, the log and a
replay; a consumer applies the event in a span that continues that trace.

Spans are recorded only while something receives them: an OTLP/HTTP collector named by
`OTEL_EXPORTER_OTLP_ENDPOINT`, or a processor added with `add_span_processor` (the tests').
Nothing is exported by default, so no network is needed, and then every span is a
non-recording one (`SampledWhileReceived`): it still has its own span id and carries the
trace on into the events written under it, but builds no attributes or links. Recording a
span nobody receives cost 13 µs of the 23 a span took here, and a conversion makes one per
consumed event in every service (docs/performance.md).
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from functools import cache

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.sampling import (
    ALWAYS_OFF,
    ALWAYS_ON,
    ParentBased,
    Sampler,
    SamplingResult,
)
from opentelemetry.trace import Link, Span, SpanKind, Status, StatusCode, TraceState
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from opentelemetry.util.types import Attributes

from contracts.envelope import Envelope

OTLP_ENDPOINT_ENV = "OTEL_EXPORTER_OTLP_ENDPOINT"
_PROPAGATOR = TraceContextTextMapPropagator()
_TRACER_NAME = "pb-journey"


class SampledWhileReceived(Sampler):
    """The SDK's sampling once something receives spans (the sampler `OTEL_TRACES_SAMPLER`
    names; by default a span is recorded unless its parent was not); until then none is
    recorded.

    A span not recorded is the SDK's non-recording span: a new span id in the same trace,
    so the trace context written into events and read by the next service is whole either
    way; only its attributes, links and timings are not kept. A deployment exports from
    every service or from none (one environment variable), so a service that exports sees
    its callers' spans recorded too.
    """

    def __init__(self, when_received: Sampler | None = None) -> None:
        self.received = False
        self.when_received = when_received or ParentBased(ALWAYS_ON)

    def should_sample(
        self,
        parent_context: otel_context.Context | None,
        trace_id: int,
        name: str,
        kind: SpanKind | None = None,
        attributes: Attributes = None,
        links: Sequence[Link] | None = None,
        trace_state: TraceState | None = None,
    ) -> SamplingResult:
        sampler = self.when_received if self.received else ALWAYS_OFF
        return sampler.should_sample(
            parent_context, trace_id, name, kind, attributes, links, trace_state
        )

    def get_description(self) -> str:
        return "SampledWhileReceived"


_SAMPLING = SampledWhileReceived()


def configure_tracing(service: str) -> TracerProvider:
    """Install the process's tracer provider once; export over OTLP/HTTP if configured.

    Several services in one process (the in-process tests) share the first provider; each
    span still names its service in its attributes.
    """
    current = trace.get_tracer_provider()
    if isinstance(current, TracerProvider):
        return current
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    # The SDK chose its sampler as configured (OTEL_TRACES_SAMPLER): it decides once spans
    # are received. Set before any tracer is made, as tracers take the provider's sampler.
    _SAMPLING.when_received = provider.sampler
    provider.sampler = _SAMPLING
    endpoint = os.environ.get(OTLP_ENDPOINT_ENV)
    if endpoint:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(
            BatchSpanProcessor(OTLPSpanExporter(endpoint=f"{endpoint.rstrip('/')}/v1/traces"))
        )
        _SAMPLING.received = True
    trace.set_tracer_provider(provider)
    return provider


def add_span_processor(processor: SpanProcessor) -> None:
    """Send spans somewhere else too (the tests' in-memory exporter): from now on they are
    recorded."""
    provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):
        provider = configure_tracing("pb-journey")
    provider.add_span_processor(processor)
    _SAMPLING.received = True


@cache
def _tracer() -> trace.Tracer:
    # Made once: asking the provider builds a new tracer each time, a cost every consumed
    # event paid. A tracer asked for before the provider is installed is a proxy that
    # follows the provider once it is.
    return trace.get_tracer(_TRACER_NAME)


def current_trace_headers() -> tuple[str | None, str | None]:
    """(traceparent, tracestate) of the current span, or (None, None) outside one."""
    carrier: dict[str, str] = {}
    _PROPAGATOR.inject(carrier)
    return carrier.get("traceparent"), carrier.get("tracestate")


@contextmanager
def consumer_span(consumer: str, envelope: Envelope) -> Iterator[Span]:
    """A CONSUMER span applying an event, a child of the span that wrote the event."""
    with trace.use_span(_start_consumer_span(consumer, envelope), end_on_exit=True) as span:
        yield span


@contextmanager
def consumer_spans(consumer: str, envelopes: Sequence[Envelope]) -> Iterator[dict[str, Span]]:
    """A CONSUMER span for each event of a batch decided together, by event id: each a
    child of the span that wrote its event, open while the batch is decided, so every
    trace shows its event applied whether the consumer took it alone or in a batch."""
    spans = {envelope.id: _start_consumer_span(consumer, envelope) for envelope in envelopes}
    try:
        yield spans
    except BaseException as err:
        for span in spans.values():
            span.record_exception(err)
            span.set_status(Status(StatusCode.ERROR, f"{type(err).__name__}: {err}"))
        raise
    finally:
        for span in spans.values():
            span.end()


def _start_consumer_span(consumer: str, envelope: Envelope) -> Span:
    carrier = {
        key: value
        for key, value in (
            ("traceparent", envelope.traceparent),
            ("tracestate", envelope.tracestate),
        )
        if value
    }
    parent = _PROPAGATOR.extract(carrier) if carrier else otel_context.Context()
    return _tracer().start_span(
        f"apply {envelope.type}",
        context=parent,
        kind=SpanKind.CONSUMER,
        attributes={
            "messaging.consumer.group.name": consumer,
            "messaging.message.id": envelope.id,
            "cloudevents.event_type": envelope.type,
            "cloudevents.event_subject": envelope.subject,
        },
    )
