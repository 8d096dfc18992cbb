"""Who may call what: the rights of every role on every route of the five services.

This table is the specification the services are held to. tests/test_permission_matrix.py
calls every route below with every role, against a record of the caller's own council and
one of another council (and, for a person or representative, their own record and another
person's), and fails on any cell that answers otherwise; it also fails when a service has
a route this table does not list. docs/security.md shows the same table:
`python -m contracts.rights --write docs/security.md` regenerates it there.

To add a route: one `Right(...)` line in RIGHTS, in its service's block.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from contracts.vocabulary import CITIZEN_ROLES, PRACTITIONER_ROLES, STAFF_ROLES, Role


class Scope(StrEnum):
    """What the route touches, and so what another council's caller gets."""

    RECORD = "record"
    """One record (an id in the path) of one person: another council's, or for a person
    or representative another person's, answers 404."""
    PERSON = "person"
    """Everything about one person (a person id in the path): as RECORD."""
    NEW = "new"
    """Creates a record for the person (or plan, budget) named in the body: naming another
    council's record, or for a citizen another person, answers 404."""
    LIST = "list"
    """A page of records, only ever the caller's council's (a citizen's: only their own)."""
    COUNCIL = "council"
    """The council named in the path: another council answers 404."""
    COUNCIL_WIDE = "council-wide"
    """An action or report over the caller's whole council; citizens never. A body naming
    another council (its policy, say) answers 404, as that council's records do. A file
    or bulk request answers per line or row instead: a line or row naming another
    council's record gets what one naming no record at all gets (see PER_ROW)."""


@dataclass(frozen=True)
class Right:
    service: str
    method: str
    path: str
    roles: frozenset[Role]
    scope: Scope
    why: str = ""
    citizen_for_another: int = 404
    """What a person or representative gets acting on another person's record."""

    @property
    def citizens_only_their_own(self) -> bool:
        return bool(self.roles & CITIZEN_ROLES) and self.scope is not Scope.COUNCIL

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.service, self.method, self.path)


ANYONE = frozenset(Role)
STAFF = frozenset(STAFF_ROLES)
CITIZENS = frozenset(CITIZEN_ROLES)
PRACTITIONERS = frozenset(PRACTITIONER_ROLES)


def roles(*named: Role | frozenset[Role]) -> frozenset[Role]:
    out: set[Role] = set()
    for item in named:
        out |= {item} if isinstance(item, Role) else set(item)
    return frozenset(out)


R = Right
CM, TM, PANEL = Role.CARE_MANAGER, Role.TEAM_MANAGER, Role.PANEL
FINANCE, AUDITOR, OPS = Role.FINANCE, Role.AUDITOR, Role.OPERATIONS
SUBJECT_ACCESS = roles(CITIZENS, OPS)
"""Who may read a subject access export: the person or their representative, of themselves;
operations, who answer subject access requests for the council."""

PER_ROW = (
    "bulk, answered per row: a row naming another council's person (budget, plan) is pending, "
    "as if it had not arrived, and nothing of it is written"
)
"""What another council's record gets in a bulk conversion: not a 404 for the request, which
would refuse the other rows too, but the answer the row would have before its record came."""

RIGHTS: tuple[Right, ...] = (
    # assessment
    R("assessment", "GET", "/v1/questionnaires/{council}", ANYONE, Scope.COUNCIL),
    R("assessment", "POST", "/v1/assessments", roles(CITIZENS, PRACTITIONERS), Scope.NEW,
      "a person or representative only for themselves (403 otherwise: nothing exists yet)",
      citizen_for_another=403),
    R("assessment", "PUT", "/v1/assessments/{assessment_id}/answers",
      roles(CITIZENS, PRACTITIONERS), Scope.RECORD),
    R("assessment", "POST", "/v1/assessments/{assessment_id}/submit",
      roles(CITIZENS, PRACTITIONERS), Scope.RECORD),
    R("assessment", "POST", "/v1/assessments/{assessment_id}/validate", PRACTITIONERS,
      Scope.RECORD),
    R("assessment", "POST", "/v1/assessments/{assessment_id}/return", PRACTITIONERS,
      Scope.RECORD),
    R("assessment", "POST", "/v1/assessments/{assessment_id}/eligibility", PRACTITIONERS,
      Scope.RECORD, "the Care Act eligibility determination"),
    R("assessment", "POST", "/v1/assessments/{assessment_id}/financial-assessment",
      roles(PRACTITIONERS, FINANCE), Scope.RECORD, "the Care Act financial assessment"),
    R("assessment", "GET", "/v1/assessments/{assessment_id}", ANYONE, Scope.RECORD),
    R("assessment", "GET", "/v1/assessments", ANYONE, Scope.LIST),
    R("assessment", "PUT", "/v1/people/{person_id}/personal-details",
      roles(CITIZENS, PRACTITIONERS), Scope.PERSON, "sealed under the person's own key"),
    R("assessment", "GET", "/v1/people/{person_id}/subject-access", SUBJECT_ACCESS, Scope.PERSON,
      "personal details opened"),
    R("assessment", "POST", "/v1/people/{person_id}/erasure", roles(OPS), Scope.PERSON,
      "only once the council's retention period has ended (409 before)"),
    R("assessment", "POST", "/v1/people/identities", roles(AUDITOR, OPS, TM), Scope.COUNCIL_WIDE,
      "for the CLD return: NHS number, date of birth, postcode; another council's people "
      "are left out, as people never recorded are"),
    R("assessment", "POST", "/v1/imports/people", roles(OPS), Scope.COUNCIL_WIDE,
      "a CSV extract; everyone in it joins the caller's council"),
    R("assessment", "POST", "/v1/conversions/assessments", roles(CM, TM, PANEL),
      Scope.COUNCIL_WIDE, "bulk: each row starts, answers and validates in the caller's council"),
    # allocation
    R("allocation", "POST", "/v1/calculations", STAFF, Scope.COUNCIL_WIDE,
      "a preview; nothing is stored"),
    R("allocation", "GET", "/v1/budgets", ANYONE, Scope.LIST,
      "a citizen sees only issued revisions"),
    R("allocation", "GET", "/v1/budgets/{budget_id}", ANYONE, Scope.RECORD),
    R("allocation", "GET", "/v1/budgets/{budget_id}/explanation", ANYONE, Scope.RECORD),
    R("allocation", "POST", "/v1/budgets/{budget_id}/agree", PRACTITIONERS, Scope.RECORD,
      "up to the role's approval limit in the council's policy"),
    R("allocation", "POST", "/v1/budgets/{budget_id}/revisions", PRACTITIONERS, Scope.RECORD),
    R("allocation", "POST", "/v1/policies", roles(OPS), Scope.COUNCIL_WIDE,
      "adopts a policy version for the caller's council"),
    R("allocation", "GET", "/v1/policies", STAFF, Scope.COUNCIL_WIDE),
    R("allocation", "POST", "/v1/policies/revisions", roles(OPS), Scope.COUNCIL_WIDE,
      "revises a batch of budgets under the policy in force"),
    R("allocation", "POST", "/v1/policies/whatif", roles(AUDITOR, OPS), Scope.COUNCIL_WIDE,
      "read-only"),
    R("allocation", "GET", "/v1/people/{person_id}/subject-access", SUBJECT_ACCESS,
      Scope.PERSON),
    R("allocation", "POST", "/v1/conversions/budget-agreements", roles(CM, TM, PANEL),
      Scope.COUNCIL_WIDE, PER_ROW),
    # planning
    R("planning", "POST", "/v1/plans", roles(CITIZENS, PRACTITIONERS), Scope.NEW),
    R("planning", "PUT", "/v1/plans/{plan_id}", roles(CITIZENS, PRACTITIONERS), Scope.RECORD),
    R("planning", "GET", "/v1/plans/{plan_id}", ANYONE, Scope.RECORD),
    R("planning", "GET", "/v1/plans/{plan_id}/checks", ANYONE, Scope.RECORD),
    R("planning", "GET", "/v1/plans", ANYONE, Scope.LIST),
    R("planning", "POST", "/v1/plans/{plan_id}/submit", roles(CITIZENS, PRACTITIONERS),
      Scope.RECORD),
    R("planning", "POST", "/v1/plans/{plan_id}/sign-off", PRACTITIONERS, Scope.RECORD,
      "up to the role's approval limit in the council's policy"),
    R("planning", "POST", "/v1/plans/{plan_id}/return", PRACTITIONERS, Scope.RECORD),
    R("planning", "GET", "/v1/approvals", PRACTITIONERS, Scope.LIST),
    R("planning", "GET", "/v1/reviews", ANYONE, Scope.LIST),
    R("planning", "POST", "/v1/reviews", PRACTITIONERS, Scope.NEW),
    R("planning", "POST", "/v1/reviews/run-due", roles(TM, OPS), Scope.COUNCIL_WIDE),
    R("planning", "POST", "/v1/changes-of-circumstances", PRACTITIONERS, Scope.NEW),
    R("planning", "GET", "/v1/reviews/{review_id}", ANYONE, Scope.RECORD),
    R("planning", "POST", "/v1/reviews/{review_id}/complete", PRACTITIONERS, Scope.RECORD),
    R("planning", "GET", "/v1/people/{person_id}/subject-access", SUBJECT_ACCESS, Scope.PERSON),
    R("planning", "POST", "/v1/conversions/plans", roles(CM, TM, PANEL), Scope.COUNCIL_WIDE,
      PER_ROW),
    # payments
    R("payments", "GET", "/v1/deployments", ANYONE, Scope.LIST),
    R("payments", "GET", "/v1/deployments/{deployment_id}", ANYONE, Scope.RECORD),
    R("payments", "PUT", "/v1/deployments/{deployment_id}/arrangement",
      roles(CM, TM, PANEL, FINANCE), Scope.RECORD),
    R("payments", "POST", "/v1/deployments/{deployment_id}/agreement",
      roles(CM, TM, PANEL, FINANCE), Scope.RECORD),
    R("payments", "GET", "/v1/deployments/{deployment_id}/schedule", ANYONE, Scope.RECORD),
    R("payments", "POST", "/v1/deployments/{deployment_id}/release", roles(FINANCE, OPS),
      Scope.RECORD),
    R("payments", "POST", "/v1/payments/release-due", roles(FINANCE, OPS), Scope.COUNCIL_WIDE),
    R("payments", "POST", "/v1/deployments/{deployment_id}/suspend", roles(FINANCE, TM),
      Scope.RECORD),
    R("payments", "POST", "/v1/deployments/{deployment_id}/resume", roles(FINANCE, TM),
      Scope.RECORD),
    R("payments", "POST", "/v1/deployments/{deployment_id}/returns",
      roles(CITIZENS, CM, TM, FINANCE), Scope.RECORD),
    R("payments", "POST", "/v1/deployments/{deployment_id}/unspent-check", roles(FINANCE),
      Scope.RECORD),
    R("payments", "GET", "/v1/deployments/{deployment_id}/statement", ANYONE, Scope.RECORD),
    R("payments", "POST", "/v1/exports/payments", roles(FINANCE), Scope.COUNCIL_WIDE),
    R("payments", "GET", "/v1/exports/payments", roles(FINANCE, AUDITOR), Scope.COUNCIL_WIDE),
    R("payments", "GET", "/v1/exports/payments/{batch_id}.csv", roles(FINANCE, AUDITOR),
      Scope.COUNCIL_WIDE),
    R("payments", "GET", "/v1/people/{person_id}/subject-access", SUBJECT_ACCESS, Scope.PERSON),
    R("payments", "POST", "/v1/payments/confirmations", roles(FINANCE), Scope.COUNCIL_WIDE,
      "a CSV file; a line naming another council's payment is refused as unknown (422)"),
    R("payments", "GET", "/v1/payments", ANYONE, Scope.LIST,
      "payments finance reported failed or paid"),
    R("payments", "GET", "/v1/payments/feed", roles(FINANCE), Scope.COUNCIL_WIDE),
    R("payments", "POST", "/v1/conversions/deployments", roles(CM, TM, PANEL, FINANCE),
      Scope.COUNCIL_WIDE, PER_ROW),
    R("payments", "POST", "/v1/card-accounts/transactions", roles(FINANCE), Scope.COUNCIL_WIDE,
      "the card provider's CSV file; a row naming another council's person is refused (422)"),
    R("payments", "GET", "/v1/card-accounts", ANYONE, Scope.LIST),
    R("payments", "GET", "/v1/card-accounts/{account_id}", ANYONE, Scope.RECORD),
    R("payments", "POST", "/v1/card-accounts/{account_id}/recoup-notices", roles(FINANCE),
      Scope.RECORD),
    R("payments", "POST", "/v1/card-accounts/{account_id}/recoup-notices/{notice_id}/responses",
      roles(CITIZENS, CM, TM, FINANCE), Scope.RECORD),
    R("payments", "POST", "/v1/card-accounts/{account_id}/recoups", roles(FINANCE),
      Scope.RECORD, "only after a written notice's period to respond has ended"),
    R("payments", "GET", "/v1/people/{person_id}/budget-statements", ANYONE, Scope.PERSON,
      "the personal budget statements (Care Act s.26) and their challenges"),
    R("payments", "POST", "/v1/budget-statements/{statement_id}/challenges", CITIZENS,
      Scope.RECORD, "the person challenges the statement in force"),
    R("payments", "GET", "/v1/statement-challenges", roles(TM, PANEL), Scope.LIST,
      "the team manager's queue of challenges"),
    R("payments", "POST", "/v1/statement-challenges/{challenge_id}/answer", roles(TM, PANEL),
      Scope.RECORD, "upheld (a review is asked for) or not upheld, with reasons"),
    # audit
    R("audit", "GET", "/v1/people/{person_id}/history", ANYONE, Scope.PERSON),
    R("audit", "GET", "/v1/people/{person_id}/budget", ANYONE, Scope.PERSON),
    R("audit", "GET", "/v1/people/{person_id}/timeline", ANYONE, Scope.PERSON),
    R("audit", "GET", "/v1/people/{person_id}/verify", ANYONE, Scope.PERSON),
    R("audit", "GET", "/v1/verify", roles(AUDITOR, OPS), Scope.COUNCIL_WIDE),
    R("audit", "GET", "/v1/caseload", STAFF, Scope.LIST, "people by stage, team and key worker"),
    R("audit", "GET", "/v1/kpis/ni130", STAFF, Scope.COUNCIL_WIDE),
    R("audit", "GET", "/v1/kpis/lancashire", STAFF, Scope.COUNCIL_WIDE),
    R("audit", "POST", "/v1/replay", roles(OPS), Scope.COUNCIL_WIDE),
    R("audit", "GET", "/v1/replay/{replay_id}", roles(OPS), Scope.COUNCIL_WIDE),
    R("audit", "GET", "/v1/projections/digest", roles(AUDITOR, OPS), Scope.COUNCIL_WIDE),
    R("audit", "GET", "/v1/people/{person_id}/subject-access", SUBJECT_ACCESS, Scope.PERSON),
    R("audit", "GET", "/v1/returns/cld", roles(AUDITOR, OPS, TM), Scope.COUNCIL_WIDE),
    R("audit", "GET", "/v1/returns/cld.csv", roles(AUDITOR, OPS, TM), Scope.COUNCIL_WIDE),
    R("audit", "GET", "/v1/returns/kpis.csv", STAFF, Scope.COUNCIL_WIDE),
    R("audit", "GET", "/v1/tamper-findings", roles(AUDITOR, OPS), Scope.COUNCIL_WIDE),
    R("audit", "POST", "/v1/tamper-findings/{finding_id}/acknowledge", roles(AUDITOR),
      Scope.RECORD, "closing a tamper finding is an auditor's alone, with a reason"),
)  # fmt: skip


def rights_of(service: str) -> dict[tuple[str, str], Right]:
    return {(r.method, r.path): r for r in RIGHTS if r.service == service}


ROLE_COLUMNS = tuple(Role)
ROLE_ABBREVIATIONS = {
    Role.PERSON: "P",
    Role.REPRESENTATIVE: "Rep",
    Role.CARE_MANAGER: "CM",
    Role.TEAM_MANAGER: "TM",
    Role.PANEL: "Pan",
    Role.FINANCE: "Fin",
    Role.AUDITOR: "Aud",
    Role.OPERATIONS: "Ops",
}
START = "<!-- rights table: generated by `python -m contracts.rights --write docs/security.md` -->"
END = "<!-- end of rights table -->"


def markdown_table() -> str:
    """The rights as a Markdown table: ✓ may call; ✓own only for their own person."""
    head = ["service", "route", *(ROLE_ABBREVIATIONS[r] for r in ROLE_COLUMNS), "scope"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for right in RIGHTS:
        cells = []
        for role in ROLE_COLUMNS:
            if role not in right.roles:
                cells.append("")
            elif role in CITIZEN_ROLES and right.citizens_only_their_own:
                cells.append("own")
            else:
                cells.append("✓")
        route = f"`{right.method} {right.path}`"
        lines.append("| " + " | ".join([right.service, route, *cells, right.scope.value]) + " |")
    return "\n".join(lines)


def with_table(document: str) -> str:
    """The document with the text between the markers replaced by the current table."""
    before, start, rest = document.partition(START)
    _, end, after = rest.partition(END)
    if not start or not end:
        raise ValueError("the document has no rights table markers")
    return f"{before}{START}\n{markdown_table()}\n{END}{after}"


if __name__ == "__main__":
    if sys.argv[1:2] == ["--write"] and len(sys.argv) == 3:
        path = Path(sys.argv[2])
        path.write_text(with_table(path.read_text()))
    else:
        print(markdown_table())
