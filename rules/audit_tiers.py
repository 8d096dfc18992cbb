"""Audit tiers: how closely a council audits a budget, by its annual value.

Seed 004 App.1 Council A: the tier is judged on the gross annual value of the direct
payment part (the money the person accounts for, their own contribution included), or
on the whole budget when none of it is a direct payment. Gross, so an auditor can
recompute the tier from DeploymentSetUp's parts.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from contracts.events import DeploymentOption
from contracts.policy import Monitoring


class AnnualPart(Protocol):
    """One part of a deployment as this rule sees it: its option and its gross annual."""

    @property
    def option(self) -> DeploymentOption: ...

    @property
    def annual_pence(self) -> int: ...


def audit_basis_pence(parts: Sequence[AnnualPart], gross_annual_pence: int) -> int:
    """The annual value the audit tier is judged on: the direct payment parts' gross
    annual; the whole budget when there is no direct payment."""
    dp = [p.annual_pence for p in parts if p.option is DeploymentOption.DIRECT_PAYMENT]
    return sum(dp) if dp else gross_annual_pence


def audit_tier(parts: Sequence[AnnualPart], gross_annual_pence: int, monitoring: Monitoring) -> str:
    """The council's audit tier for a deployment of these parts."""
    return monitoring.audit_tier(audit_basis_pence(parts, gross_annual_pence))
