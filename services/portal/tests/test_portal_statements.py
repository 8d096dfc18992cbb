"""The personal budget statement in the portal (Care Act 2014 s.26): the person reads it in
plain words, downloads it and challenges it; a team manager finds the challenge in the
approvals queue and answers it. Payments runs in-process behind the portal; the other
services' paths answer 404 there, which the pages read as nothing to show."""

from __future__ import annotations

from pathlib import Path

from contracts import events as ev
from servicekit.testing import Tokens, deliver, outbox_events_of, running
from services.payments.api import create_app as create_payments
from services.payments.settings import Settings as PaymentsSettings
from services.payments.tests import test_api as payments_tests
from services.payments.tests.test_statements import (
    arranged_on_the_charge,
    financial_assessment,
)
from services.portal.tests import test_portal_decisions
from services.portal.tests.test_portal import sign_in
from services.portal.tests.test_portal_decisions import PortalFor, messages, post_form

payments_clock = payments_tests.service_clock
portal_for = test_portal_decisions.portal_for


async def test_the_person_reads_downloads_and_challenges_and_a_team_manager_answers(
    data_dir: Path, policies_dir: Path, tokens: Tokens, portal_for: PortalFor
) -> None:
    payments = create_payments(PaymentsSettings(data_dir=data_dir, policies_dir=policies_dir))
    async with running(payments) as service, portal_for(payments) as portal:
        await deliver(payments, financial_assessment(weekly_charge_pence=8_985))
        await arranged_on_the_charge(payments, service, tokens)

        await sign_in(portal, "person", person_id="p-1")
        page = messages((await portal.get("/me")).text)
        assert "Personal budget statement" in page
        assert "You pay £89.85 a week (£4,672.20 a year), as your financial assessment" in page
        [statement] = await outbox_events_of(payments, ev.BudgetStatementIssued)
        download = await portal.get(f"/me/statements/{statement.statement_id}.txt")
        assert download.status_code == 200
        assert "attachment" in download.headers["content-disposition"]
        assert "The council pays: £151.65 a week, £7,885.80 a year" in download.text

        action = f"/me/statements/{statement.statement_id}/challenge"
        sent = await post_form(
            portal, "/me", action, reason="Nothing is left for my evening visits"
        )
        assert "Your challenge has been sent" in messages(sent.text)
        assert "A team manager has not answered yet" in messages(sent.text)

        await sign_in(portal, "team_manager")
        queue = messages((await portal.get("/approvals")).text)
        assert "Nothing is left for my evening visits" in queue
        [challenge] = await outbox_events_of(payments, ev.BudgetStatementChallenged)
        answered = await post_form(
            portal,
            "/approvals",
            f"/statement-challenges/{challenge.challenge_id}/answer",
            outcome="not_upheld",
            response="The evening visits are costed in the plan",
        )
        assert "Your answer is recorded" in messages(answered.text)
        [answer] = await outbox_events_of(payments, ev.StatementChallengeAnswered)
        assert answer.outcome is ev.ChallengeOutcome.NOT_UPHELD and not answer.review_requested

        person_page = messages((await portal.get("/people/p-1")).text)
        assert "not upheld. The evening visits are costed in the plan" in person_page
