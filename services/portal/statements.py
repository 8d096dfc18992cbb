"""Personal budget statements (Care Act 2014 s.26) as the portal shows them: the person's
statements from payments, and each one as a plain text file to download or print."""

from __future__ import annotations

from typing import Any

from fastapi.responses import PlainTextResponse

from services.portal.clients import Services
from services.portal.deps import optional
from services.portal.formatting import long_date, money
from services.portal.identity import SignedIn


async def statements_of(api: Services, user: SignedIn, person_id: str) -> list[dict[str, Any]]:
    """The person's statements, the newest (the one in force) first; none yet: empty."""
    found = await optional(
        api.get("payments", f"/v1/people/{person_id}/budget-statements", user.token)
    )
    items: list[dict[str, Any]] = (found or {}).get("items", [])
    return items


def statement_file(person_id: str, statement: dict[str, Any]) -> PlainTextResponse:
    """The statement as a text file: its words, then its figures, a line each."""
    s = statement
    lines = [
        "Personal budget statement (Care Act 2014, section 26)",
        f"Person: {person_id}",
        f"Issued on {long_date(s['issued_on'])}; applies from {long_date(s['applies_from'])}",
        "",
        s["text"],
        "",
        f"Cost of meeting your needs: {money(s['total_weekly_pence'])} a week, "
        f"{money(s['total_annual_pence'])} a year",
        f"You pay: {money(s['person_pays_weekly_pence'])} a week, "
        f"{money(s['person_pays_annual_pence'])} a year",
        f"The council pays: {money(s['council_pays_weekly_pence'])} a week, "
        f"{money(s['council_pays_annual_pence'])} a year",
        f"Policy: {s['policy_version']}",
        f"Statement: {s['statement_id']}",
        "",
    ]
    name = f"budget-statement-{person_id}-{s['issued_on']}.txt"
    return PlainTextResponse(
        "\n".join(lines), headers={"Content-Disposition": f'attachment; filename="{name}"'}
    )


def find(statements: list[dict[str, Any]], statement_id: str) -> dict[str, Any] | None:
    return next((s for s in statements if s["statement_id"] == statement_id), None)
