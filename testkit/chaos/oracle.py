"""The oracle: reads the event log itself and each service's API, and checks the books.

It uses none of the services' code: it parses the CloudEvents JSON itself, works out due
dates and instalment splits from the PaymentScheduled facts, and compares."""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import httpx

from contracts.vocabulary import Role
from pbj.journey import Staff
from servicekit.eventlog.embedded import stored_records
from testkit.chaos.names import (
    AGREEMENT,
    BUDGET_ISSUED,
    COUNCIL,
    DEAD_LETTERS,
    FREQUENCY_DAYS,
    ONCE_PER_PERSON,
    PLAN_SUBMITTED,
    RELEASED,
    SCHEDULED,
    SET_UP,
    SIGNED_OFF,
    STARTED,
    SUBMITTED,
    TOPICS,
    VALIDATED,
)
from testkit.chaos.processes import ChaosSystem
from testkit.chaos.walkers import Ack, JourneyFailed


@dataclass
class LogEvent:
    event_id: str
    type: str
    person_id: str
    data: dict[str, Any]


def read_embedded_log(path: Path) -> tuple[list[LogEvent], int]:
    """Every event in the embedded log file, in offset order, and the dead letters."""
    stored = sorted(stored_records(path), key=lambda r: (r.topic, r.partition, r.offset))
    rows = [(record.topic, record.value) for record in stored]
    events = [_parse(value) for topic, value in rows if topic in TOPICS]
    return events, sum(1 for topic, _ in rows if topic == DEAD_LETTERS)


async def read_kafka_log(bootstrap: str) -> tuple[list[LogEvent], int]:
    """Every record of every partition from offset 0, with no consumer group."""
    from aiokafka import (  # type: ignore[import-untyped]
        AIOKafkaClient,
        AIOKafkaConsumer,
        TopicPartition,
    )

    metadata_client = AIOKafkaClient(bootstrap_servers=bootstrap)
    await metadata_client.bootstrap()
    try:
        cluster = await metadata_client.fetch_all_metadata()
    finally:
        await metadata_client.close()
    partitions = [
        TopicPartition(topic, p)
        for topic in (*TOPICS, DEAD_LETTERS)
        for p in sorted(cluster.partitions_for_topic(topic) or ())
    ]
    if not partitions:
        raise RuntimeError(f"the broker at {bootstrap} has none of the topics {TOPICS}")
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        remaining = {tp for tp in partitions if ends[tp] > 0}
        events: list[LogEvent] = []
        dead = 0
        while remaining:
            batches = await consumer.getmany(timeout_ms=2000, max_records=1000)
            for tp, records in batches.items():
                for record in records:
                    if tp.topic == DEAD_LETTERS:
                        dead += 1
                    else:
                        events.append(_parse(record.value))
                if await consumer.position(tp) >= ends[tp]:
                    remaining.discard(tp)
        return events, dead
    finally:
        await consumer.stop()


def _parse(value: bytes) -> LogEvent:
    cloud_event = json.loads(value)
    data = cloud_event["data"]
    return LogEvent(cloud_event["id"], cloud_event["type"], cloud_event["subject"], data)


@dataclass
class Verdict:
    failures: list[str] = field(default_factory=list)
    figures: dict[str, int] = field(default_factory=dict)
    checks: Counter[str] = field(default_factory=Counter)

    def check(self, name: str, ok: bool, why: str) -> None:
        self.checks[name] += 1
        if not ok:
            self.failures.append(f"{name}: {why}")

    @property
    def ok(self) -> bool:
        return not self.failures


async def _items(
    http: httpx.AsyncClient, url: str, headers: dict[str, str], **params: Any
) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        query = {"limit": 200, **params, **({"cursor": cursor} if cursor else {})}
        response = await http.get(url, params=query, headers=headers)
        if response.status_code != 200:
            raise JourneyFailed(f"GET {url}: HTTP {response.status_code} {response.text[:300]}")
        page = response.json()
        items += page["items"]
        cursor = page.get("next_cursor")
        if not cursor:
            return items


async def person_views(
    http: httpx.AsyncClient, urls: dict[str, str], staff: Staff, person_id: str
) -> dict[str, Any]:
    """What each service's API shows of one person."""
    cm, fin, aud = staff(Role.CARE_MANAGER), staff(Role.FINANCE), staff(Role.AUDITOR)
    pid = {"person_id": person_id}
    deployments = await _items(http, f"{urls['payments']}/v1/deployments", fin, **pid)
    return {
        "assessments": await _items(http, f"{urls['assessment']}/v1/assessments", cm, **pid),
        "budgets": await _items(http, f"{urls['allocation']}/v1/budgets", cm, **pid),
        "plans": await _items(http, f"{urls['planning']}/v1/plans", cm, **pid),
        "deployments": deployments,
        "instalments": [
            i
            for d in deployments
            for i in await _items(
                http, f"{urls['payments']}/v1/deployments/{d['deployment_id']}/schedule", fin
            )
        ],
        "history": await _items(http, f"{urls['audit']}/v1/people/{person_id}/history", aud),
    }


ACKED_EVENTS: dict[str, tuple[str, str]] = {
    "start the self-assessment": (STARTED, "assessment_id"),
    "submit the self-assessment": (SUBMITTED, "assessment_id"),
    "validate the self-assessment": (VALIDATED, "assessment_id"),
    "agree the budget": (BUDGET_ISSUED, "budget_id"),
    "submit the support plan": (PLAN_SUBMITTED, "plan_id"),
    "sign off the support plan": (SIGNED_OFF, "plan_id"),
    "arrange a direct payment": (SET_UP, "deployment_id"),
    "record the signed agreement": (AGREEMENT, "deployment_id"),
}
"""The event each acknowledged step promised, and the field naming the thing it changed."""


def judge(
    people: list[str],
    acks: list[Ack],
    log: list[LogEvent],
    dead_letters: int,
    views: dict[str, dict[str, Any]],
    verify: dict[str, Any],
    as_of: date,
) -> Verdict:
    """Every check of the oracle over what was read; no service code is involved."""
    verdict = Verdict()
    copies = Counter(e.event_id for e in log)
    distinct: dict[str, LogEvent] = {}
    for event in log:
        distinct.setdefault(event.event_id, event)
    by_person: dict[str, list[LogEvent]] = defaultdict(list)
    for event in distinct.values():
        by_person[event.person_id].append(event)
    verdict.figures.update(
        {
            "log records": len(log),
            "distinct events": len(distinct),
            "copies published again (at-least-once)": sum(n - 1 for n in copies.values()),
            "dead letters": dead_letters,
        }
    )
    verdict.check("no dead letters", dead_letters == 0, f"{dead_letters} record(s) dead-lettered")
    strangers = set(by_person) - set(people)
    verdict.check("no events for people never walked", not strangers, f"{sorted(strangers)}")

    # 1. No acknowledged event lost.
    for ack in acks:
        mine = by_person.get(ack.person_id, [])
        if ack.step == "release the first payment":
            released_ids = {e.data["payment_id"] for e in mine if e.type == RELEASED}
            for item in ack.body["released"]:
                verdict.check(
                    "acknowledged release in the log",
                    item["payment_id"] in released_ids,
                    f"{ack.person_id}: payment {item['payment_id']} answered 200, no event",
                )
            continue
        if ack.step not in ACKED_EVENTS:
            continue
        kind, id_field = ACKED_EVENTS[ack.step]
        wanted = str(ack.body[id_field])
        verdict.check(
            "acknowledged change in the log",
            any(e.type == kind and str(e.data.get(id_field)) == wanted for e in mine),
            f"{ack.person_id}: '{ack.step}' answered 2xx but no {kind} for {wanted} in the log",
        )

    released_total = due_total = 0
    for person_id in people:
        mine = by_person.get(person_id, [])
        view = views[person_id]
        who = person_id
        types = Counter(e.type for e in mine)

        # 2. No effect applied twice (distinct event ids for one effect; doubled records).
        for kind in ONCE_PER_PERSON:
            verdict.check(
                "each journey event once", types[kind] == 1, f"{who}: {types[kind]} x {kind}"
            )
        budgets = sorted(
            (e.data["budget_id"], e.data["revision"], e.data["stage"])
            for e in mine
            if e.type == BUDGET_ISSUED
        )
        verdict.check(
            "budget issued indicative then final, once each",
            [stage for *_, stage in budgets] == ["indicative", "final"]
            or sorted(stage for *_, stage in budgets) == ["final", "indicative"],
            f"{who}: {budgets}",
        )
        for name in ("assessments", "budgets", "plans", "deployments"):
            verdict.check(f"one of each: {name}", len(view[name]) == 1, f"{who}: {view[name]}")
        history_ids = [e["event_id"] for e in view["history"]]
        verdict.check(
            "audit recorded each event once",
            len(history_ids) == len(set(history_ids)),
            f"{who}: {Counter(history_ids).most_common(3)}",
        )

        # 3. Effects downstream: audit has exactly the log's events; each service shows
        # what the events it consumes say.
        verdict.check(
            "audit history equals the log",
            set(history_ids) == {e.event_id for e in mine},
            f"{who}: missing from audit { ({e.event_id for e in mine} - set(history_ids)) }, "
            f"not in the log {set(history_ids) - {e.event_id for e in mine}}",
        )
        issued = {b for b, _, _ in budgets}
        verdict.check(
            "validated assessment became a budget",
            [b["budget_id"] for b in view["budgets"]] == sorted(issued),
            f"{who}: allocation lists {view['budgets']}, the log issued {issued}",
        )
        verdict.check(
            "final budget after sign-off",
            all(b["status"] == "final" for b in view["budgets"]),
            f"{who}: {[b['status'] for b in view['budgets']]}",
        )
        signed = {e.data["plan_id"] for e in mine if e.type == SIGNED_OFF}
        verdict.check(
            "signed-off plan became a deployment",
            {d["plan_id"] for d in view["deployments"]} == signed,
            f"{who}: deployments for {[d['plan_id'] for d in view['deployments']]}, "
            f"signed {signed}",
        )

        # 4. Every release matches a scheduled instalment; each instalment released once.
        schedules = {e.data["schedule_id"]: e.data for e in mine if e.type == SCHEDULED}
        verdict.check(
            "each schedule once",
            len(schedules) == types[SCHEDULED],
            f"{who}: {types[SCHEDULED]} PaymentScheduled for {len(schedules)} schedule(s)",
        )
        instalments = {(i["schedule_id"], i["instalment_number"]): i for i in view["instalments"]}
        verdict.check(
            "payments shows each instalment once",
            len(instalments) == len(view["instalments"]),
            f"{who}: {len(view['instalments'])} rows for {len(instalments)} slots",
        )
        due = 0
        for schedule_id, fact in schedules.items():
            rows = sorted(
                (i for i in view["instalments"] if i["schedule_id"] == schedule_id),
                key=lambda i: int(i["instalment_number"]),
            )
            count, total = int(fact["instalments"]), int(fact["total_pence"])
            amounts = [int(i["amount_pence"]) for i in rows]
            verdict.check(
                "schedule splits its total exactly",
                [int(i["instalment_number"]) for i in rows] == list(range(1, count + 1))
                and sum(amounts) == total
                and all(total // count <= a <= -(-total // count) for a in amounts),
                f"{who}: schedule {schedule_id} of {total}p in {count}: {amounts}",
            )
            step = FREQUENCY_DAYS.get(fact["frequency"])
            first_due = date.fromisoformat(fact["first_due_on"])
            if step is not None:
                expected = [first_due + timedelta(days=step * k) for k in range(count)]
                verdict.check(
                    "instalments fall due on the schedule's dates",
                    [date.fromisoformat(i["due_on"]) for i in rows] == expected,
                    f"{who}: schedule {schedule_id}",
                )
            due += sum(
                int(i["amount_pence"]) for i in rows if date.fromisoformat(i["due_on"]) <= as_of
            )
        releases = [e.data for e in mine if e.type == RELEASED]
        slots = Counter((r["schedule_id"], int(r["instalment_number"])) for r in releases)
        verdict.check(
            "each instalment released once",
            all(n == 1 for n in slots.values()),
            f"{who}: {[s for s, n in slots.items() if n > 1]} released more than once",
        )
        for release in releases:
            scheduled = schedules.get(release["schedule_id"])
            row = instalments.get((release["schedule_id"], int(release["instalment_number"])))
            verdict.check(
                "release matches a scheduled instalment",
                scheduled is not None
                and row is not None
                and release["deployment_id"] == scheduled["deployment_id"]
                and 1 <= int(release["instalment_number"]) <= int(scheduled["instalments"])
                and int(release["amount_pence"]) == int(row["amount_pence"])
                and row["status"] == "released"
                and row["payment_id"] == release["payment_id"]
                and date.fromisoformat(release["due_on"]) <= as_of,
                f"{who}: {release} against {scheduled} / {row}",
            )
        released = sum(int(r["amount_pence"]) for r in releases)
        verdict.check(
            "released equals due",
            released == due and due > 0,
            f"{who}: released {released}p, due {due}p by {as_of}",
        )
        released_total += released
        due_total += due

    # 5. The audit chains verify, over exactly the events the log holds.
    verdict.check("audit chains verify", verify.get("ok") is True, json.dumps(verify)[:500])
    verdict.check(
        "audit holds every event",
        verify.get("events") == len(distinct),
        f"audit verified {verify.get('events')} events, the log holds {len(distinct)}",
    )
    verdict.figures.update(
        {"released pence": released_total, "due pence": due_total, "people": len(people)}
    )
    return verdict


async def consult_oracle(
    system: ChaosSystem, people: list[str], acks: list[Ack], as_of: date
) -> Verdict:
    """Read the log and the APIs once everything has settled, and judge."""
    urls = system.urls()
    staff = Staff(system.supervisor.data_dir, COUNCIL)
    async with httpx.AsyncClient(timeout=120) as http:
        previous: tuple[Any, ...] | None = None
        deadline = time.monotonic() + 120
        while True:  # settled: two readings two seconds apart agree
            if system.broker is not None:
                log, dead = await read_kafka_log(system.broker.bootstrap)
            else:
                log, dead = await asyncio.to_thread(
                    read_embedded_log, system.supervisor.data_dir / "eventlog.db"
                )
            views = {p: await person_views(http, urls, staff, p) for p in people}
            reading = (len(log), dead, json.dumps(views, sort_keys=True, default=str))
            if reading == previous or time.monotonic() > deadline:
                break
            previous = reading
            await asyncio.sleep(2.0)
        response = await http.get(f"{urls['audit']}/v1/verify", headers=staff(Role.AUDITOR))
        verify = response.json() if response.status_code == 200 else {"status": response.text}
    return judge(people, acks, log, dead, views, verify, as_of)


# --- the run --------------------------------------------------------------------------------
