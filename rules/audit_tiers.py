"""How closely a council audits a person's use of their budget, by its annual value.

Seed 004 App.1 Council A: in excess of £20,000 a full annual audit, in excess of £5,000
but less than £20,000 a detailed annual account, less than £5,000 light touch. The tiers
and where exactly £5,000 and £20,000 fall are each council's policy data
(`monitoring.audit_tiers`, each tier from an inclusive annual value).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from contracts.events import DeploymentOption
from contracts.policy import Monitoring


class PartValue(Protocol):
    """One part of a deployment as this rule sees it: how it is held, and its annual value."""

    @property
    def option(self) -> DeploymentOption: ...

    @property
    def annual_pence(self) -> int: ...


def audit_basis_pence(parts: Sequence[PartValue], gross_annual_pence: int) -> int:
    """The annual value the audit tier is judged on (seed 004 App.1 Council A).

    The gross annual value of the direct payment part (the money the person accounts for,
    their own contribution included); the whole budget when there is no direct payment.
    Gross, so an auditor can recompute the tier from DeploymentSetUp's parts.
    """
    dp = [p.annual_pence for p in parts if p.option is DeploymentOption.DIRECT_PAYMENT]
    return sum(dp) if dp else gross_annual_pence


def audit_tier(parts: Sequence[PartValue], gross_annual_pence: int, monitoring: Monitoring) -> str:
    return monitoring.audit_tier(audit_basis_pence(parts, gross_annual_pence))
