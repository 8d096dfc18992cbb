"""The personal budget statement (Care Act 2014 s.26) and the person's challenge to it.

Payments knows the three figures a statement gives: the budget's cost (the deployment's
gross annual), what the person pays (its contribution) and what the council pays (its
net). A statement is issued when one of them changes (rules/statement.py), in plain words
the person reads in their portal page and can download. The person may challenge a
statement's sufficiency with a reason; a team manager answers the challenge, upheld (a
review of the person's needs and budget is asked for) or not upheld, with reasons.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from uuid import UUID, uuid4

from contracts import events as ev
from contracts.events import ChallengeOutcome, FinancialAssessmentOutcome
from contracts.vocabulary import Role
from rules import statement as rule
from rules.statement import BudgetFigures
from servicekit.errors import Conflict, NotFound
from services.payments.errors import PaymentsError


class StatementNotFound(PaymentsError, NotFound):
    def __init__(self, statement_id: UUID | str) -> None:
        super().__init__(f"budget statement {statement_id} not found")


class PersonHasNoStatement(PaymentsError, NotFound):
    def __init__(self, person_id: str) -> None:
        super().__init__(f"no personal budget statement for person {person_id}")


class ChallengeNotFound(PaymentsError, NotFound):
    def __init__(self, challenge_id: UUID | str) -> None:
        super().__init__(f"statement challenge {challenge_id} not found")


class ChallengeAlreadyAnswered(PaymentsError, Conflict):
    pass


class StatementSuperseded(PaymentsError, Conflict):
    """Only the statement in force can be challenged; a newer one replaced this one."""


@dataclass
class BudgetStatement:
    """One personal budget statement as issued."""

    statement_id: UUID
    council: str
    person_id: str
    deployment_id: UUID
    issued_on: date
    applies_from: date
    figures: BudgetFigures
    charge_outcome: FinancialAssessmentOutcome | None
    financial_assessment_id: UUID | None
    text: str
    policy_version: str
    events: list[ev.Event] = field(default_factory=list, compare=False, repr=False)

    @classmethod
    def due(
        cls,
        last: BudgetStatement | None,
        *,
        council: str,
        person_id: str,
        deployment_id: UUID,
        figures: BudgetFigures,
        issued_on: date,
        applies_from: date,
        charge_outcome: FinancialAssessmentOutcome | None,
        financial_assessment_id: UUID | None,
        policy_version: str,
    ) -> BudgetStatement | None:
        """A new statement when one of the three figures changed since the last; else None."""
        if not rule.statement_due(last.figures if last else None, figures):
            return None
        text = rule.statement_text(
            figures, applies_from=applies_from, charge_outcome=charge_outcome
        )
        statement = cls(
            statement_id=uuid4(),
            council=council,
            person_id=person_id,
            deployment_id=deployment_id,
            issued_on=issued_on,
            applies_from=applies_from,
            figures=figures,
            charge_outcome=charge_outcome,
            financial_assessment_id=financial_assessment_id,
            text=text,
            policy_version=policy_version,
        )
        statement.events.append(
            ev.BudgetStatementIssued(
                person_id=person_id,
                council=council,
                statement_id=statement.statement_id,
                deployment_id=deployment_id,
                issued_on=issued_on,
                applies_from=applies_from,
                total_annual_pence=figures.total_annual_pence,
                person_pays_annual_pence=figures.person_pays_annual_pence,
                council_pays_annual_pence=figures.council_pays_annual_pence,
                total_weekly_pence=figures.total_weekly_pence,
                person_pays_weekly_pence=figures.person_pays_weekly_pence,
                council_pays_weekly_pence=figures.council_pays_weekly_pence,
                charge_outcome=charge_outcome,
                financial_assessment_id=financial_assessment_id,
                text=text,
                policy_version=policy_version,
            )
        )
        return statement

    def challenge(
        self, *, reason: str, by: str, on: date, latest: BudgetStatement
    ) -> StatementChallenge:
        """The person says this budget is not enough to meet their needs."""
        if latest.statement_id != self.statement_id:
            raise StatementSuperseded(
                f"budget statement {self.statement_id} was replaced on {latest.issued_on} by "
                f"statement {latest.statement_id}: challenge that one"
            )
        challenge = StatementChallenge(
            challenge_id=uuid4(),
            statement_id=self.statement_id,
            council=self.council,
            person_id=self.person_id,
            deployment_id=self.deployment_id,
            reason=reason,
            challenged_on=on,
            challenged_by=by[:200],
        )
        challenge.events.append(
            ev.BudgetStatementChallenged(
                person_id=self.person_id,
                council=self.council,
                challenge_id=challenge.challenge_id,
                statement_id=self.statement_id,
                deployment_id=self.deployment_id,
                reason=reason,
                challenged_on=on,
                challenged_by=challenge.challenged_by,
            )
        )
        return challenge


@dataclass
class StatementChallenge:
    """A person's challenge to a statement, and the team manager's answer once given."""

    challenge_id: UUID
    statement_id: UUID
    council: str
    person_id: str
    deployment_id: UUID
    reason: str
    challenged_on: date
    challenged_by: str
    outcome: ChallengeOutcome | None = None
    response: str | None = None
    answered_on: date | None = None
    answered_by: str | None = None
    answered_by_role: Role | None = None
    events: list[ev.Event] = field(default_factory=list, compare=False, repr=False)

    @property
    def open(self) -> bool:
        return self.outcome is None

    @property
    def review_requested(self) -> bool:
        return self.outcome is ChallengeOutcome.UPHELD

    def answer(
        self, *, outcome: ChallengeOutcome, response: str, by: str, role: Role, on: date
    ) -> None:
        """Record the answer: upheld asks for a review; not upheld gives the reasons."""
        if not self.open:
            raise ChallengeAlreadyAnswered(
                f"challenge {self.challenge_id} was answered on {self.answered_on} "
                f"({(self.outcome or '').replace('_', ' ')})"
            )
        self.outcome = outcome
        self.response = response
        self.answered_on = on
        self.answered_by = by[:200]
        self.answered_by_role = role
        self.events.append(
            ev.StatementChallengeAnswered(
                person_id=self.person_id,
                council=self.council,
                challenge_id=self.challenge_id,
                statement_id=self.statement_id,
                outcome=outcome,
                response=response,
                review_requested=self.review_requested,
                answered_on=on,
                answered_by=self.answered_by,
                answered_by_role=role,
            )
        )
