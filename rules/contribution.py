"""The person's contribution to their personal budget: a means-tested charge.

Seed 004 App.1 Council C: the person contributes from their income up to 75% of the value of
the support plan, capped at the maximum their means test identifies; the council pays the
budget less it. Each council's rule is its policy's `contribution`.
"""

from __future__ import annotations

from contracts.money import WEEKS_PER_YEAR, apply_basis_points
from contracts.policy import Contribution, ContributionKind


def contribution_annual(
    gross_annual_pence: int, rule: Contribution, assessed_max_weekly_pence: int
) -> int:
    """The person's yearly charge (seed 004 App.1 Council C).

    share_of_plan_capped_by_means: the share of the plan's annual value, but never more
    than the means-tested maximum (weekly x 52); none: nothing.
    """
    if rule.kind is ContributionKind.NONE:
        return 0
    share = apply_basis_points(gross_annual_pence, rule.share_of_plan_basis_points)
    return min(share, assessed_max_weekly_pence * WEEKS_PER_YEAR, gross_annual_pence)
