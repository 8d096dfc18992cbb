"""Client contribution: what the person pays towards their plan from their income.

Seed 004 App.1 Council C: the person pays a share of the plan's annual value (75% in
Council C), capped at what their means test allows (the assessed maximum weekly charge
x 52). The council pays the rest. A council whose policy takes no contribution charges
nothing.
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
