"""The resource allocation system (RAS): a person's validated levels to a weekly budget under
one council policy, with every figure that went into it and an explanation line for each step.

`calculate_budget(inputs, policy)` is a pure function of its arguments: allocation sets real
budgets with it, and the what-if replays a proposed policy over the whole cohort with the
very same code.

Seeds: 003 = Self-Directed Support in Lancashire (in Control 2009), ch.2 Step 1;
004 = SCIE "Keeping personal budgets personal" (2011), Appendix 1, Councils A-E.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from contracts.events import ExplanationLine, OtherFundingSource, Scale
from contracts.money import WEEKS_PER_YEAR, Frequency, annual_from, apply_basis_points
from contracts.money import format_pounds as pounds
from contracts.policy import Domain, Policy
from contracts.vocabulary import ClientGroup
from rules.wording import group_words, percent

MINUS = "\u2212"
TIMES = "\u00d7"
DASH = "\u2014"

NonNegativePence = Annotated[int, Field(strict=True, ge=0)]


# --- refusals -------------------------------------------------------------------------------


class InputsRefused(ValueError):
    """The RAS cannot work these inputs out under this policy; the message names the field."""


class ClientGroupNotBudgeted(InputsRefused):
    def __init__(self, client_group: str, policy_version: str) -> None:
        super().__init__(
            f"client_group: policy {policy_version} sets no price per point for "
            f"{group_words(client_group)}"
        )


class UnknownDomain(InputsRefused):
    def __init__(self, domain: str, policy_version: str) -> None:
        super().__init__(
            f"domain_levels.{domain}: {domain!r} is not a domain of policy {policy_version}"
        )


class UnknownLevel(InputsRefused):
    def __init__(self, domain: str, level: int, levels: list[int]) -> None:
        allowed = ", ".join(str(n) for n in levels)
        super().__init__(
            f"domain_levels.{domain}: level {level} does not exist; the levels are {allowed}"
        )


class MissingDomain(InputsRefused):
    def __init__(self, domains: list[str]) -> None:
        super().__init__(f"domain_levels: no level given for {', '.join(domains)}")


# --- the RAS --------------------------------------------------------------------------------


class _Value(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FundingStream(_Value):
    """Other money already paying for some of the support (seed 003 ch.2 §v)."""

    source: OtherFundingSource
    weekly_pence: NonNegativePence


class BudgetInputs(_Value):
    """What the RAS needs to know about a person, as validated."""

    client_group: ClientGroup
    domain_levels: dict[str, int]
    significant_informal_support: bool
    needs_24_7: bool
    carer_support_weekly_pence: NonNegativePence = 0
    other_funding: tuple[FundingStream, ...] = ()
    additional_weekly_pence: NonNegativePence = Field(
        default=0, description="Support the points do not capture, e.g. 2-to-1 (seed 003 §iii)."
    )
    additional_reason: str | None = None


class DomainScore(_Value):
    key: str
    name: str
    level: int
    points: int
    statement: str


class Deduction(_Value):
    """An amount netted off the money; never more than what is left (the budget stays >= 0)."""

    source: str
    label: str
    agreed_weekly_pence: int
    deducted_weekly_pence: int


class Calculation(_Value):
    """The RAS result with every figure that went into it."""

    policy_version: str
    policy_name: str
    client_group: ClientGroup
    domain_scores: tuple[DomainScore, ...]
    points: int
    max_points: int
    price_per_point_weekly_pence: int
    standard_weekly_pence: int
    scale: Scale
    scale_basis_points: int
    scaled_weekly_pence: int
    additional_weekly_pence: int
    deductions: tuple[Deduction, ...]
    weekly_pence: int
    annual_pence: int
    ceiling_weekly_pence: int | None
    above_ceiling: bool
    explanation: tuple[ExplanationLine, ...]


_FUNDING_WORDS = {
    OtherFundingSource.SUPPORTING_PEOPLE: "Supporting People",
    OtherFundingSource.INDEPENDENT_LIVING_FUND: "Independent Living Fund",
    OtherFundingSource.OTHER: "other funding",
}


def _minus(amount_pence: int) -> str:
    return f"{MINUS}{pounds(amount_pence)}"


def score_domains(domain_levels: dict[str, int], policy: Policy) -> tuple[DomainScore, ...]:
    """The points of each validated level, in the questionnaire's order (seed 003 §ii)."""
    return tuple(score for score, _ in _scored_domains(domain_levels, policy))


def _scored_domains(
    domain_levels: dict[str, int], policy: Policy
) -> list[tuple[DomainScore, ExplanationLine]]:
    questionnaire = policy.questionnaire
    for key in domain_levels:
        if questionnaire.domain(key) is None:
            raise UnknownDomain(key, policy.policy_version)
    missing = [d.key for d in questionnaire.domains if d.key not in domain_levels]
    if missing:
        raise MissingDomain(missing)
    return [_scored(domain, domain_levels[domain.key]) for domain in questionnaire.domains]


_SCORED: dict[tuple[int, int], tuple[Domain, DomainScore, ExplanationLine]] = {}
_SCORED_MAX = 4096


def _scored(domain: Domain, number: int) -> tuple[DomainScore, ExplanationLine]:
    """A domain's score at a level and its explanation line.

    Both are frozen values, the same for everyone at that level of that policy's domain,
    so each is built once rather than for every assessment. Keyed by the domain object:
    the entry holds it, so its id cannot be reused while the entry lives.
    """
    key = (id(domain), number)
    known = _SCORED.get(key)
    if known is not None and known[0] is domain:
        return known[1], known[2]
    level = domain.level(number)
    if level is None:
        raise UnknownLevel(domain.key, number, [lvl.level for lvl in domain.levels])
    score = DomainScore(
        key=domain.key,
        name=domain.name,
        level=number,
        points=level.points,
        statement=level.statement,
    )
    line = ExplanationLine(
        label=f"{score.name}: level {score.level} = {score.points} points",
        amount_pence=0,
        detail=score.statement,
    )
    if len(_SCORED) >= _SCORED_MAX:
        _SCORED.clear()
    _SCORED[key] = (domain, score, line)
    return score, line


def calculate_budget(inputs: BudgetInputs, policy: Policy) -> Calculation:
    """Points to money under one policy: pure, so a whole cohort can be replayed through it.

    Points are carer-neutral (seed 004 Council C, §7.8): carer support never changes them
    or the scale; it only reduces the money, so a carer stopping restores it without a
    reassessment. The lower scale applies with significant informal support and no 24/7
    need (seed 003 ch.2 §i). Other funding streams are netted off (seed 003 ch.2 §v).
    """
    ras = policy.ras
    group = inputs.client_group
    price = ras.price_per_point_weekly_pence.get(group)
    if group not in policy.client_groups or price is None:
        raise ClientGroupNotBudgeted(group.value, policy.policy_version)
    scored = _scored_domains(inputs.domain_levels, policy)
    scores = tuple(score for score, _ in scored)
    lines = [line for _, line in scored]
    points = sum(s.points for s in scores)
    max_points = policy.questionnaire.max_points
    standard = points * price
    lines.append(
        ExplanationLine(
            label=f"{points} points {TIMES} {pounds(price)} a point ({group_words(group)})",
            amount_pence=standard,
            detail=f"{points} of a possible {max_points} points, priced a week",
        )
    )

    lower = inputs.significant_informal_support and not inputs.needs_24_7
    if lower:
        basis_points = ras.lower_scale_basis_points
        scaled = apply_basis_points(standard, basis_points)
        lines.append(
            ExplanationLine(
                label=f"Lower scale (significant informal support, no 24/7 need): "
                f"{percent(basis_points)}",
                amount_pence=scaled - standard,
                detail="seed 003 ch.2: the lower scale applies where there is significant "
                "informal support and no need for support around the clock",
            )
        )
    else:
        basis_points = 10_000
        scaled = standard
        reason = "needs 24/7 support" if inputs.needs_24_7 else "no significant informal support"
        lines.append(ExplanationLine(label=f"Standard scale ({reason}): 100%", amount_pence=0))

    running = scaled
    if inputs.additional_weekly_pence:
        running += inputs.additional_weekly_pence
        lines.append(
            ExplanationLine(
                label=f"Additional support the points do not capture: "
                f"+{pounds(inputs.additional_weekly_pence)}",
                amount_pence=inputs.additional_weekly_pence,
                detail=inputs.additional_reason or "",
            )
        )

    deductions: list[Deduction] = []
    wanted: list[tuple[str, str, int]] = []
    if inputs.carer_support_weekly_pence:
        wanted.append(("carer_support", "agreed carer support", inputs.carer_support_weekly_pence))
    for stream in inputs.other_funding:
        if stream.weekly_pence:
            wanted.append((stream.source.value, _FUNDING_WORDS[stream.source], stream.weekly_pence))
    for source, words, agreed in wanted:
        taken = min(agreed, running)
        running -= taken
        deductions.append(
            Deduction(
                source=source, label=words, agreed_weekly_pence=agreed, deducted_weekly_pence=taken
            )
        )
        detail = (
            "carer-neutral: the points assume no carer; if the carer stops, this is restored "
            "without a reassessment"
            if source == "carer_support"
            else "netted off: this money already pays for part of the support"
        )
        if taken < agreed:
            detail += f" (agreed {pounds(agreed)} a week; the budget cannot go below £0.00)"
        lines.append(
            ExplanationLine(
                label=f"Less {words}: {_minus(taken)}", amount_pence=-taken, detail=detail
            )
        )

    weekly = running
    annual = annual_from(weekly, Frequency.WEEKLY)
    lines.append(ExplanationLine(label=f"Weekly budget: {pounds(weekly)}", amount_pence=weekly))
    lines.append(
        ExplanationLine(
            label=f"A year ({WEEKS_PER_YEAR} weeks): {pounds(annual)}", amount_pence=annual
        )
    )

    ceiling = ras.ceilings_weekly_pence.get(group)
    above = ceiling is not None and weekly > ceiling
    if ceiling is None:
        lines.append(ExplanationLine(label=f"No ceiling for {group_words(group)}", amount_pence=0))
    else:
        verdict = "exceeded, needs an exception" if above else "within the ceiling"
        lines.append(
            ExplanationLine(
                label=f"Ceiling for {group_words(group)}: {pounds(ceiling)} a week {DASH} "
                f"{verdict}",
                amount_pence=ceiling,
            )
        )
    lines.append(
        ExplanationLine(label=f"Policy {policy.policy_version}", amount_pence=0, detail=policy.name)
    )
    return Calculation(
        policy_version=policy.policy_version,
        policy_name=policy.name,
        client_group=group,
        domain_scores=scores,
        points=points,
        max_points=max_points,
        price_per_point_weekly_pence=price,
        standard_weekly_pence=standard,
        scale=Scale.LOWER if lower else Scale.STANDARD,
        scale_basis_points=basis_points,
        scaled_weekly_pence=scaled,
        additional_weekly_pence=inputs.additional_weekly_pence,
        deductions=tuple(deductions),
        weekly_pence=weekly,
        annual_pence=annual,
        ceiling_weekly_pence=ceiling,
        above_ceiling=above,
        explanation=tuple(lines),
    )
