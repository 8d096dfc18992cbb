"""Direct payments on a prepaid card end to end: the card provider's file imported over
HTTP, the surplus above Council A's 10 weeks flagged, the written notice, the person's
answer, a recoup refused before the notice period ends, then (the period over) the recoup;
each reaches the audit through the event log and shows in the person's timeline. The
services run as real processes, on SQLite and the embedded log, and on PostgreSQL and Kafka.

Seed 004 App.1 Council A: unspent funds above 10 weeks of the direct payment are repaid.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import pytest

from contracts.policy import PolicyBook
from contracts.vocabulary import Role
from pbj.journey import Staff, walk_journey
from pbj.processes import Supervisor
from servicekit.testing import POLICIES_DIR
from tests.systems import supervised_system

pytestmark = pytest.mark.e2e

system = supervised_system("cards", "cards")
COUNCIL = "council_a"
CARD_EVENTS = [
    "pb.payments.card-transactions-imported.v1",
    "pb.payments.card-surplus-flagged.v1",
    "pb.payments.recoup-notice-sent.v1",
    "pb.payments.recoup-response-recorded.v1",
    "pb.payments.card-funds-recouped.v1",
]


def card_file(person_id: str, on: date) -> bytes:
    return (
        "account_reference,person_id,row_type,transaction_id,posted_on,amount_pence,"
        "merchant_category\r\n"
        f"PPC-{person_id},{person_id},transaction,TX-{person_id}-1,{on},-4599,personal_assistant\r\n"
        f"PPC-{person_id},{person_id},transaction,TX-{person_id}-2,{on},-1250,leisure\r\n"
        f"PPC-{person_id},{person_id},balance,,{on},5000000,\r\n"
    ).encode()


def history_types(client: httpx.Client, audit: str, person_id: str, auditor: Any) -> list[str]:
    r = client.get(f"{audit}/v1/people/{person_id}/history?limit=200", headers=auditor)
    return [item["type"] for item in r.json()["items"]] if r.status_code == 200 else []


def test_a_surplus_is_recouped_only_after_the_notice_period_and_the_audit_shows_each_step(
    system: Supervisor,
) -> None:
    today = datetime.now(UTC).date()
    book = PolicyBook.from_directory(POLICIES_DIR)
    staff = Staff(system.data_dir, COUNCIL)

    async def walk() -> Any:
        async with httpx.AsyncClient(timeout=30) as client:
            return await walk_journey(
                client, system.urls(), staff, book.current(COUNCIL), today=today
            )

    journey = asyncio.run(walk())
    assert journey.stage == "complete", journey
    person_id = journey.person_id
    urls = system.urls()
    payments, finance = urls["payments"], staff(Role.FINANCE)
    with httpx.Client(timeout=30) as client:
        imported = client.post(
            f"{payments}/v1/card-accounts/transactions",
            headers={**finance, "Content-Type": "text/csv"},
            content=card_file(person_id, today),
        )
        assert imported.status_code == 200, imported.text
        assert imported.json()["surpluses_flagged"] == 1
        [account] = client.get(
            f"{payments}/v1/card-accounts", params={"person_id": person_id}, headers=finance
        ).json()["items"]
        url = f"{payments}/v1/card-accounts/{account['account_id']}"
        surplus = account["surpluses"][0]["surplus_pence"]
        sent = client.post(
            f"{url}/recoup-notices",
            headers=finance,
            json={"amount_pence": surplus, "reason": "Money has built up beyond the plan"},
        )
        assert sent.status_code == 201, sent.text
        notice = sent.json()["notices"][0]
        answered = client.post(
            f"{url}/recoup-notices/{notice['notice_id']}/responses",
            headers=staff(Role.CARE_MANAGER),
            json={"response": "disagrees", "comments": "Saving for a short break, by phone"},
        )
        assert answered.status_code == 201, answered.text

        early = client.post(f"{url}/recoups", headers=finance, json={"amount_pence": surplus})
        assert (early.status_code, early.json()["error"]) == (409, "NoticePeriodNotOver")

        # The period passes: payments judges it on the day after the last day to respond.
        respond_by = date.fromisoformat(notice["respond_by"])
        system.extra_env["PAYMENTS_RECOUP_TODAY"] = (respond_by + timedelta(days=1)).isoformat()
        system.restart("payments")
        done = client.post(f"{url}/recoups", headers=finance, json={"amount_pence": surplus})
        assert done.status_code == 201, done.text

        auditor = staff(Role.AUDITOR)
        deadline = time.monotonic() + 60
        while not set(CARD_EVENTS) <= set(history_types(client, urls["audit"], person_id, auditor)):
            assert time.monotonic() < deadline, "the audit never received every card event"
            time.sleep(0.5)
        types = history_types(client, urls["audit"], person_id, auditor)
        timeline = client.get(
            f"{urls['audit']}/v1/people/{person_id}/timeline?limit=200", headers=auditor
        ).json()["items"]
    assert [t for t in types if t in CARD_EVENTS] == CARD_EVENTS  # one recoup, in order
    summaries = " | ".join(item["summary"] for item in timeline)
    pounds = f"£{surplus // 100:,}.{surplus % 100:02d}"
    assert f"Card surplus of {pounds} flagged" in summaries
    assert f"Written notice to recoup {pounds} sent; response by {respond_by}" in summaries
    assert "Response to the recoup notice: disagrees" in summaries
    assert f"{pounds} recouped from the card account" in summaries
