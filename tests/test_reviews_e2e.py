"""A direct payment's review end to end: payments sets a person's budget up as a direct
payment over HTTP, planning learns of it through the event log and books the review
within the first 6 months (Care and Support (Direct Payments) Regulations 2014, reg. 7),
and the review shows in the person's audit history and timeline and on the portal's
reviews page. The services and the portal run as real processes, on SQLite and the
embedded log, and on PostgreSQL and Kafka (docs/reviews.md)."""

from __future__ import annotations

import re
import time
from datetime import date
from typing import Any

import httpx
import pytest

from contracts.policy import PolicyBook
from contracts.vocabulary import Role
from pbj.journey import Staff, walk_journey
from pbj.processes import PORTAL, Supervisor
from rules.reviews import add_months
from servicekit.testing import POLICIES_DIR
from tests.systems import supervised_system

pytestmark = pytest.mark.e2e

BOOK = PolicyBook.from_directory(POLICIES_DIR)
WAIT_SECONDS = 60

system = supervised_system("reviews", "reviews", with_portal=True)


def eventually(what: str, attempt: Any) -> Any:
    deadline = time.monotonic() + WAIT_SECONDS
    while not (found := attempt()):
        assert time.monotonic() < deadline, f"never: {what}"
        time.sleep(0.5)
    return found


async def test_a_direct_payment_books_its_review_seen_in_planning_the_audit_and_the_portal(
    system: Supervisor,
) -> None:
    urls = system.urls()
    staff = Staff(system.data_dir, "lancashire")
    today = date.today()  # the services run on the real clock
    async with httpx.AsyncClient(timeout=30) as client:
        result = await walk_journey(
            client, urls, staff, BOOK.current("lancashire"), person_number=3, today=today
        )
    assert result.stage == "complete", result.steps
    person = result.person_id
    care_manager, auditor = staff(Role.CARE_MANAGER), staff(Role.AUDITOR)

    with httpx.Client(timeout=30) as client:

        def direct_payment_review() -> list[dict[str, Any]]:
            r = client.get(
                f"{urls['planning']}/v1/reviews", params={"person_id": person}, headers=care_manager
            )
            return [item for item in r.json()["items"] if item["kind"] == "direct_payment"]

        [review] = eventually("planning books the direct payment's review", direct_payment_review)
        due = date.fromisoformat(review["due_on"])
        assert today < due <= add_months(today, 6)  # set up today: reviewed within 6 months
        assert review["deployment_id"] == result.deployment_id

        def audited() -> list[dict[str, Any]]:
            r = client.get(
                f"{urls['audit']}/v1/people/{person}/history",
                params={"type": "review-scheduled", "limit": 200},
                headers=auditor,
            )
            items = r.json()["items"] if r.status_code == 200 else []
            return [i for i in items if i["data"].get("kind") == "direct_payment"]

        [kept] = eventually("the audit keeps the review", audited)
        assert kept["type"] == "pb.planning.review-scheduled.v3"
        timeline = client.get(
            f"{urls['audit']}/v1/people/{person}/timeline", headers=auditor
        ).json()["items"]
        assert f"Direct payment review scheduled for {due.isoformat()}" in [
            entry["summary"] for entry in timeline
        ]

        portal = urls[PORTAL]
        sign_in = client.get(f"{portal}/sign-in")
        token = re.search(r'name="csrf_token" value="([^"]+)"', sign_in.text)
        assert token is not None
        signed = client.post(
            f"{portal}/sign-in",
            data={
                "csrf_token": token.group(1),
                "council": "lancashire",
                "role": "care_manager",
                "user_id": "cm-ann",
                "next": "/reviews",
            },
        )
        assert signed.status_code == 303, signed.text
        page = client.get(f"{portal}/reviews", params={"weeks": 30}).text
    row = next(line for line in page.splitlines() if f">{person}</a>" in line and "direct" in line)
    assert "Review of the direct payment" in row
