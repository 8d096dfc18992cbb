"""A seeded synthetic cohort for a council's policy: tests, demos and the benchmark.

Every person gets an `AssessmentValidated`; most get an indicative `BudgetIssued` computed
by allocation's own RAS, and most of those a `PlanSignedOff`, the final `BudgetIssued` at
the plan's cost and a `DeploymentSetUp` charged by payments' own contribution rule, and,
where the policy has the Care Act's charging figures, a `FinancialAssessmentCompleted`
worked out by the rulebook's financial assessment, as the services would publish them. The
same seed gives the same cohort, ids and all.

The mix is plausible, not real: about half older people (the largest client group in adult
social care), needs that cluster by client group (personal care for older people,
communication and staying safe for learning disability, ...), informal support for about
half, a few with other funding streams. Nobody's details are real; ids are opaque.

`write_cohort` publishes in large batches into a *new* embedded log file only: it refuses
to add to an existing log, so it can never be pointed at a live one by mistake.
"""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from contracts import events as ev
from contracts.envelope import Envelope
from contracts.money import WEEKS_PER_YEAR, Frequency, apply_basis_points
from contracts.policy import ContributionKind, Policy
from contracts.registry import ALL_TOPICS
from contracts.vocabulary import AgeBand, ClientGroup, CompletedBy, Role
from rules import charging as charging_rules
from rules.audit_tiers import audit_tier
from rules.authority import lowest_sign_off_role
from rules.contribution import contribution_annual
from rules.ras import calculate_budget
from servicekit.eventlog import OutgoingRecord
from servicekit.eventlog.embedded import EmbeddedEventLog
from whatif.cohort import Assessed
from whatif.compare import approver
from whatif.errors import WhatIfError

PUBLISH_BATCH = 5_000
START = datetime(2009, 4, 1, 9, 0, tzinfo=UTC)

# Share of people by client group (weights; only the policy's groups are used).
GROUP_WEIGHTS: dict[ClientGroup, int] = {
    ClientGroup.OLDER_PEOPLE: 52,
    ClientGroup.PHYSICAL_DISABILITY: 14,
    ClientGroup.LEARNING_DISABILITY: 17,
    ClientGroup.MENTAL_HEALTH: 13,
    ClientGroup.CARERS: 4,
}
# Levels above (+) or below (-) a person's overall need, by client group and domain key.
EMPHASIS: dict[ClientGroup, dict[str, float]] = {
    ClientGroup.OLDER_PEOPLE: {
        "personal_care": 0.7,
        "health": 0.5,
        "essential_living_tasks": 0.5,
        "work_leisure_learning": -0.8,
        "communication": -0.3,
    },
    ClientGroup.PHYSICAL_DISABILITY: {
        "personal_care": 0.8,
        "essential_living_tasks": 0.6,
        "communication": -0.8,
    },
    ClientGroup.LEARNING_DISABILITY: {
        "communication": 0.8,
        "staying_safe": 0.6,
        "work_leisure_learning": 0.5,
        "essential_living_tasks": 0.4,
    },
    ClientGroup.MENTAL_HEALTH: {
        "work_leisure_learning": 0.6,
        "staying_safe": 0.2,
        "health": 0.3,
        "personal_care": -0.8,
    },
    ClientGroup.CARERS: {"staying_safe": -0.8, "personal_care": -0.8},
}
LANCASHIRE_TEAMS = (
    "Lancaster and Morecambe",
    "Preston",
    "Chorley and South Ribble",
    "West Lancashire",
    "Burnley and Pendle",
    "Hyndburn and Rossendale",
    "Fylde and Wyre",
)  # seed 003 ch.1: three PCT footprints and twelve districts; team names are ours
OTHER_TEAMS = ("North", "South", "East", "West", "Central")


def _uuid(rng: random.Random) -> uuid.UUID:
    return uuid.UUID(int=rng.getrandbits(128), version=4)


@dataclass(frozen=True)
class GeneratedCohort:
    people: int
    events: int
    seconds: float


def person_events(
    policy: Policy,
    person_id: str,
    *,
    client_group: ClientGroup,
    domain_levels: dict[str, int],
    team: str = "Preston",
    age_band: AgeBand = AgeBand.AGE_18_64,
    significant_informal_support: bool = False,
    needs_24_7: bool = False,
    carer_support_weekly_pence: int = 0,
    other_funding: Sequence[tuple[ev.OtherFundingSource, int]] = (),
    budget: bool = True,
    plan_weekly_pence: int | None = None,
    plan_basis_points: int | None = None,
    assessed_max_weekly_contribution_pence: int | None = None,
    completed_by: CompletedBy = CompletedBy.SELF,
    rng: random.Random | None = None,
    at: datetime = START,
) -> list[Envelope]:
    """One person's journey as the services publish it, up to the deployment.

    A plan is signed off at `plan_weekly_pence`, or at `plan_basis_points` of the indicative
    budget (10,000 = the budget exactly); neither: no plan. A deployment follows every plan,
    charged by the policy's contribution rule capped at the assessed maximum (none given:
    the rule's full share).
    """
    rng = rng or random.Random(person_id)
    council, version = policy.council, policy.policy_version
    common = {"person_id": person_id, "council": council}
    assessment_id = _uuid(rng)
    assessed = ev.AssessmentValidated(
        **common,
        assessment_id=assessment_id,
        client_group=client_group,
        completed_by=completed_by,
        team=team,
        key_worker_id=f"kw-{rng.randrange(1, 400):03d}",
        age_band=age_band,
        community_based=True,
        domain_levels=domain_levels,
        adjustments=[],
        significant_informal_support=significant_informal_support,
        needs_24_7=needs_24_7,
        carer_support_weekly_pence=carer_support_weekly_pence,
        other_funding=[
            ev.OtherFunding(source=source, weekly_pence=pence) for source, pence in other_funding
        ],
        outcomes=["To stay living in my own home and see my friends."],
        risks=[],
        validated_by=f"cm-{rng.randrange(1, 200):03d}",
        policy_version=version,
    )
    clock = iter(at + timedelta(days=d) for d in (0, 7, 35, 36, 40))

    def envelope(event: ev.Event, causation: str | None = None) -> Envelope:
        return Envelope(
            event=event,
            id=str(_uuid(rng)),
            time=next(clock),
            correlation_id=str(assessment_id),
            causation_id=causation,
        )

    out = [envelope(assessed)]
    if not budget:
        return out
    calc = calculate_budget(Assessed.of(assessed).budget_inputs(), policy)
    agreed_role = approver(calc, policy) or Role.PANEL
    budget_id = _uuid(rng)
    issued = ev.BudgetIssued(
        **common,
        budget_id=budget_id,
        assessment_id=assessment_id,
        client_group=client_group,
        stage=ev.BudgetStage.INDICATIVE,
        revision=1,
        revision_reason="assessment validated",
        points=calc.points,
        scale=calc.scale,
        weekly_pence=calc.weekly_pence,
        annual_pence=calc.annual_pence,
        ceiling_weekly_pence=calc.ceiling_weekly_pence,
        ceiling_exception=calc.above_ceiling,
        explanation=list(calc.explanation),
        agreed_by=f"{agreed_role.value}-{rng.randrange(1, 60):02d}",
        agreed_by_role=agreed_role,
        policy_version=version,
    )
    out.append(envelope(issued, out[0].id))
    if plan_weekly_pence is None and plan_basis_points is not None:
        plan_weekly_pence = apply_basis_points(calc.weekly_pence, plan_basis_points)
    if not plan_weekly_pence:
        return out
    plan_id = _uuid(rng)
    annual = plan_weekly_pence * WEEKS_PER_YEAR
    signer = lowest_sign_off_role(policy, plan_weekly_pence, client_group) or Role.PANEL
    signed = ev.PlanSignedOff(
        **common,
        plan_id=plan_id,
        budget_id=budget_id,
        assessment_id=assessment_id,
        plan_version=1,
        weekly_pence=plan_weekly_pence,
        annual_pence=annual,
        one_off_pence=0,
        contingency_weekly_pence=0,
        lines=[
            ev.PlanLineSummary(
                line_id=_uuid(rng),
                description="Personal assistant and support with daily living",
                provider_kind=ev.ProviderKind.PERSONAL_ASSISTANT,
                frequency=Frequency.WEEKLY,
                amount_pence=plan_weekly_pence,
                annual_pence=annual,
                domains=[d.key for d in policy.questionnaire.domains[:2]],
            )
        ],
        request_for_more=plan_weekly_pence > calc.weekly_pence,
        signed_off_by=f"{signer.value}-{rng.randrange(1, 60):02d}",
        signed_off_by_role=signer,
        first_review_on=(at + timedelta(days=35 + policy.reviews.first_after_days)).date(),
        policy_version=version,
    )
    out.append(envelope(signed, out[1].id))
    final = issued.model_copy(
        update={
            "stage": ev.BudgetStage.FINAL,
            "revision": 2,
            "revision_reason": "support plan signed off",
            "weekly_pence": plan_weekly_pence,
            "annual_pence": annual,
            "ceiling_exception": calc.ceiling_weekly_pence is not None
            and plan_weekly_pence > calc.ceiling_weekly_pence,
            "explanation": [
                *calc.explanation,
                ev.ExplanationLine(
                    label=f"Signed-off support plan: {plan_weekly_pence} pence a week",
                    amount_pence=plan_weekly_pence,
                ),
            ],
            "agreed_by": signed.signed_off_by,
            "agreed_by_role": signer,
        }
    )
    out.append(envelope(final, out[2].id))
    rule = policy.contribution
    if rule.kind is ContributionKind.NONE:
        contribution = 0
    else:
        cap = (
            annual
            if assessed_max_weekly_contribution_pence is None
            else (assessed_max_weekly_contribution_pence)
        )
        contribution = contribution_annual(annual, rule, cap)
    part = ev.DeploymentPart(option=ev.DeploymentOption.DIRECT_PAYMENT, annual_pence=annual)
    deployed = ev.DeploymentSetUp(
        **common,
        deployment_id=_uuid(rng),
        plan_id=plan_id,
        parts=[part],
        gross_annual_pence=annual,
        contribution_annual_pence=contribution,
        net_annual_pence=annual - contribution,
        audit_tier=audit_tier([part], annual, policy.monitoring),
        policy_version=version,
    )
    out.append(envelope(deployed, out[2].id))
    return out


def finances_events(policy: Policy, deployed: list[Envelope], age_band: AgeBand) -> list[Envelope]:
    """A full financial assessment for someone whose support is deployed, as assessment
    publishes it, worked out by the rulebook under the policy's charging figures.

    Savings are spread so that about half are at or below the lower capital limit, a third
    between the limits and the rest at or above the upper; income is a state pension at
    pension age, otherwise Employment and Support Allowance. The assessment is dated when
    the policy's figures apply (a reassessment at the uprating, for a cohort older than
    them). Drawn from a generator of its own, so the rest of the cohort stays as it was.
    Nothing when the policy has no charging figures or lacks the kinds used.
    """
    charging = policy.charging
    assessed = deployed[0].event
    if charging is None or not isinstance(assessed, ev.AssessmentValidated):
        return []
    rng = random.Random(f"finances-{assessed.person_id}")
    older = age_band is not AgeBand.AGE_18_64
    circumstance = "single_pension_credit_age" if older else "single_25_to_pension_credit_age"
    kind = "state_pension" if older else "employment_and_support_allowance"
    figure = charging.minimum_income_guarantee.get(circumstance)
    if (
        figure is None
        or kind not in charging.income_kinds
        or "savings" not in charging.capital_kinds
    ):
        return []
    limits = charging.capital
    draw = rng.random()
    if draw < 0.5:
        savings = rng.randrange(0, limits.lower_limit.pence + 1)
    elif draw < 0.83:
        savings = rng.randrange(limits.lower_limit.pence + 1, limits.upper_limit.pence)
    else:
        savings = rng.randrange(limits.upper_limit.pence, 3 * limits.upper_limit.pence)
    income = rng.randrange(16_000, 30_000) if older else rng.randrange(9_000, 20_000)
    plan = deployed[2].event
    cost = plan.weekly_pence if isinstance(plan, ev.PlanSignedOff) else 0
    dre = (
        (charging_rules.Expenditure("Extra heating", rng.randrange(300, 1_500)),)
        if rng.random() < 0.5
        else ()
    )
    housing = rng.randrange(500, 3_000) if rng.random() < 0.3 else 0
    used = (limits.upper_limit, limits.lower_limit, limits.tariff_band)
    on = max(deployed[-1].time.date(), figure.applies_from, *(f.applies_from for f in used))
    on = max(on, limits.tariff_per_band_weekly.applies_from)
    result = charging_rules.assess(
        charging_rules.FinancialCircumstances(
            cost_of_support_weekly_pence=cost,
            capital=(charging_rules.Amount("savings", savings),),
            income_weekly=(charging_rules.Amount(kind, income),),
            mig_circumstance=circumstance,
            children=0,
            premiums=(),
            housing_costs_weekly_pence=housing,
            disability_related_expenditure=dre,
        ),
        charging,
        on,
    )
    event = ev.FinancialAssessmentCompleted(
        person_id=assessed.person_id,
        council=assessed.council,
        financial_assessment_id=_uuid(rng),
        assessment_id=assessed.assessment_id,
        outcome=(
            ev.FinancialAssessmentOutcome.FULL_COST_PAYER
            if result.full_cost_payer
            else ev.FinancialAssessmentOutcome.ASSESSED
        ),
        assessed_on=on,
        cost_of_support_weekly_pence=cost,
        capital=[
            ev.AssessedAmount(kind=a.kind, pence=a.pence, counted=a.counted) for a in result.capital
        ],
        capital_counted_pence=result.capital_counted_pence,
        tariff_income_weekly_pence=result.tariff_income_weekly_pence,
        income_weekly=[
            ev.AssessedAmount(kind=a.kind, pence=a.pence, counted=a.counted)
            for a in result.income_weekly
        ],
        income_counted_weekly_pence=result.income_counted_weekly_pence,
        mig_circumstance=circumstance,
        mig_children=0,
        mig_premiums=[],
        minimum_income_guarantee_weekly_pence=result.minimum_income_guarantee_weekly_pence,
        housing_costs_weekly_pence=housing,
        disability_related_expenditure=[
            ev.ExpenditureItem(description=i.description, weekly_pence=i.weekly_pence) for i in dre
        ],
        disability_related_expenditure_weekly_pence=(
            result.disability_related_expenditure_weekly_pence
        ),
        weekly_charge_pence=result.weekly_charge_pence,
        lines=[
            ev.ChargeLine(label=line.label, weekly_pence=line.weekly_pence, source=line.source)
            for line in result.lines
        ],
        figures_to_confirm=list(result.figures_to_confirm),
        assessed_by=f"finance:fo-{rng.randrange(1, 30):02d}",
        policy_version=policy.policy_version,
    )
    when = datetime.combine(on, deployed[-1].time.timetz())
    return [
        Envelope(
            event=event,
            id=str(_uuid(rng)),
            time=max(when, deployed[-1].time),
            correlation_id=str(assessed.assessment_id),
            causation_id=deployed[-1].id,
        )
    ]


def _level(rng: random.Random, numbers: list[int], need: float, emphasis: float) -> int:
    raw = need * (len(numbers) - 1) + emphasis + rng.gauss(0, 0.7)
    index = min(len(numbers) - 1, max(0, round(raw)))
    return numbers[index]


def random_person_events(
    policy: Policy, index: int, rng: random.Random, teams: Sequence[str]
) -> list[Envelope]:
    """One plausible person, drawn from rng."""
    groups = [g for g in GROUP_WEIGHTS if g in policy.client_groups]
    group = rng.choices(groups, weights=[GROUP_WEIGHTS[g] for g in groups])[0]
    if group is ClientGroup.OLDER_PEOPLE:
        band = rng.choices(
            [AgeBand.AGE_65_74, AgeBand.AGE_75_84, AgeBand.AGE_85_PLUS], weights=[25, 40, 35]
        )[0]
        need = rng.betavariate(2.4, 2.0)
    else:
        band = rng.choices(
            [AgeBand.AGE_18_64, AgeBand.AGE_65_74, AgeBand.AGE_75_84], weights=[86, 10, 4]
        )[0]
        need = rng.betavariate(2.0, 2.4)
    emphasis = EMPHASIS.get(group, {})
    levels = {
        d.key: _level(rng, [lvl.level for lvl in d.levels], need, emphasis.get(d.key, 0.0))
        for d in policy.questionnaire.domains
    }
    top_safe = any(
        d.key == "staying_safe" and levels[d.key] == d.levels[-1].level
        for d in policy.questionnaire.domains
    )
    needs_24_7 = rng.random() < (0.6 if top_safe else 0.04)
    informal = rng.random() < (0.55 if group is ClientGroup.OLDER_PEOPLE else 0.4)
    carer = rng.randrange(10, 61) * 100 if informal and rng.random() < 0.35 else 0
    funding: list[tuple[ev.OtherFundingSource, int]] = []
    if rng.random() < 0.06:
        funding.append((ev.OtherFundingSource.SUPPORTING_PEOPLE, rng.randrange(10, 41) * 100))
    if group is ClientGroup.LEARNING_DISABILITY and rng.random() < 0.04:
        funding.append(
            (ev.OtherFundingSource.INDEPENDENT_LIVING_FUND, rng.randrange(50, 151) * 100)
        )
    budget = rng.random() < 0.92
    plan_bp = None
    assessed_max = None
    if budget and rng.random() < 0.85:
        # Plans are costed close to the budget; a few ask for more (seed 003 ch.2 §iii).
        plan_bp = (
            rng.randrange(8_500, 10_001) if rng.random() < 0.93 else rng.randrange(10_001, 11_500)
        )
        assessed_max = rng.choice([0, rng.randrange(10, 150) * 100, None, None])
    events = person_events(
        policy,
        f"p{index:07d}",
        client_group=group,
        domain_levels=levels,
        team=rng.choice(teams),
        age_band=band,
        significant_informal_support=informal,
        needs_24_7=needs_24_7,
        carer_support_weekly_pence=carer,
        other_funding=funding,
        budget=budget,
        plan_basis_points=plan_bp,
        assessed_max_weekly_contribution_pence=assessed_max,
        completed_by=rng.choice(list(CompletedBy)),
        rng=rng,
        at=START + timedelta(minutes=index * 7),
    )
    if any(isinstance(e.event, ev.DeploymentSetUp) for e in events):
        events += finances_events(policy, events, band)
    return events


def generate_cohort(policy: Policy, people: int, seed: int = 2009) -> Iterator[Envelope]:
    """`people` plausible people's events, in the order the services would publish them."""
    rng = random.Random(seed)
    teams = LANCASHIRE_TEAMS if policy.council == "lancashire" else OTHER_TEAMS
    for index in range(1, people + 1):
        yield from random_person_events(policy, index, rng, teams)


def outgoing(envelope: Envelope) -> OutgoingRecord:
    return OutgoingRecord(
        topic=envelope.topic,
        key=envelope.subject,
        value=envelope.to_message().value,
        headers={"content-type": b"application/cloudevents+json"},
    )


async def publish_envelopes(
    log: EmbeddedEventLog, envelopes: Iterator[Envelope] | Sequence[Envelope]
) -> int:
    """Append envelopes in batches; returns how many."""
    batch: list[OutgoingRecord] = []
    count = 0
    for envelope in envelopes:
        batch.append(outgoing(envelope))
        if len(batch) >= PUBLISH_BATCH:
            await log.publish(batch)
            count += len(batch)
            batch = []
    if batch:
        await log.publish(batch)
        count += len(batch)
    return count


async def write_cohort(
    path: Path, policy: Policy, people: int, seed: int = 2009
) -> GeneratedCohort:
    """A new embedded log file holding a generated cohort; refuses an existing file."""
    if await asyncio.to_thread(path.exists):
        raise WhatIfError(
            f"{path} already exists: the generator only writes a new event log file, never "
            "into an existing (possibly live) one"
        )
    started = asyncio.get_running_loop().time()
    log = EmbeddedEventLog(path)
    await log.start()
    try:
        await log.ensure_topics(ALL_TOPICS)
        events = await publish_envelopes(log, generate_cohort(policy, people, seed))
    finally:
        await log.close()
    return GeneratedCohort(people, events, asyncio.get_running_loop().time() - started)
