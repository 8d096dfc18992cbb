"""Two instances of a service share its topics' partitions on a real broker.

A region runs more than one copy of a busy service. Kafka's consumer group splits the
topic's partitions between them and moves partitions when one starts or stops (a
rebalance). Records read but not yet committed by the instance that loses a partition come
again to the one that gains it; the shared database's inbox must drop them, so every
validated assessment is applied exactly once however the partitions move.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from pathlib import Path

import httpx
import pytest

from contracts.policy import load_policy
from pbj.processes import REPO_ROOT, Supervisor, postgres_database_urls
from servicekit.eventlog import open_event_log
from tests.systems import admin, free_ports
from whatif.generate import generate_cohort, outgoing

pytestmark = [pytest.mark.e2e, pytest.mark.kafka, pytest.mark.postgres]

PEOPLE = 600


def validated_assessments(people: int) -> list:
    policy = load_policy(REPO_ROOT / "policies" / "lancashire.yaml")
    return [
        outgoing(envelope)
        for envelope in generate_cohort(policy, people, seed=77)
        if envelope.type.startswith("pb.assessment.assessment-validated")
    ]


async def budgets_per_assessment(database_url: str) -> Counter[str]:
    import asyncpg

    connection = await asyncpg.connect(database_url.replace("+asyncpg", ""))
    try:
        rows = await connection.fetch("SELECT assessment_id FROM budget_revisions")
    finally:
        await connection.close()
    return Counter(str(row["assessment_id"]) for row in rows)


def applied_by(url: str) -> float:
    """What this instance's consumer has applied, from its /metrics."""
    text = httpx.get(f"{url}/metrics", timeout=5).text
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith('pbj_events_consumed_total{consumer="allocation",outcome="applied"}')
    )


async def publish_paced(log_url: str, records: list, batches: int, pause: float) -> None:
    log = open_event_log(log_url)
    await log.start()
    try:
        size = -(-len(records) // batches)
        for first in range(0, len(records), size):
            await log.publish(records[first : first + size])
            await asyncio.sleep(pause)
    finally:
        await log.close()


def wait_for(predicate, timeout: float, what: str) -> None:
    # Generous: a single-node broker on a busy machine can take a while to elect the
    # leaders of new topics' partitions and to rebalance the group.
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.5)
    raise AssertionError(f"not within {timeout:.0f}s: {what}")


def test_two_allocation_instances_share_the_partitions_and_apply_each_assessment_once(
    tmp_path: Path, kafka_bootstrap: str, postgres_admin_url: str
):
    run_id = f"scale{uuid.uuid4().hex[:10]}"
    first_port, second_port = free_ports(2)
    system = Supervisor(
        data_dir=tmp_path,
        ports={"allocation": first_port},
        event_log_url=f"kafka://{kafka_bootstrap}?namespace={run_id}",
        database_urls={"allocation": postgres_database_urls(prefix=run_id)["allocation"]},
    )
    asyncio.run(admin(postgres_admin_url, f"CREATE DATABASE {run_id}_allocation"))
    records = validated_assessments(PEOPLE)
    third = len(records) // 3
    database = system.database_urls["allocation"]
    try:
        system.start()
        system.wait_ready(timeout=120)
        # A third of the assessments reach the first instance alone.
        asyncio.run(publish_paced(system.log_url, records[:third], 4, 0.2))
        # A second instance joins while events keep coming: the group rebalances.
        second = system.start_instance("allocation", second_port)
        system.wait_ready(timeout=120, names=[second])
        # The group rebalances at the members' next heartbeat (seconds), so this third
        # arrives over twelve seconds and most of it after the partitions have moved.
        asyncio.run(publish_paced(system.log_url, records[third : 2 * third], 24, 0.5))
        wait_for(
            lambda: sum(asyncio.run(budgets_per_assessment(database)).values()) >= 2 * third,
            300,
            "the first two thirds applied",
        )
        urls = system.urls()
        assert applied_by(urls[second]) > 0, "the second instance was given partitions"
        assert applied_by(urls["allocation"]) > 0
        # The first instance dies (SIGKILL: offsets it had not committed are lost) and the
        # last third arrives: the second takes over its partitions and what it left.
        system.kill("allocation")
        asyncio.run(publish_paced(system.log_url, records[2 * third :], 4, 0.2))
        wait_for(
            lambda: sum(asyncio.run(budgets_per_assessment(database)).values()) >= len(records),
            300,
            "every assessment applied after the first instance stopped",
        )
        time.sleep(2)  # anything applied twice would show now
        budgets = asyncio.run(budgets_per_assessment(database))
        assert len(budgets) == len(records)
        assert [a for a, n in budgets.items() if n > 1] == [], "an assessment applied twice"
    finally:
        system.stop()
        asyncio.run(admin(postgres_admin_url, f"DROP DATABASE {run_id}_allocation WITH (FORCE)"))
