"""A person's prepaid card accounts as the payments service holds them, for the person's
page and the citizen view: balance, spending by category, the surplus, the notice, any
response and the recoup."""

from __future__ import annotations

from datetime import date
from typing import Any

from contracts.vocabulary import Role
from servicekit import clock
from services.portal.clients import Services
from services.portal.deps import optional
from services.portal.identity import SignedIn

CARD_FILE_ROLES = frozenset({Role.FINANCE})
RECOUP_ROLES = frozenset({Role.FINANCE})
RESPONSE_ROLES = frozenset(
    {Role.PERSON, Role.REPRESENTATIVE, Role.CARE_MANAGER, Role.TEAM_MANAGER, Role.FINANCE}
)
"""As the payments service lets them (contracts/rights.py); it still has the last word."""


async def accounts_of(api: Services, user: SignedIn, person_id: str) -> list[dict[str, Any]]:
    """The person's card accounts, each with its latest notice's state; [] when none (or
    when the user may not see them)."""
    page = await optional(
        api.get("payments", "/v1/card-accounts", user.token, {"person_id": person_id})
    )
    return [with_notice_state(account) for account in (page or {}).get("items", [])]


def with_notice_state(account: dict[str, Any], today: date | None = None) -> dict[str, Any]:
    """The account with `notice` (the latest), its `response`, its `recoup`, and whether
    the period to respond is `open` (by the portal's clock; the service decides again)."""
    today = today or clock.today()
    notice = account["notices"][-1] if account["notices"] else None
    response = recoup = None
    period_open = False
    if notice is not None:
        nid = notice["notice_id"]
        answers = [r for r in account["responses"] if r["notice_id"] == nid]
        response = answers[-1] if answers else None
        recoup = next((r for r in account["recoups"] if r["notice_id"] == nid), None)
        period_open = today <= date.fromisoformat(notice["respond_by"])
    surplus = account["surpluses"][-1] if account["surpluses"] else None
    return {
        **account,
        "surplus": surplus,
        "notice": notice,
        "response": response,
        "recoup": recoup,
        "period_open": period_open,
        "may_give_notice": surplus is not None and (notice is None or recoup is not None),
    }
