"""The seeded injector: which fault lands next, and the kill and restart it takes."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable
from dataclasses import dataclass

from pbj.processes import SERVICES
from testkit.chaos.names import PRODUCERS
from testkit.chaos.processes import ChaosSystem


@dataclass
class Injection:
    number: int
    target: str
    kind: str
    detail: str
    seconds: float


class Injector:
    """Chooses each fault with a seeded RNG and carries it out; restarts run alongside."""

    def __init__(self, system: ChaosSystem, seed: int, mean_gap: float) -> None:
        self.system = system
        # Two generators: the seed alone fixes which faults come in which order, whatever
        # the timings (which depend on the machine) turn out to be.
        self.choices = random.Random(seed)
        self.rng = random.Random(seed + 1)
        self.mean_gap = mean_gap
        self.done: list[Injection] = []
        self._returning: dict[str, asyncio.Task[int]] = {}
        self.extra_starts = 0
        self.targets: list[tuple[str, str]] = [("kill", name) for name in SERVICES]
        self.targets += [("relay", name) for name in PRODUCERS]
        if system.engine == "kafka":
            self.targets += [("kill", "broker"), ("kill", "postgres")]

    async def _settled(self, name: str) -> None:
        task = self._returning.pop(name, None)
        if task is not None:
            self.extra_starts += await task - 1

    async def all_back(self) -> None:
        for name in list(self._returning):
            await self._settled(name)

    async def run(
        self, count: int, on_done: Callable[[Injection], None], enough: asyncio.Event
    ) -> None:
        for number in range(1, count + 1):
            await asyncio.sleep(self.rng.uniform(0, 2 * self.mean_gap))
            if enough.is_set():
                break
            kind, target = self.choices.choice(self.targets)
            started = time.monotonic()
            if target in ("broker", "postgres"):
                # The whole system leans on these: let every service come back first.
                await self.all_back()
                detail = await asyncio.to_thread(self._server, target)
            else:
                await self._settled(target)
                detail = await asyncio.to_thread(self._service, kind, target)
                self._returning[target] = asyncio.create_task(
                    asyncio.to_thread(self.system.bring_back, target)
                )
            injection = Injection(number, target, kind, detail, time.monotonic() - started)
            self.done.append(injection)
            on_done(injection)
        await self.all_back()

    def _service(self, kind: str, name: str) -> str:
        supervisor = self.system.supervisor
        if kind == "kill":
            supervisor.kill(name)
            return "SIGKILL"
        # The relay runs inside the service: hold the log so the relay blocks in publish
        # with a batch in hand; once the outbox shows unpublished rows, let the log go and
        # kill the service a few milliseconds later, before or after the log took the
        # batch but before the outbox marked it published (that one is published twice).
        backlog = 0
        with self.system.log_held():
            deadline = time.monotonic() + 2.0
            while time.monotonic() < deadline:
                backlog = self.system.outbox_backlog(name)
                if backlog:
                    break
                time.sleep(0.02)
        delay = self.rng.uniform(0, 0.015) if backlog else 0.0
        time.sleep(delay)
        supervisor.kill(name)
        if backlog:
            return (
                f"SIGKILL {delay * 1000:.0f} ms after the log came back, relay mid-batch "
                f"with {backlog} unpublished outbox row(s)"
            )
        return "SIGKILL; its outbox stayed empty for 2 s (no traffic for it)"

    def _server(self, name: str) -> str:
        if name == "broker":
            assert self.system.broker is not None
            self.system.broker.sigkill()
            time.sleep(self.rng.uniform(0.5, 3.0))
            started = time.monotonic()
            self.system.broker.start()
            return f"SIGKILL, restarted in {time.monotonic() - started:.1f}s"
        assert self.system.postgres is not None
        self.system.postgres.sigkill()
        time.sleep(self.rng.uniform(0.5, 3.0))
        started = time.monotonic()
        self.system.postgres.start()
        return f"SIGKILL (postmaster and backends), restarted in {time.monotonic() - started:.1f}s"


# --- the oracle -----------------------------------------------------------------------------
