"""On PostgreSQL, two releases committing at once cannot leave a gap in the payment feed:
feed numbers are taken in commit order (ADR 14)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import date
from pathlib import Path

import pytest
import sqlalchemy as sa

from contracts import events as ev
from servicekit.db import Database
from services.payments.db import PaymentsUnitOfWork, metadata, payment_feed
from tests.systems import migrated_database_of_its_own

pytestmark = [pytest.mark.postgres]

MIGRATIONS = Path(__file__).resolve().parent.parent / "services" / "payments" / "migrations"


@pytest.fixture
async def payments_database(postgres_admin_url: str) -> AsyncIterator[Database]:
    async with migrated_database_of_its_own(
        postgres_admin_url, "payments_feed", MIGRATIONS
    ) as database:
        yield database


def released(person_id: str) -> ev.PaymentReleased:
    return ev.PaymentReleased(
        person_id=person_id,
        council="lancashire",
        payment_id=uuid.uuid4(),
        schedule_id=uuid.uuid4(),
        deployment_id=uuid.uuid4(),
        instalment_number=1,
        option=ev.DeploymentOption.DIRECT_PAYMENT,
        amount_pence=20_000,
        due_on=date(2026, 7, 6),
    )


async def visible(database: Database, after: int = 0) -> list[tuple[int, str]]:
    async with database.sessions() as session:
        rows = await session.execute(
            sa.select(payment_feed.c.seq, payment_feed.c.person_id)
            .where(payment_feed.c.seq > after)
            .order_by(payment_feed.c.seq)
        )
        return [(row.seq, row.person_id) for row in rows]


async def test_a_release_that_commits_later_cannot_take_an_earlier_feed_number(
    payments_database: Database,
) -> None:
    def uow() -> PaymentsUnitOfWork:
        return PaymentsUnitOfWork(
            payments_database.sessions,
            outbox=metadata.tables["outbox"],
            inbox=metadata.tables["inbox"],
        )

    first = uow()
    await first.__aenter__()
    await first.ledger.append_to_feed([released("first")])  # numbered, not yet committed

    async def second_release() -> None:
        async with uow() as second:
            await second.ledger.append_to_feed([released("second")])
            await second.commit()

    second = asyncio.create_task(second_release())
    await asyncio.sleep(0.5)
    assert not second.done(), "the second release numbered its payment before the first committed"
    assert await visible(payments_database) == []  # a reader sees nothing uncommitted

    await first.commit()
    await first.__aexit__(None, None, None)
    await second
    assert await visible(payments_database) == [(1, "first"), (2, "second")]
    # A reader that had reached the first payment finds the second after it, not behind it.
    assert await visible(payments_database, after=1) == [(2, "second")]
