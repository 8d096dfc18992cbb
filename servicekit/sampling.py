"""Reads the gauges that cost a query (outbox backlog, consumer lag) every few seconds, off
the hot path: the relay and the consumers never wait for a metric."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

import structlog

from servicekit.metrics import CONSUMER_LAG, OUTBOX_BACKLOG

if TYPE_CHECKING:
    from servicekit.runtime import ServiceRuntime

log = structlog.get_logger(__name__)


async def sample_once(runtime: ServiceRuntime[Any]) -> None:
    OUTBOX_BACKLOG.labels(runtime.name).set(await runtime.relay.backlog())
    for consumer in runtime.consumers:
        lag = await consumer.progress.lag()
        if lag is not None:
            CONSUMER_LAG.labels(consumer.name).set(lag)


async def sample_forever(runtime: ServiceRuntime[Any]) -> None:
    while True:
        try:
            await sample_once(runtime)
        except asyncio.CancelledError:
            raise
        except Exception as err:  # the database or the log is down: the gauges wait
            log.warning("metrics_sample_failed", service=runtime.name, error=str(err))
        await asyncio.sleep(runtime.settings.metrics_sample_seconds)
