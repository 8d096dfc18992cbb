"""Events of one person's journey, with times, for the audit tests (not a test module).

Figures come from the seeds where they have one: Lancashire's six domains and their
maximum points (seed 003 ch.2 §ii), Council A's £250 / £415 a week approval limits
(seed 004 Appendix 1).
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from uuid import UUID

from contracts import events as ev
from contracts.envelope import Envelope
from contracts.money import Frequency
from contracts.vocabulary import AgeBand, ClientGroup, CompletedBy, Role

POLICY = "lancashire/2009.1"

# Seed 003 ch.2 §ii: Lancashire's domains, at their highest levels.
LANCASHIRE_LEVELS = {
    "staying_safe": 5,
    "communication": 5,
    "work_leisure_learning": 5,
    "essential_living_tasks": 5,
    "personal_care": 5,
    "health": 5,
}


def at(day: str, hour: int = 10) -> datetime:
    """A UTC time on an ISO date."""
    return datetime.combine(date.fromisoformat(day), datetime.min.time(), tzinfo=UTC).replace(
        hour=hour
    )


def envelope(event: ev.Event, when: datetime) -> Envelope:
    return Envelope(event=event, time=when)


class Journey:
    """Builds one person's events; ids stay stable so revisions and reviews line up."""

    def __init__(
        self,
        person_id: str,
        council: str = "lancashire",
        *,
        team: str = "north",
        key_worker_id: str = "kw-1",
        community_based: bool = True,
    ) -> None:
        self.person_id = person_id
        self.council = council
        self.team = team
        self.key_worker_id = key_worker_id
        self.community_based = community_based
        self.assessment_id = uuid.uuid4()
        self.budget_id = uuid.uuid4()
        self.plan_id = uuid.uuid4()
        self.deployment_id = uuid.uuid4()
        self.schedule_id = uuid.uuid4()

    def _base(self) -> dict[str, str]:
        return {"person_id": self.person_id, "council": self.council}

    def started(self, when: datetime) -> Envelope:
        return envelope(
            ev.AssessmentStarted(
                **self._base(),
                assessment_id=self.assessment_id,
                client_group=ClientGroup.LEARNING_DISABILITY,
                completed_by=CompletedBy.SUPPORTED,
                team=self.team,
                key_worker_id=self.key_worker_id,
                age_band=AgeBand.AGE_18_64,
                community_based=self.community_based,
                policy_version=POLICY,
            ),
            when,
        )

    def validated(self, when: datetime) -> Envelope:
        return envelope(
            ev.AssessmentValidated(
                **self._base(),
                assessment_id=self.assessment_id,
                client_group=ClientGroup.LEARNING_DISABILITY,
                completed_by=CompletedBy.SUPPORTED,
                team=self.team,
                key_worker_id=self.key_worker_id,
                age_band=AgeBand.AGE_18_64,
                community_based=self.community_based,
                domain_levels=dict(LANCASHIRE_LEVELS),
                adjustments=[
                    ev.LevelAdjustment(
                        domain="staying_safe",
                        original_level=4,
                        validated_level=5,
                        reason="Practitioner saw more risk than the person ticked",
                    )
                ],
                significant_informal_support=False,
                needs_24_7=False,
                carer_support_weekly_pence=0,
                other_funding=[],
                outcomes=["Live at home"],
                risks=[],
                validated_by="cm-1",
                policy_version=POLICY,
            ),
            when,
        )

    def budget(
        self,
        when: datetime,
        *,
        revision: int = 1,
        weekly_pence: int = 25_000,
        stage: ev.BudgetStage = ev.BudgetStage.INDICATIVE,
        reason: str | None = None,
    ) -> Envelope:
        return envelope(
            ev.BudgetIssued(
                **self._base(),
                budget_id=self.budget_id,
                assessment_id=self.assessment_id,
                client_group=ClientGroup.LEARNING_DISABILITY,
                stage=stage,
                revision=revision,
                revision_reason=reason,
                points=70,
                scale=ev.Scale.STANDARD,
                weekly_pence=weekly_pence,
                annual_pence=weekly_pence * 52,
                ceiling_weekly_pence=None,
                ceiling_exception=False,
                explanation=[],
                agreed_by="tm-1",
                agreed_by_role=Role.TEAM_MANAGER,
                policy_version=POLICY,
            ),
            when,
        )

    def plan_submitted(self, when: datetime, *, weekly_pence: int = 24_000) -> Envelope:
        return envelope(
            ev.PlanSubmitted(
                **self._base(),
                plan_id=self.plan_id,
                budget_id=self.budget_id,
                plan_version=1,
                weekly_pence=weekly_pence,
                annual_pence=weekly_pence * 52,
                request_for_more=False,
            ),
            when,
        )

    def signed_off(self, when: datetime, *, weekly_pence: int = 24_000) -> Envelope:
        return envelope(
            ev.PlanSignedOff(
                **self._base(),
                plan_id=self.plan_id,
                budget_id=self.budget_id,
                assessment_id=self.assessment_id,
                plan_version=1,
                weekly_pence=weekly_pence,
                annual_pence=weekly_pence * 52,
                one_off_pence=0,
                contingency_weekly_pence=1_000,
                lines=[
                    ev.PlanLineSummary(
                        line_id=uuid.uuid4(),
                        description="Personal assistant, mornings",
                        provider_kind=ev.ProviderKind.PERSONAL_ASSISTANT,
                        frequency=Frequency.WEEKLY,
                        amount_pence=weekly_pence - 1_000,
                        annual_pence=(weekly_pence - 1_000) * 52,
                        domains=["personal_care"],
                    )
                ],
                request_for_more=False,
                signed_off_by="cm-1",
                signed_off_by_role=Role.CARE_MANAGER,
                first_review_on=when.date(),
                policy_version=POLICY,
            ),
            when,
        )

    def deployed(self, when: datetime, *, annual_pence: int = 24_000 * 52) -> Envelope:
        return envelope(
            ev.DeploymentSetUp(
                **self._base(),
                deployment_id=self.deployment_id,
                plan_id=self.plan_id,
                parts=[
                    ev.DeploymentPart(
                        option=ev.DeploymentOption.DIRECT_PAYMENT, annual_pence=annual_pence
                    )
                ],
                gross_annual_pence=annual_pence,
                contribution_annual_pence=0,
                net_annual_pence=annual_pence,
                audit_tier="detailed_annual_account",
                policy_version=POLICY,
            ),
            when,
        )

    def agreement(self, when: datetime) -> Envelope:
        return envelope(
            ev.AgreementSigned(
                **self._base(),
                deployment_id=self.deployment_id,
                signed_on=when.date(),
                recorded_by="fin-1",
            ),
            when,
        )

    def scheduled(self, when: datetime, *, total_pence: int = 96_000) -> Envelope:
        return envelope(
            ev.PaymentScheduled(
                **self._base(),
                schedule_id=self.schedule_id,
                deployment_id=self.deployment_id,
                option=ev.DeploymentOption.DIRECT_PAYMENT,
                frequency=Frequency.FOUR_WEEKLY,
                total_pence=total_pence,
                instalments=1,
                first_due_on=when.date(),
            ),
            when,
        )

    def paid(self, when: datetime, *, amount_pence: int = 96_000, number: int = 1) -> Envelope:
        return envelope(
            ev.PaymentReleased(
                **self._base(),
                payment_id=uuid.uuid4(),
                schedule_id=self.schedule_id,
                deployment_id=self.deployment_id,
                instalment_number=number,
                option=ev.DeploymentOption.DIRECT_PAYMENT,
                amount_pence=amount_pence,
                due_on=when.date(),
            ),
            when,
        )

    def review_scheduled(self, when: datetime, review_id: UUID, due_on: date) -> Envelope:
        return envelope(
            ev.ReviewScheduled(
                **self._base(),
                review_id=review_id,
                plan_id=self.plan_id,
                kind=ev.ReviewKind.FIRST,
                due_on=due_on,
                scheduled_by="care_manager:cm-1",
            ),
            when,
        )

    def reviewed(self, when: datetime, review_id: UUID | None = None) -> Envelope:
        return envelope(
            ev.ReviewCompleted(
                **self._base(),
                review_id=review_id or uuid.uuid4(),
                plan_id=self.plan_id,
                outcome=ev.ReviewOutcome.NO_CHANGE,
                completed_on=when.date(),
                completed_by="cm-1",
            ),
            when,
        )

    def full(self, start: str = "2025-01-06") -> list[Envelope]:
        """Assessment to a completed review, a step a week from `start`."""
        day = date.fromisoformat(start)

        def week(n: int) -> datetime:
            return at(date.fromordinal(day.toordinal() + 7 * n).isoformat())

        review_id = uuid.uuid4()
        return [
            self.started(week(0)),
            self.validated(week(1)),
            self.budget(week(2)),
            self.signed_off(week(3)),
            self.deployed(week(4)),
            self.agreement(week(4)),
            self.scheduled(week(5)),
            self.paid(week(5)),
            self.review_scheduled(week(5), review_id, week(10).date()),
            self.reviewed(week(10), review_id),
        ]
