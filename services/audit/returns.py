"""Statutory returns built from the audit history: the Client Level Data (CLD) extract for a
quarter, its validator, and NI130 / the Lancashire measure as CSV (docs/returns.md).

Pure: no I/O. The CLD layout is the Adult Social Care Client Level Data specification,
Release 2 (NHS England, collected by NHS Arden & GEM CSU for DHSC; it replaced Release 1,
mandatory from 1 April 2023): one row per event (request, assessment, service, review) of
a person the council supports, in the published order. Release 2 keeps Release 1's
submitted fields and renames code values (event outcomes, service types); the financial
assessment is an assessment event of its own and the person's client funding status
comes from the latest one. Fields the journey's events cannot support are left blank,
which the collection allows ("where you are unable to complete a field leave it blank");
docs/returns.md says where each populated field comes from and which code values are
still to be confirmed against the published specification.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from uuid import UUID

from contracts import events as ev
from contracts.money import Frequency, div_round_half_up
from contracts.vocabulary import ClientGroup
from servicekit.csvexport import Cell, csv_text
from servicekit.dates import RECORD_DATE

CLD_SPECIFICATION = "Adult Social Care Client Level Data specification, Release 2"

CLD_FIELDS: tuple[str, ...] = (
    "LA_Code",
    "LA_Name",
    "Reporting_Period_Start_Date",
    "Reporting_Period_End_Date",
    "NHS_Number",
    "LA_Person_Unique_Identifier",
    "First_Name",
    "Last_Name",
    "GP_Practice_Name",
    "GP_Practice_Code",
    "Gender",
    "Ethnicity",
    "Date_of_Birth",
    "Date_of_Death",
    "Client_Type",
    "Primary_Support_Reason",
    "Postcode",
    "Accommodation_Status",
    "Employment_Status",
    "Has_Unpaid_Carer",
    "Autism_Spectrum_Disorder_ASD",
    "Visual_Impairment",
    "Hearing_Impairment",
    "Dementia",
    "Client_Funding_Status",
    "Event_Type",
    "Event_Reference",
    "Event_Start_Date",
    "Event_End_Date",
    "Event_Description",
    "Event_Outcome",
    "Request_Route_of_Access",
    "Assessment_Type",
    "Eligible_Needs_Identified",
    "Method_of_Assessment",
    "Total_Hrs_Caring_Per_Week",
    "No_of_adults_being_cared_for",
    "Adult_1_Linked_Person_ID",
    "Adult_2_Linked_Person_ID",
    "Adult_3_Linked_Person_ID",
    "Service_Type",
    "Service_Component",
    "Delivery_Mechanism",
    "Provider_CQC_Location_Name",
    "Provider_CQC_Location_ID",
    "Review_Reason",
    "Review_Outcomes_Achieved",
    "Method_of_Review",
    "Unit_Cost",
    "Cost_Frequency_Unit_Type",
    "Planned_Units_Per_Week",
)
"""The submitted fields, in the specification's order (the Der_* fields are derived by NHS
England after submission and are not part of a council's file). Release 2's national
processing (DHSC's published CLD pipeline, which maps Release 1 submissions onto Release 2)
reads the same field names as Release 1."""

FIELDS_TO_CONFIRM = (
    "that Release 2 adds no submitted field to Release 1's list: the field list of the "
    "'Adult Social Care Client Level Data: Release 2 specification' (NHS England / NHS "
    "Arden & GEM CSU, ASC CLD page)"
)

MANDATORY = (
    "LA_Code",
    "Reporting_Period_Start_Date",
    "Reporting_Period_End_Date",
    "LA_Person_Unique_Identifier",
    "Client_Type",
    "Event_Type",
    "Event_Reference",
    "Event_Start_Date",
)
DATE_FIELDS = (
    "Reporting_Period_Start_Date",
    "Reporting_Period_End_Date",
    "Date_of_Birth",
    "Date_of_Death",
    "Event_Start_Date",
    "Event_End_Date",
)

_DHSC_R2 = (
    "DHSC's CLD main-table methodology, 'Data cleaning, mapping and deriving new fields' "
    "(github.com/DataS-DHSC/ASC-CLD-LA-Dashboard, Main_tables/docs/methodology/"
    "3-data-cleaning.md): the Release 2 values submissions are mapped to"
)
_R1_GUIDANCE = "NHS England, CLD Guidance, Release 1 (February 2023), the field's defined list"
_R2_SPEC = "the Release 2 specification's defined list (NHS Arden & GEM CSU, ASC CLD page)"


@dataclass(frozen=True)
class CodeList:
    """A coded field's defined list, where it was read, and what is still to check."""

    values: frozenset[str]
    source: str
    to_confirm: str | None = None


CODE_LISTS: dict[str, CodeList] = {
    "Event_Type": CodeList(frozenset({"Request", "Assessment", "Service", "Review"}), _DHSC_R2),
    "Client_Type": CodeList(
        frozenset({"Service User", "Carer", "Carer known by association"}),
        _R1_GUIDANCE,
        to_confirm=f"unchanged in Release 2: {_R2_SPEC}",
    ),
    "Primary_Support_Reason": CodeList(
        frozenset(
            {
                "Physical Support: Access & mobility only",
                "Physical Support: Personal care support",
                "Sensory Support: Support for visual impairment",
                "Sensory Support: Support for hearing impairment",
                "Sensory Support: Support for dual impairment",
                "Support with Memory & Cognition",
                "Learning Disability Support",
                "Mental Health Support",
                "Social Support: Substance misuse support",
                "Social Support: Asylum seeker support",
                "Social Support: Support for Social Isolation/Other",
                "Social Support: Support to Carer",
            }
        ),
        _R1_GUIDANCE,
        to_confirm=f"Release 2's wording of the two values this extract fills: {_R2_SPEC}",
    ),
    "Event_Outcome": CodeList(
        frozenset(
            {
                "Progress to reablement/ST-Max",
                "Progress to assessment, review or reassessment",
                "Progress to support planning or services",
                "Continuation of support or services",
                "Admitted to hospital",
                "NFA: Responsibility moved to another local authority",
                "NFA: Referral to NHS services or NHS funded social care",
                "NFA: Self-funded client or under 12wk disregard",
                "NFA: Information and advice or signposting",
                "NFA: Referral to other service within the local authority",
                "NFA: Support declined",
                "NFA: Deceased",
                "NFA: Support ended as planned",
                "NFA: Support ended for other reason",
                "NFA: No services offered for other reason",
                "NFA: Other",
            }
        ),
        _DHSC_R2,
    ),
    "Assessment_Type": CodeList(
        frozenset({"Long Term Assessment", "Short Term Assessment", "Financial Assessment"}),
        _R1_GUIDANCE,
        to_confirm=(
            "Release 2's wording, and whether it splits 'Financial Assessment' into the "
            f"guidance's three kinds of financial assessment or review: {_R2_SPEC}"
        ),
    ),
    "Eligible_Needs_Identified": CodeList(frozenset({"Yes", "No"}), _R1_GUIDANCE),
    "Service_Type": CodeList(
        frozenset(
            {
                "Long term support: Nursing care",
                "Long term support: Residential care",
                "Long term support: Community",
                "Long term support: Prison",
                "Short term support: ST-Max",
                "Short term support: Ongoing low level",
                "Short term support: Other short term",
                "Unpaid carer support: Direct to unpaid carer",
                "Unpaid carer support: Support involving the person cared-for",
            }
        ),
        _DHSC_R2,
    ),
    "Service_Component": CodeList(
        frozenset({"Direct Payment"}),
        _R1_GUIDANCE,
        to_confirm=(
            "the one value this extract fills ('Direct Payment') is unchanged in "
            f"Release 2: {_R2_SPEC}"
        ),
    ),
    "Delivery_Mechanism": CodeList(
        frozenset(
            {
                "Direct Payment",
                "CASSR Managed Personal Budget",
                "CASSR Commissioned Support",
                "Self-Funder Metering Only",
            }
        ),
        _R1_GUIDANCE,
        to_confirm=f"unchanged in Release 2: {_R2_SPEC}",
    ),
    "Client_Funding_Status": CodeList(
        frozenset(
            {
                "Fully Social Care Funded",
                "Joint Client and Social Care Funded",
                "18(3) (full cost client)",
                "Self-funder - Metering Only",
                "Joint Health and Social Care Funded",
                "Fully Health Funded",
                "Unknown - Individual Level",
            }
        ),
        _R1_GUIDANCE,
        to_confirm=f"unchanged in Release 2: {_R2_SPEC}",
    ),
    "Review_Reason": CodeList(
        frozenset({"Planned", "Unplanned", "Review of short term support"}),
        _DHSC_R2,
        to_confirm=(
            "the full Release 2 wording of the planned and unplanned values (DHSC's pipeline "
            f"matches them by prefix): {_R2_SPEC}"
        ),
    ),
    "Cost_Frequency_Unit_Type": CodeList(
        frozenset({"Weekly"}),
        _R1_GUIDANCE,
        to_confirm=f"only the value this extract fills is listed: {_R2_SPEC}",
    ),
}
"""The defined lists of the coded fields this extract fills; a filled field must hold a
value from its list. `to_confirm` names what still has to be checked and where."""


def specification_to_confirm() -> list[str]:
    """What is still to be checked against the published specification, field by field."""
    return [f"fields: {FIELDS_TO_CONFIRM}"] + [
        f"{name}: {code_list.to_confirm}"
        for name, code_list in CODE_LISTS.items()
        if code_list.to_confirm
    ]


KNOWN_LA_CODES = {"lancashire": "888"}
"""The three-digit CASSR code each council submits under. Councils A-E of seed 004 are
anonymised: their code is given with the request (la_code)."""

_QUARTER = re.compile(r"^(\d{4})-Q([1-4])$")
_LA_CODE = re.compile(r"^\d{3}$")
_MONEY = re.compile(r"^\d{1,10}\.\d{2}$")


class ReturnRequestInvalid(ValueError):
    """A quarter or LA code that cannot be used; the message says which and why."""


@dataclass(frozen=True)
class Quarter:
    """A calendar quarter: 2026-Q3 is 1 July to 30 September 2026."""

    year: int
    number: int

    @classmethod
    def parse(cls, text: str) -> Quarter:
        match = _QUARTER.match(text.strip())
        if match is None:
            raise ReturnRequestInvalid(f"{text!r} is not a quarter like 2026-Q3")
        first, last = RECORD_DATE.bounds()
        if not first.year <= int(match.group(1)) <= last.year:
            raise ReturnRequestInvalid(
                f"{text!r} is out of range: give a quarter from {first.year}-Q1 to {last.year}-Q4"
            )
        return cls(int(match.group(1)), int(match.group(2)))

    @property
    def start(self) -> date:
        return date(self.year, 3 * self.number - 2, 1)

    @property
    def end(self) -> date:
        first_of_next = (
            date(self.year + 1, 1, 1)
            if self.number == 4
            else date(self.year, 3 * self.number + 1, 1)
        )
        return first_of_next - timedelta(days=1)

    def __str__(self) -> str:
        return f"{self.year}-Q{self.number}"


@dataclass(frozen=True)
class TimedEvent:
    """An event of a person's history and when it happened (its CloudEvent time)."""

    event: ev.Event
    time: datetime


@dataclass
class _Assessment:
    reference: UUID
    started: date
    validated: date | None = None
    eligible: bool | None = None
    """The eligibility determination's result, where one was recorded."""


@dataclass
class _Service:
    reference: UUID
    deployment_id: UUID
    option: ev.DeploymentOption
    frequency: Frequency
    total_pence: int
    instalments: int
    start: date
    end: date | None = None


@dataclass
class _Person:
    person_id: str
    client_group: ClientGroup | None = None
    assessments: list[_Assessment] = field(default_factory=list)
    services: list[_Service] = field(default_factory=list)
    reviews: list[ev.ReviewCompleted] = field(default_factory=list)
    financial_assessments: list[ev.FinancialAssessmentCompleted] = field(default_factory=list)

    def funding_status(self, on: date) -> str:
        """The client funding status from the latest financial assessment carried out by
        `on` (a deferred one has not been, so it changes nothing)."""
        done = [
            f
            for f in self.financial_assessments
            if f.assessed_on <= on and f.outcome is not ev.FinancialAssessmentOutcome.DEFERRED
        ]
        if not done:
            return UNKNOWN_FUNDING
        return funding_status_of(max(done, key=lambda f: f.assessed_on))


_PRIMARY_SUPPORT_REASON = {
    ClientGroup.LEARNING_DISABILITY: "Learning Disability Support",
    ClientGroup.MENTAL_HEALTH: "Mental Health Support",
}
"""Only where a client group names the support reason itself; older people and physical
disability are groups of people, not reasons (blank), and carers have none."""

UNKNOWN_FUNDING = "Unknown - Individual Level"
"""The guidance's value for a person whose funding status has not (yet) been assessed."""


def funding_status_of(assessment: ev.FinancialAssessmentCompleted) -> str:
    """Client_Funding_Status as the CLD guidance sets it from a financial assessment.

    The guidance: capital above the upper limit, `18(3) (full cost client)`; between the
    limits, `Joint Client and Social Care Funded`; below the lower limit, `Fully Social
    Care Funded`; not yet assessed, `Unknown - Individual Level`. Capital lies between the
    limits exactly when the assessment found tariff income. A light-touch assessment on
    significant resources means the full cost; one on benefits showing no contribution,
    none; a nominal charge says nothing of capital (unknown), nor does a deferred or
    refused assessment.
    """
    outcome = assessment.outcome
    if outcome is ev.FinancialAssessmentOutcome.FULL_COST_PAYER:
        return "18(3) (full cost client)"
    if outcome is ev.FinancialAssessmentOutcome.ASSESSED:
        if assessment.tariff_income_weekly_pence > 0:
            return "Joint Client and Social Care Funded"
        return "Fully Social Care Funded"
    if outcome is ev.FinancialAssessmentOutcome.LIGHT_TOUCH:
        if assessment.light_touch_basis is ev.LightTouchBasis.SIGNIFICANT_RESOURCES:
            return "18(3) (full cost client)"
        if assessment.light_touch_basis is ev.LightTouchBasis.BENEFITS_SHOW_NO_CONTRIBUTION:
            return "Fully Social Care Funded"
    return UNKNOWN_FUNDING


_DELIVERY = {
    ev.DeploymentOption.DIRECT_PAYMENT: "Direct Payment",
    ev.DeploymentOption.COUNCIL_MANAGED: "CASSR Managed Personal Budget",
    ev.DeploymentOption.THIRD_PARTY_MANAGED: "CASSR Managed Personal Budget",
    ev.DeploymentOption.INDIVIDUAL_SERVICE_FUND: "CASSR Managed Personal Budget",
}

_REVIEW_OUTCOME = {
    ev.ReviewOutcome.NO_CHANGE: "Continuation of support or services",
    ev.ReviewOutcome.REVISE_PLAN: "Progress to support planning or services",
    ev.ReviewOutcome.REASSESS: "Progress to assessment, review or reassessment",
}
_TO_SERVICES = "Progress to support planning or services"
_COMMUNITY = "Long term support: Community"
_CARE_ASSESSMENT = "Long Term Assessment"
"""The guidance: an assessment that determines eligibility under the Care Act."""
_FINANCIAL_ASSESSMENT = "Financial Assessment"


def _fold(person_id: str, history: Iterable[TimedEvent]) -> _Person:
    person = _Person(person_id)
    assessments: dict[UUID, _Assessment] = {}
    services: dict[UUID, _Service] = {}
    for item in history:
        event, day = item.event, item.time.date()
        if isinstance(event, ev.AssessmentStarted):
            person.client_group = event.client_group
            assessments[event.assessment_id] = _Assessment(event.assessment_id, day)
        elif isinstance(event, ev.AssessmentValidated):
            if event.assessment_id in assessments:
                assessments[event.assessment_id].validated = day
        elif isinstance(event, ev.EligibilityDetermined):
            if event.assessment_id in assessments:
                assessments[event.assessment_id].eligible = event.eligible
        elif isinstance(event, ev.FinancialAssessmentCompleted):
            person.financial_assessments.append(event)
        elif isinstance(event, ev.PaymentScheduled):
            services[event.schedule_id] = _Service(
                reference=event.schedule_id,
                deployment_id=event.deployment_id,
                option=event.option,
                frequency=event.frequency,
                total_pence=event.total_pence,
                instalments=event.instalments,
                start=event.first_due_on,
            )
        elif isinstance(event, ev.DeploymentSwitched | ev.DeploymentSuperseded):
            ended = (event.effective_from or day) - timedelta(days=1)
            for service in services.values():
                if service.deployment_id == event.deployment_id and service.end is None:
                    service.end = max(ended, service.start)
        elif isinstance(event, ev.ReviewCompleted):
            person.reviews.append(event)
    person.assessments = list(assessments.values())
    person.services = list(services.values())
    return person


def _overlaps(start: date, end: date | None, quarter: Quarter) -> bool:
    return start <= quarter.end and (end is None or end >= quarter.start)


def _pounds(pence: int) -> str:
    whole, part = divmod(pence, 100)
    return f"{whole}.{part:02d}"


def _weekly_pence(service: _Service) -> int | None:
    """The weekly value of a schedule, rounded half up; None for a one-off payment."""
    if service.frequency is Frequency.ONE_OFF:
        return None
    return div_round_half_up(service.total_pence, 52)


def cld_rows(
    *,
    la_code: str,
    la_name: str,
    quarter: Quarter,
    people: Iterable[tuple[str, Sequence[TimedEvent]]],
) -> list[dict[str, str]]:
    """The CLD extract for a quarter: every event of every person that overlaps it."""
    rows: list[dict[str, str]] = []
    for person_id, history in people:
        person = _fold(person_id, history)
        if person.client_group is None:
            continue  # never assessed here: no person details to report

        group = person.client_group
        about_person = {
            "LA_Code": la_code,
            "LA_Name": la_name,
            "Reporting_Period_Start_Date": quarter.start.isoformat(),
            "Reporting_Period_End_Date": quarter.end.isoformat(),
            "LA_Person_Unique_Identifier": person.person_id,
            "Client_Type": "Carer" if group is ClientGroup.CARERS else "Service User",
            "Primary_Support_Reason": _PRIMARY_SUPPORT_REASON.get(group, ""),
            # The guidance asks it of service users only, as their most recent status.
            "Client_Funding_Status": (
                "" if group is ClientGroup.CARERS else person.funding_status(quarter.end)
            ),
        }

        def row(about: dict[str, str] = about_person, **values: str) -> dict[str, str]:
            return {**dict.fromkeys(CLD_FIELDS, ""), **about, **values}

        for a in person.assessments:
            if not _overlaps(a.started, a.validated, quarter):
                continue
            done = a.validated is not None and a.validated <= quarter.end
            # Validation is the determination the RAS budgets from; a recorded eligibility
            # determination says which way it went.
            eligible = done and a.eligible is not False
            rows.append(
                row(
                    Event_Type="Assessment",
                    Event_Reference=str(a.reference),
                    Event_Start_Date=a.started.isoformat(),
                    Event_End_Date=a.validated.isoformat() if done and a.validated else "",
                    Event_Outcome=_TO_SERVICES if eligible else "",
                    Assessment_Type=_CARE_ASSESSMENT,
                    Eligible_Needs_Identified=("Yes" if eligible else "No") if done else "",
                )
            )
        for f in person.financial_assessments:
            if f.outcome is ev.FinancialAssessmentOutcome.DEFERRED:
                continue  # not carried out yet: nothing to report until it is
            if not quarter.start <= f.assessed_on <= quarter.end:
                continue
            rows.append(
                row(
                    Event_Type="Assessment",
                    Event_Reference=str(f.financial_assessment_id),
                    Event_Start_Date=f.assessed_on.isoformat(),
                    Event_End_Date=f.assessed_on.isoformat(),
                    Assessment_Type=_FINANCIAL_ASSESSMENT,
                    # The status this assessment set, which a later one may have changed.
                    Client_Funding_Status=funding_status_of(f),
                )
            )
        for s in person.services:
            if not _overlaps(s.start, s.end, quarter):
                continue
            weekly = _weekly_pence(s)
            ended = s.end is not None and s.end <= quarter.end
            rows.append(
                row(
                    Event_Type="Service",
                    Event_Reference=str(s.reference),
                    Event_Start_Date=s.start.isoformat(),
                    Event_End_Date=s.end.isoformat() if ended and s.end else "",
                    Service_Type=_COMMUNITY,
                    Service_Component=(
                        "Direct Payment" if s.option is ev.DeploymentOption.DIRECT_PAYMENT else ""
                    ),
                    Delivery_Mechanism=_DELIVERY[s.option],
                    Unit_Cost=_pounds(weekly) if weekly is not None else "",
                    Cost_Frequency_Unit_Type="Weekly" if weekly is not None else "",
                    Planned_Units_Per_Week="1" if weekly is not None else "",
                )
            )
        for r in person.reviews:
            if not quarter.start <= r.completed_on <= quarter.end:
                continue
            rows.append(
                row(
                    Event_Type="Review",
                    Event_Reference=str(r.review_id),
                    Event_Start_Date=r.completed_on.isoformat(),
                    Event_End_Date=r.completed_on.isoformat(),
                    Event_Outcome=_REVIEW_OUTCOME[r.outcome],
                )
            )
    rows.sort(
        key=lambda r: (
            r["LA_Person_Unique_Identifier"],
            r["Event_Start_Date"],
            r["Event_Type"],
            r["Event_Reference"],
        )
    )
    return rows


@dataclass(frozen=True)
class Violation:
    row: int
    """1 for the first data row (the header is not counted)."""
    field: str
    rule: str


def validate_cld(rows: Sequence[dict[str, str]], quarter: Quarter) -> list[Violation]:
    """The specification's rules for a submitted file, applied to each row.

    Every field present and no other; mandatory fields filled; dates as YYYY-MM-DD; coded
    fields from their code lists; an event's end not before its start; the event overlaps
    the reporting period, which is the quarter; money with two decimal places; LA_Code
    three digits; an event reference unique per person and event type.
    """
    found: list[Violation] = []
    seen: set[tuple[str, str, str]] = set()
    for number, row in enumerate(rows, start=1):

        def bad(name: str, rule: str, number: int = number) -> None:
            found.append(Violation(number, name, rule))

        if tuple(row) != CLD_FIELDS:
            bad("*", "the row must have exactly the specification's fields, in order")
            continue
        for name in MANDATORY:
            if not row[name]:
                bad(name, "mandatory")
        dates: dict[str, date] = {}
        for name in DATE_FIELDS:
            if row[name]:
                try:
                    if len(row[name]) != 10:
                        raise ValueError(row[name])
                    dates[name] = date.fromisoformat(row[name])
                except ValueError:
                    bad(name, "a date as YYYY-MM-DD")
        for name, code_list in CODE_LISTS.items():
            if row[name] and row[name] not in code_list.values:
                bad(name, f"{row[name]!r} is not in the code list")
        if row["LA_Code"] and not _LA_CODE.match(row["LA_Code"]):
            bad("LA_Code", "three digits (the CASSR code)")
        if row["Unit_Cost"] and not _MONEY.match(row["Unit_Cost"]):
            bad("Unit_Cost", "pounds with two decimal places")
        if bool(row["Unit_Cost"]) != bool(row["Cost_Frequency_Unit_Type"]):
            bad("Cost_Frequency_Unit_Type", "given exactly when Unit_Cost is")
        if row["Reporting_Period_Start_Date"] != quarter.start.isoformat():
            bad("Reporting_Period_Start_Date", f"the quarter starts on {quarter.start}")
        if row["Reporting_Period_End_Date"] != quarter.end.isoformat():
            bad("Reporting_Period_End_Date", f"the quarter ends on {quarter.end}")
        start = dates.get("Event_Start_Date")
        end = dates.get("Event_End_Date")
        if start and end and end < start:
            bad("Event_End_Date", "not before Event_Start_Date")
        if start and start > quarter.end:
            bad("Event_Start_Date", "not after the reporting period")
        if end and end < quarter.start:
            bad("Event_End_Date", "not before the reporting period")
        if end and end > quarter.end:
            bad("Event_End_Date", "not after the reporting period (leave open instead)")
        if row["Event_Type"] == "Service" and not row["Service_Type"]:
            bad("Service_Type", "mandatory for a service event")
        if row["Event_Type"] == "Review" and not row["Event_Outcome"]:
            bad("Event_Outcome", "mandatory for a completed review")
        if row["Event_Type"] == "Assessment" and not row["Assessment_Type"]:
            bad("Assessment_Type", "mandatory for an assessment event")
        financial = row["Assessment_Type"] == _FINANCIAL_ASSESSMENT
        if financial and row["Event_Type"] != "Assessment":
            bad("Assessment_Type", "only an assessment event has an assessment type")
        if financial and not row["Event_End_Date"]:
            bad("Event_End_Date", "mandatory for a financial assessment (its date)")
        if row["Event_Outcome"] and row["Event_Type"] == "Assessment" and financial:
            bad("Event_Outcome", "none for a financial assessment (the funding status says it)")
        funded_event = row["Event_Type"] in ("Service", "Review") or financial
        user = row["Client_Type"] == "Service User"
        if user and funded_event and not row["Client_Funding_Status"]:
            bad(
                "Client_Funding_Status",
                "mandatory for a service user's service, review or financial assessment",
            )
        if row["Delivery_Mechanism"] == "Direct Payment" and row["Service_Type"].endswith("Prison"):
            bad("Delivery_Mechanism", "no direct payment in a prison setting")
        key = (row["LA_Person_Unique_Identifier"], row["Event_Type"], row["Event_Reference"])
        if key in seen:
            bad("Event_Reference", "one row per event of a person")
        seen.add(key)
    return found


def to_csv(header: Sequence[str], rows: Iterable[Sequence[Cell] | Mapping[str, Cell]]) -> str:
    """CSV safe to open in a spreadsheet (servicekit.csvexport), the header first."""
    return csv_text(
        header, ([row[h] for h in header] if isinstance(row, Mapping) else row for row in rows)
    )


def la_code_for(council: str, given: str | None) -> str:
    code = given or KNOWN_LA_CODES.get(council)
    if code is None:
        raise ReturnRequestInvalid(
            f"no CASSR code is known for {council}: give it as la_code (three digits)"
        )
    if not _LA_CODE.match(code):
        raise ReturnRequestInvalid(f"la_code {code!r} is not three digits")
    return code
