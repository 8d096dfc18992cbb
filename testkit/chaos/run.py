"""One chaos run: walkers and the injector at once, then the oracle's verdict."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date

import httpx

from contracts.policy import PolicyBook
from pbj.journey import Staff
from pbj.processes import REPO_ROOT
from testkit.chaos.injector import Injection, Injector
from testkit.chaos.names import COUNCIL
from testkit.chaos.oracle import Verdict, consult_oracle
from testkit.chaos.processes import ChaosSystem
from testkit.chaos.walkers import ClientTally, JourneyFailed, PortalClient, Walked, walk


@dataclass
class ChaosReport:
    engine: str
    seed: int
    requested: int
    seconds: float
    injections: list[Injection]
    extra_starts: int
    journeys: list[Walked]
    tally: ClientTally
    verdict: Verdict

    @property
    def ok(self) -> bool:
        return self.verdict.ok and all(w.stage == "complete" for w in self.journeys)


async def run_chaos(
    system: ChaosSystem,
    *,
    injections: int,
    people: int,
    seed: int,
    mean_gap: float = 0.5,
    on_injection: Callable[[Injection], None] = lambda _: None,
    on_journey: Callable[[Walked], None] = lambda _: None,
    enough: asyncio.Event | None = None,
) -> ChaosReport:
    """people walkers walk person after person while the injections run, then the oracle.

    Setting `enough` stops the injections early; the journeys under way finish and the
    oracle judges the run all the same.
    """
    enough = enough or asyncio.Event()
    policy = PolicyBook.from_directory(REPO_ROOT / "policies").current(COUNCIL)
    staff = Staff(system.supervisor.data_dir, COUNCIL)
    tally = ClientTally()
    today = date.today()
    walked: list[Walked] = []
    injector = Injector(system, seed, mean_gap)
    finished = asyncio.Event()
    started = time.monotonic()
    run_tag = f"{seed:x}{uuid.uuid4().hex[:4]}"

    async def walker(client: PortalClient) -> None:
        while True:
            person = Walked(f"CHAOS-{run_tag}-{len(walked):04d}", len(walked))
            walked.append(person)
            try:
                await walk(client, system.urls(), policy, person, today)
            except (JourneyFailed, httpx.HTTPError, KeyError) as err:
                person.error = f"{type(err).__name__}: {err}"
            on_journey(person)
            if finished.is_set():
                return

    limits = httpx.Limits(max_connections=200, max_keepalive_connections=0)
    async with httpx.AsyncClient(timeout=60, limits=limits) as http:
        client = PortalClient(http, staff, tally)
        lanes = [asyncio.create_task(walker(client)) for _ in range(people)]
        try:
            await injector.run(injections, on_injection, enough)
        finally:
            finished.set()
            await injector.all_back()
        await asyncio.gather(*lanes)
    people_ids = [w.person_id for w in walked]
    verdict = await consult_oracle(system, people_ids, tally.acks, today)
    return ChaosReport(
        engine=system.engine,
        seed=seed,
        requested=injections,
        seconds=time.monotonic() - started,
        injections=injector.done,
        extra_starts=injector.extra_starts,
        journeys=walked,
        tally=tally,
        verdict=verdict,
    )


# --- the command ----------------------------------------------------------------------------
