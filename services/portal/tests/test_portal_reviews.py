"""The reviews page with planning behind it: a direct payment's review and an extra review
brought forward by a change of circumstances, in words a case worker reads."""

from __future__ import annotations

import uuid
from datetime import timedelta

from contracts import events as ev
from servicekit import clock
from servicekit.testing import deliver
from services.planning.tests.test_api import Service, signed_off
from services.portal.formatting import long_date
from services.portal.tests.test_portal import sign_in
from services.portal.tests.test_portal_decisions import (
    PortalFor,
    messages,
    planning,
    portal_for,
    post_form,
)

__all__ = ["planning", "portal_for"]  # the fixtures this module's tests use


async def test_the_reviews_page_shows_a_direct_payments_review_and_records_a_change(
    planning: Service, portal_for: PortalFor
) -> None:
    plan_id = await signed_off(planning)
    await deliver(
        planning.app,
        ev.DeploymentSetUp(
            person_id="p-1",
            council="lancashire",
            deployment_id=uuid.uuid4(),
            plan_id=uuid.UUID(plan_id),
            parts=[
                ev.DeploymentPart(option=ev.DeploymentOption.DIRECT_PAYMENT, annual_pence=520_000)
            ],
            gross_annual_pence=520_000,
            contribution_annual_pence=0,
            net_annual_pence=520_000,
            audit_tier="light_touch",
            policy_version="lancashire/2009.1",
        ),
    )
    async with portal_for(planning.app) as portal:
        await sign_in(portal, "care_manager")
        page = messages((await portal.get("/reviews?weeks=30")).text)
        assert "p-1 Review of the direct payment first review of the direct payment" in page

        happened = clock.today() - timedelta(days=2)
        recorded = await post_form(
            portal,
            "/reviews?weeks=30",
            "/reviews/changes",
            person_id="p-1",
            change="carer_stopped",
            happened_on=happened.isoformat(),
        )
        due = long_date(happened + timedelta(days=14))  # Lancashire: 14 days after
        shown = messages(recorded.text)
        assert f"Change recorded. An extra review of p-1's plan is due by {due}." in shown
        assert f"Extra review: a carer stopped on {long_date(happened)}" in shown

        refused = await post_form(
            portal,
            "/reviews",
            "/reviews/changes",
            person_id="p-1",
            change="other",
            happened_on=happened.isoformat(),
        )
        assert "say what changed" in messages(refused.text)
        nobody = await post_form(
            portal,
            "/reviews",
            "/reviews/changes",
            person_id="p-9",
            change="carer_stopped",
            happened_on=happened.isoformat(),
        )
        assert "p-9 has no signed-off plan to review." in messages(nobody.text)
