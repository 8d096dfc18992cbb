"""Assessments: start one, record the person's answers, submit, determine eligibility, and
validate (a practitioner confirms or adjusts each level, with a reason for a change). A
budget is calculated only for eligible needs, or with a recorded reason to go ahead."""

from __future__ import annotations

from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from contracts.vocabulary import AgeBand, ClientGroup, CompletedBy, Difficulty, EligibilityOutcome
from services.portal.clients import ServiceError
from services.portal.deps import Api, Form, Staff, back_to, field, flash, render
from services.portal.formatting import BadAmount, pence_from_pounds

router = APIRouter()


@router.get("/assessments/new", response_class=HTMLResponse)
async def new_assessment(request: Request, user: Staff, person_id: str = "") -> Response:
    return render(
        request,
        "assessment_new.html",
        {
            "title": "Start an assessment",
            "person_id": person_id,
            "client_groups": list(ClientGroup),
            "completed_by": list(CompletedBy),
            "age_bands": list(AgeBand),
        },
    )


@router.post("/assessments")
async def start_assessment(request: Request, user: Staff, api: Api, form: Form) -> Response:
    person_id = field(form, "person_id")
    body = {
        "person_id": person_id,
        "client_group": field(form, "client_group"),
        "completed_by": field(form, "completed_by"),
        "team": field(form, "team"),
        "key_worker_id": field(form, "key_worker_id"),
        "age_band": field(form, "age_band"),
        "community_based": field(form, "community_based", "yes") == "yes",
    }
    try:
        created = await api.post("assessment", "/v1/assessments", user.token, body)
    except ServiceError as err:
        flash(request, err.message)
        return back_to(f"/assessments/new?person_id={quote(person_id)}")
    flash(request, "Assessment started. Now record the person's answers.", "success")
    return back_to(f"/assessments/{created['assessment_id']}")


@router.get("/assessments/{assessment_id}", response_class=HTMLResponse)
async def assessment_page(request: Request, assessment_id: str, user: Staff, api: Api) -> Response:
    assessment = await api.get("assessment", f"/v1/assessments/{assessment_id}", user.token)
    questionnaire = await api.get(
        "assessment", f"/v1/questionnaires/{assessment['council']}", user.token
    )
    return render(
        request,
        "assessment.html",
        {
            "title": f"Assessment for {assessment['person_id']}",
            "assessment": assessment,
            "questionnaire": questionnaire,
            "risk": assessment["risks"][0] if assessment["risks"] else None,
            "outcomes": [(o.value, o.value.replace("_", " ")) for o in EligibilityOutcome],
            "difficulties": [(d.value, d.value.replace("_", " ")) for d in Difficulty],
            "going_ahead_reasons": GOING_AHEAD_REASONS,
        },
    )


GOING_AHEAD_REASONS = [
    ("urgent_need", "Urgent need (Care Act 2014 s.19(3))"),
    ("converted_from_legacy_system", "Already supported: brought over from the old system"),
    ("determination_pending_review", "The determination is being reviewed"),
]
"""Why a validation may go ahead without an eligible determination (docs/charging.md)."""


@router.post("/assessments/{assessment_id}/eligibility")
async def determine_eligibility(
    request: Request, assessment_id: str, user: Staff, api: Api, form: Form
) -> Response:
    here = f"/assessments/{assessment_id}"
    body = {
        "needs_from_impairment_or_illness": form.get("needs_from_impairment") == "yes",
        "outcomes": [
            {"outcome": outcome.value, "difficulties": [difficulty]}
            for outcome in EligibilityOutcome
            if (difficulty := field(form, f"outcome_{outcome.value}"))
        ],
        "significant_impact_on_wellbeing": form.get("significant_impact") == "yes",
    }
    try:
        answer = await api.post("assessment", f"/v1{here}/eligibility", user.token, body)
    except ServiceError as err:
        flash(request, err.message)
        return back_to(here)
    flash(request, "Eligibility recorded. " + " ".join(answer["reasons"]), "success")
    return back_to(here)


@router.post("/assessments/{assessment_id}/answers")
async def save_answers(
    request: Request, assessment_id: str, user: Staff, api: Api, form: Form
) -> Response:
    here = f"/assessments/{assessment_id}"
    domains = {
        key.removeprefix("domain_"): int(value)
        for key, value in form.multi_items()
        if key.startswith("domain_") and isinstance(value, str) and value.isdigit()
    }
    try:
        carer = pence_from_pounds(field(form, "carer_support_weekly"), "Carer's support")
    except BadAmount as err:
        flash(request, str(err))
        return back_to(here)
    risks = []
    if field(form, "risk_description"):
        risks.append(
            {
                "risk_id": field(form, "risk_id") or "risk-1",
                "description": field(form, "risk_description"),
                "persons_view": field(form, "risk_persons_view") or None,
            }
        )
    body = {
        "domains": domains,
        "significant_informal_support": form.get("significant_informal_support") == "yes",
        "needs_24_7": form.get("needs_24_7") == "yes",
        "carer_support_weekly_pence": carer,
        "outcomes": [line.strip() for line in field(form, "outcomes").splitlines() if line],
        "risks": risks,
    }
    try:
        await api.put("assessment", f"/v1/assessments/{assessment_id}/answers", user.token, body)
    except ServiceError as err:
        flash(request, err.message)
        return back_to(here)
    flash(request, "Answers saved.", "success")
    return back_to(here)


@router.post("/assessments/{assessment_id}/submit")
async def submit_assessment(
    request: Request, assessment_id: str, user: Staff, api: Api, form: Form
) -> Response:
    here = f"/assessments/{assessment_id}"
    try:
        await api.post("assessment", f"/v1{here}/submit", user.token)
    except ServiceError as err:
        flash(request, err.message)
        return back_to(here)
    flash(request, "Submitted for validation.", "success")
    return back_to(here)


@router.post("/assessments/{assessment_id}/validate")
async def validate_assessment(
    request: Request, assessment_id: str, user: Staff, api: Api, form: Form
) -> Response:
    here = f"/assessments/{assessment_id}"
    assessment = await api.get("assessment", f"/v1{here}", user.token)
    adjustments = []
    for key, answered in assessment["answers"]["domains"].items():
        chosen = field(form, f"validated_{key}")
        if chosen.isdigit() and int(chosen) != answered:
            adjustments.append(
                {"domain": key, "level": int(chosen), "reason": field(form, f"reason_{key}")}
            )
    risks = [
        {
            "risk_id": risk["risk_id"],
            "practitioners_view": field(form, f"view_{risk['risk_id']}") or "Agreed",
            "flagged": form.get(f"flagged_{risk['risk_id']}") == "yes",
        }
        for risk in assessment["risks"]
    ]
    body: dict[str, object] = {"adjustments": adjustments, "risks": risks}
    if reason := field(form, "going_ahead_reason"):
        body["going_ahead_without_eligibility"] = {
            "reason": reason,
            "explanation": field(form, "going_ahead_explanation"),
        }
    try:
        await api.post("assessment", f"/v1{here}/validate", user.token, body)
    except ServiceError as err:
        flash(request, err.message)
        return back_to(here)
    flash(
        request,
        "Assessment validated. The budget is worked out from it in a moment.",
        "success",
    )
    return back_to(f"/people/{quote(assessment['person_id'])}")
