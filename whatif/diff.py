"""What a proposed policy changes, line by line, in words a councillor can read (pure)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from contracts.money import div_round_half_up, format_pounds
from contracts.policy import ApprovalLimit, ContributionKind, Policy

# Policy sections that do not change anyone's budget, charge, review date or recoup day:
# named, not modelled.
NOT_MODELLED = {
    "monitoring": "monitoring (audit tiers, receipts, returns, unspent money)",
    "planning": "support planning (provider management fee)",
    "retention_years": "record retention",
}


@dataclass(frozen=True)
class PolicyChange:
    area: str
    item: str
    before: str
    after: str
    words: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def words(value: str) -> str:
    """older_people -> older people."""
    return value.replace("_", " ")


def percent(basis_points: int) -> str:
    whole, rest = divmod(basis_points, 100)
    return f"{whole}%" if rest == 0 else f"{whole}.{rest:02d}%"


def _relative(before: int, after: int) -> str:
    """(+10.0%): the change as a share of the old figure, to one decimal place."""
    if before == 0:
        return ""
    permille = div_round_half_up((after - before) * 1000, before)
    sign = "+" if permille > 0 else "\u2212" if permille < 0 else ""
    return f" ({sign}{abs(permille) // 10}.{abs(permille) % 10}%)"


def _limit(limit: ApprovalLimit | None) -> str:
    if limit is None:
        return "may not agree"
    if limit.max_weekly_pence is None:
        return "no upper limit"
    return f"up to {format_pounds(limit.max_weekly_pence)} a week"


def _limits(
    before: list[ApprovalLimit], after: list[ApprovalLimit], area: str, what: str
) -> list[PolicyChange]:
    changes = []
    old = {lim.role: lim for lim in before}
    new = {lim.role: lim for lim in after}
    for role in dict.fromkeys([*old, *new]):
        a, b = old.get(role), new.get(role)
        if a != b:
            changes.append(
                PolicyChange(
                    area=area,
                    item=role.value,
                    before=_limit(a),
                    after=_limit(b),
                    words=f"{what}: a {words(role.value)} could agree {_limit(a)}; "
                    f"would agree {_limit(b)}.",
                )
            )
    if not changes and [lim.role for lim in before] != [lim.role for lim in after]:
        order_a = ", ".join(words(lim.role.value) for lim in before)
        order_b = ", ".join(words(lim.role.value) for lim in after)
        changes.append(
            PolicyChange(
                area, "order", order_a, order_b, f"{what}: the order of approvers changes."
            )
        )
    return changes


def _contribution(policy: Policy) -> str:
    rule = policy.contribution
    if rule.kind is ContributionKind.NONE:
        return "no charge"
    return f"up to {percent(rule.share_of_plan_basis_points)} of the plan, capped by the means test"


def policy_changes(current: Policy, proposed: Policy) -> list[PolicyChange]:
    """Every difference that affects budgets, charges or approvals, then the rest by name."""
    out: list[PolicyChange] = []
    # Client groups
    for group in proposed.client_groups:
        if group not in current.client_groups:
            out.append(
                PolicyChange(
                    "client groups",
                    group.value,
                    "not budgeted",
                    "budgeted",
                    f"{words(group.value).capitalize()} would be budgeted for by the RAS.",
                )
            )
    for group in current.client_groups:
        if group not in proposed.client_groups:
            out.append(
                PolicyChange(
                    "client groups",
                    group.value,
                    "budgeted",
                    "not budgeted",
                    f"{words(group.value).capitalize()} would no longer be budgeted for by the "
                    "RAS: nobody in this group could be given an indicative budget.",
                )
            )
    # Prices
    old_prices = current.ras.price_per_point_weekly_pence
    new_prices = proposed.ras.price_per_point_weekly_pence
    for group in dict.fromkeys([*current.client_groups, *proposed.client_groups]):
        a, b = old_prices.get(group), new_prices.get(group)
        if a != b and a is not None and b is not None:
            direction = "rises" if b > a else "falls"
            out.append(
                PolicyChange(
                    "price per point",
                    group.value,
                    format_pounds(a),
                    format_pounds(b),
                    f"The price of a point for {words(group.value)} {direction} from "
                    f"{format_pounds(a)} to {format_pounds(b)} a week{_relative(a, b)}.",
                )
            )
    # Scales
    a_bp, b_bp = current.ras.lower_scale_basis_points, proposed.ras.lower_scale_basis_points
    if a_bp != b_bp:
        out.append(
            PolicyChange(
                "scales",
                "lower_scale",
                percent(a_bp),
                percent(b_bp),
                "The lower scale (for people with significant informal support and no need for "
                f"support around the clock) changes from {percent(a_bp)} to {percent(b_bp)} of "
                "the standard scale.",
            )
        )
    # Ceilings
    old_ceil, new_ceil = current.ras.ceilings_weekly_pence, proposed.ras.ceilings_weekly_pence
    for group in dict.fromkeys([*old_ceil, *new_ceil]):
        a, b = old_ceil.get(group), new_ceil.get(group)
        if a == b:
            continue
        if a is None and b is not None:
            text = f"A new ceiling of {format_pounds(b)} a week for {words(group.value)}."
        elif b is None and a is not None:
            text = f"The {format_pounds(a)} a week ceiling for {words(group.value)} is removed."
        else:
            assert a is not None and b is not None
            text = (
                f"The ceiling for {words(group.value)} changes from {format_pounds(a)} to "
                f"{format_pounds(b)} a week."
            )
        out.append(
            PolicyChange(
                "ceilings",
                group.value,
                "none" if a is None else format_pounds(a),
                "none" if b is None else format_pounds(b),
                text + " Budgets above a ceiling need an exception approver.",
            )
        )
    # Questionnaire points
    for domain in current.questionnaire.domains:
        other = proposed.questionnaire.domain(domain.key)
        if other is None:
            out.append(
                PolicyChange(
                    "questionnaire",
                    domain.key,
                    "asked",
                    "removed",
                    f"The domain '{domain.name}' is removed from the questionnaire.",
                )
            )
            continue
        for level in domain.levels:
            new_level = other.level(level.level)
            if new_level is None:
                out.append(
                    PolicyChange(
                        "questionnaire",
                        f"{domain.key}.{level.level}",
                        str(level.points),
                        "removed",
                        f"{domain.name}: level {level.level} is removed.",
                    )
                )
            elif new_level.points != level.points:
                out.append(
                    PolicyChange(
                        "questionnaire",
                        f"{domain.key}.{level.level}",
                        str(level.points),
                        str(new_level.points),
                        f"{domain.name}, level {level.level}: {level.points} points become "
                        f"{new_level.points}.",
                    )
                )
    for domain in proposed.questionnaire.domains:
        if current.questionnaire.domain(domain.key) is None:
            out.append(
                PolicyChange(
                    "questionnaire",
                    domain.key,
                    "not asked",
                    "asked",
                    f"A new domain '{domain.name}' is added to the questionnaire: people assessed "
                    "before it cannot be recomputed until they are reassessed.",
                )
            )
    # Approvals
    out += _limits(
        current.approvals.agreement_in_principle,
        proposed.approvals.agreement_in_principle,
        "approvals",
        "Agreeing a budget in principle",
    )
    out += _limits(
        current.approvals.plan_sign_off,
        proposed.approvals.plan_sign_off,
        "approvals",
        "Signing off a support plan",
    )
    a_roles = ", ".join(words(r.value) for r in current.approvals.ceiling_exception_roles)
    b_roles = ", ".join(words(r.value) for r in proposed.approvals.ceiling_exception_roles)
    if a_roles != b_roles:
        out.append(
            PolicyChange(
                "approvals",
                "ceiling_exception_roles",
                a_roles,
                b_roles,
                f"Exceptions above a ceiling would be agreed by: {b_roles} (now: {a_roles}).",
            )
        )
    # Charging
    if current.contribution != proposed.contribution:
        a_c, b_c = _contribution(current), _contribution(proposed)
        out.append(
            PolicyChange(
                "charging",
                "contribution",
                a_c,
                b_c,
                f"The client contribution changes from {a_c} to {b_c}.",
            )
        )
    # Everything else, by name only
    for attr, label in NOT_MODELLED.items():
        before, after = getattr(current, attr), getattr(proposed, attr)
        if attr == "monitoring":
            # The recoup notice period is modelled (whatif.reviews); the rest is not.
            before = before.model_copy(update={"recoup_notice": None})
            after = after.model_copy(update={"recoup_notice": None})
        if before != after:
            out.append(
                PolicyChange(
                    "not modelled",
                    attr,
                    "",
                    "",
                    f"The proposal also changes {label}; this does not change anyone's budget "
                    "and is not modelled here.",
                )
            )
    return out
