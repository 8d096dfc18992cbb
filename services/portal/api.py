"""The portal: server-rendered pages over the five services' APIs, with no database.

Every page calls the services with the signed-in user's bearer token (identity.py) and
shows what they answer; every form posts to the portal, which calls the service and
redirects back with the service's reason when it refuses (Post/Redirect/Get).
"""

from __future__ import annotations

import asyncio
import hmac
import secrets
from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, TypeVar
from urllib.parse import quote

from fastapi import Depends, FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from starlette.datastructures import FormData, UploadFile
from starlette.middleware.sessions import SessionMiddleware

from contracts import cld
from contracts.policy import Policy, PolicyBook
from contracts.vocabulary import (
    CITIZEN_ROLES,
    PRACTITIONER_ROLES,
    AgeBand,
    ClientGroup,
    CompletedBy,
    Role,
)
from rules import authority
from services.portal import finance, identity, views
from services.portal.chart import Series, line_chart
from services.portal.clients import ServiceError, Services
from services.portal.formatting import (
    BadAmount,
    long_date,
    money,
    pence_from_pounds,
    plain,
    words,
)
from services.portal.identity import SignedIn
from services.portal.settings import Settings

HERE = Path(__file__).parent
T = TypeVar("T")
SESSION_MAX_AGE_SECONDS = 8 * 3600
PERFORMANCE_MONTHS = 6


class SignInNeeded(Exception):
    """No one is signed in (or the sign-in has ended): go to the sign-in page."""


class FormExpired(Exception):
    """The form's CSRF token is missing or not this session's."""


def _today() -> date:
    return datetime.now(UTC).date()


# --- plumbing every page shares --------------------------------------------------------------


def settings_of(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def services_of(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


def current_user(request: Request) -> SignedIn:
    user = identity.signed_in(request, settings_of(request))
    if user is None:
        raise SignInNeeded
    return user


class StaffOnly(Exception):
    """A person or representative opened a staff page: their own page is /me."""


def current_staff(request: Request) -> SignedIn:
    user = current_user(request)
    if user.is_citizen:
        raise StaffOnly
    return user


User = Annotated[SignedIn, Depends(current_user)]
Staff = Annotated[SignedIn, Depends(current_staff)]
Api = Annotated[Services, Depends(services_of)]


def csrf_token(request: Request) -> str:
    token = request.session.get("csrf")
    if not isinstance(token, str):
        token = secrets.token_urlsafe(32)
        request.session["csrf"] = token
    return token


async def checked_form(request: Request) -> AsyncIterator[FormData]:
    """The posted form, once its CSRF token matches the session's; closed after the request
    (an uploaded file is spooled to a temporary file until then)."""
    form = await request.form()
    try:
        sent = form.get("csrf_token")
        expected = request.session.get("csrf")
        if not isinstance(sent, str) or not isinstance(expected, str):
            raise FormExpired
        if not hmac.compare_digest(sent, expected):
            raise FormExpired
        yield form
    finally:
        await form.close()


Form = Annotated[FormData, Depends(checked_form)]


def flash(request: Request, text: str, kind: str = "error") -> None:
    messages = list(request.session.get("flash", []))
    messages.append({"kind": kind, "text": text})
    request.session["flash"] = messages


def back_to(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


def field(form: FormData, name: str, default: str = "") -> str:
    value = form.get(name, default)
    return value.strip() if isinstance(value, str) else default


def render(
    request: Request,
    template: str,
    context: dict[str, Any],
    status_code: int = 200,
) -> HTMLResponse:
    templates: Jinja2Templates = request.app.state.templates
    user = identity.signed_in(request, settings_of(request))
    messages = request.session.pop("flash", [])
    return templates.TemplateResponse(
        request,
        template,
        {
            "user": user,
            "csrf_token": csrf_token(request),
            "messages": messages,
            "development": settings_of(request).development,
            "today": _today(),
            **context,
        },
        status_code=status_code,
    )


async def optional(call: Awaitable[T]) -> T | None:
    """A section the user may not be allowed to see, or that does not exist yet: None."""
    try:
        return await call
    except ServiceError as err:
        if err.status in (403, 404):
            return None
        raise


def policy_book(request: Request) -> PolicyBook:
    book: PolicyBook = request.app.state.policies
    return book


def policy_for(request: Request, council: str) -> Policy | None:
    try:
        return policy_book(request).current(council)
    except Exception:  # a council this portal has no policy file for
        return None


# --- the app ---------------------------------------------------------------------------------


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.services = Services(settings.service_urls, settings.request_timeout_seconds)
        try:
            yield
        finally:
            await app.state.services.close()

    app = FastAPI(
        title="PB Journey: portal",
        description="Pages for case workers, managers, finance and the people they support.",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.state.settings = settings
    app.state.policies = PolicyBook.from_directory(settings.policies_dir)
    templates = Jinja2Templates(directory=HERE / "templates")
    templates.env.filters.update(money=money, long_date=long_date, words=words, plain=plain)
    templates.env.globals.update(Role=Role)
    app.state.templates = templates
    app.add_middleware(
        SessionMiddleware,
        secret_key=settings.session_key(),
        session_cookie="pbj_portal",
        max_age=SESSION_MAX_AGE_SECONDS,
        same_site="lax",
        https_only=settings.secure_cookies,
    )
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")

    @app.exception_handler(SignInNeeded)
    async def _sign_in(request: Request, _: Exception) -> Response:
        return back_to(f"/sign-in?next={quote(request.url.path)}")

    @app.exception_handler(StaffOnly)
    async def _citizen(request: Request, _: Exception) -> Response:
        return back_to("/me")

    @app.exception_handler(FormExpired)
    async def _expired(request: Request, _: Exception) -> Response:
        return render(
            request,
            "error.html",
            {
                "title": "This form has expired",
                "message": "Go back, reload the page and try again.",
            },
            status_code=403,
        )

    @app.exception_handler(ServiceError)
    async def _service_error(request: Request, err: Exception) -> Response:
        assert isinstance(err, ServiceError)
        if err.status == 401:
            identity.sign_out(request)
            return back_to("/sign-in")
        status = err.status if err.status in (403, 404, 409, 422) else 502
        return render(
            request,
            "error.html",
            {"title": "Something stopped this page", "message": err.message},
            status_code=status,
        )

    _add_routes(app)
    return app


def _add_routes(app: FastAPI) -> None:
    # --- health and sign-in ------------------------------------------------------------

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", include_in_schema=False)
    async def readyz() -> dict[str, str]:
        return {"status": "ready"}

    @app.get("/", include_in_schema=False)
    async def home(request: Request) -> Response:
        user = identity.signed_in(request, settings_of(request))
        if user is None:
            return back_to("/sign-in")
        return back_to("/me" if user.is_citizen else "/caseload")

    @app.get("/sign-in", response_class=HTMLResponse)
    async def sign_in_page(request: Request, next: str = "/") -> Response:
        return render(
            request,
            "sign_in.html",
            {
                "title": "Sign in",
                "councils": policy_book(request).councils,
                "roles": list(Role),
                "next": next if next.startswith("/") and not next.startswith("//") else "/",
            },
        )

    @app.post("/sign-in")
    async def sign_in(request: Request, form: Form) -> Response:
        settings = settings_of(request)
        if not settings.development:
            return render(
                request,
                "error.html",
                {
                    "title": "Sign in with your council account",
                    "message": "This portal signs you in through your council's identity provider.",
                },
                status_code=400,
            )
        council = field(form, "council")
        user_id = field(form, "user_id")
        person_id = field(form, "person_id") or None
        try:
            role = Role(field(form, "role"))
        except ValueError:
            role = None
        problems = []
        if council not in policy_book(request).councils:
            problems.append("Choose a council.")
        if role is None:
            problems.append("Choose a role.")
        if not user_id:
            problems.append("Enter a user name.")
        if role in CITIZEN_ROLES and not person_id:
            problems.append("A person or their representative must enter the person's id.")
        if problems or role is None:
            for problem in problems:
                flash(request, problem)
            return back_to("/sign-in")
        identity.sign_out(request)
        identity.development_sign_in(
            request,
            settings,
            user_id=user_id,
            role=role,
            council=council,
            person_id=person_id,
        )
        flash(request, f"Signed in as {user_id} ({words(role.value)}).", "success")
        target = field(form, "next", "/")
        return back_to(target if target.startswith("/") and not target.startswith("//") else "/")

    @app.post("/sign-out")
    async def sign_out(request: Request, form: Form) -> Response:
        identity.sign_out(request)
        return back_to("/sign-in")

    # --- caseload ----------------------------------------------------------------------

    @app.get("/caseload", response_class=HTMLResponse)
    async def caseload(
        request: Request,
        user: Staff,
        api: Api,
        team: str = "",
        key_worker_id: str = "",
        stage: str = "",
        cursor: str = "",
    ) -> Response:
        page = await api.get(
            "audit",
            "/v1/caseload",
            user.token,
            {
                "team": team,
                "key_worker_id": key_worker_id,
                "stage": stage,
                "cursor": cursor,
                "limit": 50,
            },
        )
        return render(
            request,
            "caseload.html",
            {
                "title": "Caseload",
                "people": page["items"],
                "next_cursor": page["next_cursor"],
                "filters": {"team": team, "key_worker_id": key_worker_id, "stage": stage},
                "stages": views.STAGES,
            },
        )

    # --- assessment --------------------------------------------------------------------

    @app.get("/assessments/new", response_class=HTMLResponse)
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

    @app.post("/assessments")
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

    @app.get("/assessments/{assessment_id}", response_class=HTMLResponse)
    async def assessment_page(
        request: Request, assessment_id: str, user: Staff, api: Api
    ) -> Response:
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
            },
        )

    @app.post("/assessments/{assessment_id}/answers")
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
            await api.put(
                "assessment", f"/v1/assessments/{assessment_id}/answers", user.token, body
            )
        except ServiceError as err:
            flash(request, err.message)
            return back_to(here)
        flash(request, "Answers saved.", "success")
        return back_to(here)

    @app.post("/assessments/{assessment_id}/submit")
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

    @app.post("/assessments/{assessment_id}/validate")
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
        try:
            await api.post(
                "assessment",
                f"/v1{here}/validate",
                user.token,
                {"adjustments": adjustments, "risks": risks},
            )
        except ServiceError as err:
            flash(request, err.message)
            return back_to(here)
        flash(
            request,
            "Assessment validated. The budget is worked out from it in a moment.",
            "success",
        )
        return back_to(f"/people/{quote(assessment['person_id'])}")

    # --- a person ----------------------------------------------------------------------

    @app.get("/people/{person_id}", response_class=HTMLResponse)
    async def person_page(request: Request, person_id: str, user: Staff, api: Api) -> Response:
        case = await views.load_case(api, user, person_id)
        policy = policy_for(request, user.council)
        return render(
            request,
            "person.html",
            {
                "title": f"Person {person_id}",
                "person_id": person_id,
                "case": case,
                "chart": _budget_chart(case),
                "chart_rows": views.chart_table(case),
                "may_agree": _may_agree(policy, user, case),
                "sign_off_role": _sign_off_role(policy, case),
                "options": views.DEPLOYMENT_OPTIONS,
                "payment_frequencies": views.PAYMENT_FREQUENCIES,
            },
        )

    @app.post("/budgets/{budget_id}/agree")
    async def agree_budget(
        request: Request, budget_id: str, user: Staff, api: Api, form: Form
    ) -> Response:
        here = f"/people/{quote(field(form, 'person_id'))}"
        body: dict[str, Any] = {}
        if field(form, "ceiling_exception_reason"):
            body["ceiling_exception_reason"] = field(form, "ceiling_exception_reason")
        try:
            await api.post("allocation", f"/v1/budgets/{budget_id}/agree", user.token, body)
        except ServiceError as err:
            flash(request, err.message)
            return back_to(here)
        flash(request, "Budget agreed and issued to the person.", "success")
        return back_to(here)

    # --- support plan ------------------------------------------------------------------

    @app.get("/people/{person_id}/plan/new", response_class=HTMLResponse)
    async def new_plan(request: Request, person_id: str, user: Staff, api: Api) -> Response:
        case = await views.load_case(api, user, person_id)
        return render(
            request,
            "plan_new.html",
            {
                "title": f"Write a support plan for {person_id}",
                "person_id": person_id,
                "case": case,
                "provider_kinds": views.PROVIDER_KINDS,
                "frequencies": views.LINE_FREQUENCIES,
                "line_numbers": range(1, views.PLAN_FORM_LINES + 1),
            },
        )

    @app.post("/people/{person_id}/plans")
    async def create_plan(
        request: Request, person_id: str, user: Staff, api: Api, form: Form
    ) -> Response:
        here = f"/people/{quote(person_id)}"
        try:
            body = views.plan_body(form, person_id)
        except BadAmount as err:
            flash(request, str(err))
            return back_to(f"{here}/plan/new")
        try:
            plan = await api.post("planning", "/v1/plans", user.token, body)
        except ServiceError as err:
            flash(request, err.message)
            return back_to(f"{here}/plan/new")
        flash(
            request,
            f"Plan saved: {money(plan['costing']['weekly_pence'])} a week. "
            "Submit it for sign-off when it is ready.",
            "success",
        )
        return back_to(here)

    @app.post("/plans/{plan_id}/{action}")
    async def plan_action(
        request: Request, plan_id: str, action: str, user: Staff, api: Api, form: Form
    ) -> Response:
        here = f"/people/{quote(field(form, 'person_id'))}"
        done = {"submit": "Plan submitted for sign-off.", "sign-off": "Plan signed off."}
        if action not in done:
            return back_to(here)
        try:
            await api.post("planning", f"/v1/plans/{plan_id}/{action}", user.token)
        except ServiceError as err:
            flash(request, err.message)
            return back_to(field(form, "back") or here)
        flash(request, done[action], "success")
        return back_to(field(form, "back") or here)

    # --- payments ----------------------------------------------------------------------

    @app.post("/deployments/{deployment_id}/arrangement")
    async def arrange(
        request: Request, deployment_id: str, user: Staff, api: Api, form: Form
    ) -> Response:
        here = f"/people/{quote(field(form, 'person_id'))}"
        try:
            contribution = pence_from_pounds(
                field(form, "assessed_max_weekly_contribution"), "Weekly contribution"
            )
        except BadAmount as err:
            flash(request, str(err))
            return back_to(here)
        body = {
            "parts": [{"option": field(form, "option")}],
            "frequency": field(form, "frequency"),
            "first_due_on": field(form, "first_due_on"),
            "assessed_max_weekly_contribution_pence": contribution,
        }
        try:
            await api.put(
                "payments", f"/v1/deployments/{deployment_id}/arrangement", user.token, body
            )
        except ServiceError as err:
            flash(request, err.message)
            return back_to(here)
        flash(request, "Payments arranged. Record the signed agreement next.", "success")
        return back_to(here)

    @app.post("/deployments/{deployment_id}/agreement")
    async def agreement(
        request: Request, deployment_id: str, user: Staff, api: Api, form: Form
    ) -> Response:
        here = f"/people/{quote(field(form, 'person_id'))}"
        try:
            await api.post(
                "payments",
                f"/v1/deployments/{deployment_id}/agreement",
                user.token,
                {"signed_on": field(form, "signed_on")},
            )
        except ServiceError as err:
            flash(request, err.message)
            return back_to(here)
        flash(request, "Signed agreement recorded. Payments can now be released.", "success")
        return back_to(here)

    @app.post("/deployments/{deployment_id}/release")
    async def release(
        request: Request, deployment_id: str, user: Staff, api: Api, form: Form
    ) -> Response:
        here = f"/people/{quote(field(form, 'person_id'))}"
        try:
            result = await api.post(
                "payments",
                f"/v1/deployments/{deployment_id}/release",
                user.token,
                {"as_of": field(form, "as_of")},
            )
        except ServiceError as err:
            flash(request, err.message)
            return back_to(here)
        flash(
            request,
            f"Released {result['count']} payment(s), {money(result['total_pence'])} in all.",
            "success",
        )
        return back_to(here)

    # --- lists for managers and finance --------------------------------------------------

    @app.get("/approvals", response_class=HTMLResponse)
    async def approvals(request: Request, user: Staff, api: Api) -> Response:
        plans, budgets = await asyncio.gather(
            optional(api.get("planning", "/v1/approvals", user.token)),
            optional(
                api.get(
                    "allocation",
                    "/v1/budgets",
                    user.token,
                    {"status": "awaiting_agreement", "limit": 200},
                )
            ),
        )
        policy = policy_for(request, user.council)
        waiting = (budgets or {}).get("items", [])
        return render(
            request,
            "approvals.html",
            {
                "title": "Approvals",
                "plans": plans,
                "budgets_mine": [
                    _who_agrees(policy, b) for b in waiting if _can_agree(policy, user, b)
                ],
                "budgets_up": [
                    _who_agrees(policy, b) for b in waiting if not _can_agree(policy, user, b)
                ],
                "limits": _limits(policy, user.role),
            },
        )

    @app.get("/reviews", response_class=HTMLResponse)
    async def reviews(request: Request, user: Staff, api: Api, weeks: int = 8) -> Response:
        weeks = max(1, min(weeks, 104))
        due_before = _today() + timedelta(weeks=weeks)
        page = await api.get(
            "planning",
            "/v1/reviews",
            user.token,
            {"due_before": due_before.isoformat(), "limit": 200},
        )
        open_reviews = [r for r in page["items"] if r["status"] != "completed"]
        return render(
            request,
            "reviews.html",
            {
                "title": "Reviews due",
                "reviews": open_reviews,
                "weeks": weeks,
                "due_before": due_before,
                "outcomes": views.REVIEW_OUTCOMES,
            },
        )

    @app.post("/reviews/{review_id}/complete")
    async def complete_review(
        request: Request, review_id: str, user: Staff, api: Api, form: Form
    ) -> Response:
        body: dict[str, Any] = {
            "outcome": field(form, "outcome"),
            "notes": field(form, "notes"),
        }
        if field(form, "completed_on"):
            body["completed_on"] = field(form, "completed_on")
        try:
            done = await api.post("planning", f"/v1/reviews/{review_id}/complete", user.token, body)
        except ServiceError as err:
            flash(request, err.message)
            return back_to("/reviews")
        flash(
            request,
            f"Review recorded. The next is due by {long_date(done['next_review']['due_on'])}.",
            "success",
        )
        return back_to("/reviews")

    async def finance_context(request: Request, user: SignedIn, api: Services) -> dict[str, Any]:
        batches, failed = await asyncio.gather(
            optional(api.get("payments", "/v1/exports/payments", user.token)),
            optional(
                api.get("payments", "/v1/payments", user.token, {"status": "failed", "limit": 200})
            ),
        )
        available, expected = await finance.features(request.app, api)
        return {
            "title": "Finance",
            "batches": (batches or {}).get("items", []),
            "may_read": batches is not None,
            "failed": None if failed is None else failed.get("items", []),
            "may_confirm": user.role in finance.CONFIRMATION_ROLES,
            "available": available,
            "expected": expected,
        }

    @app.get("/finance", response_class=HTMLResponse)
    async def finance_page(request: Request, user: Staff, api: Api) -> Response:
        return render(request, "finance.html", await finance_context(request, user, api))

    @app.post("/finance/confirmations")
    async def import_confirmations(request: Request, user: Staff, api: Api, form: Form) -> Response:
        content = await uploaded(request, form)
        if content is None:
            return back_to("/finance#confirmations")
        try:
            report = await api.upload_csv(
                "payments", "/v1/payments/confirmations", user.token, content
            )
        except ServiceError as err:
            flash(request, err.message)
            return back_to("/finance#confirmations")
        if not report.accepted:
            # Shown at once rather than after a redirect: every refused line may not fit
            # in the session cookie that carries messages across a redirect.
            context = await finance_context(request, user, api)
            return render(request, "finance.html", {**context, "report": report}, status_code=422)
        flash(
            request,
            f"Confirmation file imported: {report.lines} line(s); "
            f"{report.count('recorded_paid')} paid, {report.count('recorded_failed')} failed, "
            f"{report.count('unchanged')} already recorded.",
            "success",
        )
        return back_to("/finance")

    @app.post("/finance/exports")
    async def create_export(request: Request, user: Staff, api: Api, form: Form) -> Response:
        try:
            batch = await api.post(
                "payments", "/v1/exports/payments", user.token, {"up_to": field(form, "up_to")}
            )
        except ServiceError as err:
            flash(request, err.message)
            return back_to("/finance")
        flash(
            request,
            f"Export batch made: {batch['rows']} payment(s), "
            f"{money(batch['control_total_pence'])}.",
            "success",
        )
        return back_to("/finance")

    @app.post("/finance/release-due")
    async def release_due(request: Request, user: Staff, api: Api, form: Form) -> Response:
        try:
            result = await api.post(
                "payments", "/v1/payments/release-due", user.token, {"as_of": field(form, "as_of")}
            )
        except ServiceError as err:
            flash(request, err.message)
            return back_to("/finance")
        flash(
            request,
            f"Released {result['count']} payment(s), {money(result['total_pence'])} in all.",
            "success",
        )
        return back_to("/finance")

    @app.get("/finance/exports/{batch_id}.csv")
    async def export_csv(batch_id: str, user: Staff, api: Api) -> Response:
        upstream = await api.request(
            "payments", "GET", f"/v1/exports/payments/{batch_id}.csv", user.token
        )
        return Response(
            upstream.content,
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="payments-{batch_id}.csv"'},
        )

    def imports_context(user: SignedIn, quarter: str) -> dict[str, Any]:
        return {
            "title": "Imports and returns",
            "may_import": user.role in finance.PEOPLE_IMPORT_ROLES,
            "may_return": user.role in finance.CLD_ROLES,
            "quarters": finance.previous_quarters(_today(), 8),
            "quarter": quarter,
        }

    @app.get("/imports", response_class=HTMLResponse)
    async def imports_page(request: Request, user: Staff, api: Api, quarter: str = "") -> Response:
        context = imports_context(user, quarter or finance.quarter_of(_today()))
        if quarter and context["may_return"]:
            if not finance.QUARTER.match(quarter):
                flash(request, "Choose a quarter, like 2026-Q3.")
                return back_to("/imports")
            context["cld"] = await api.get(
                "audit", "/v1/returns/cld", user.token, {"quarter": quarter}
            )
        return render(request, "imports.html", context)

    @app.post("/imports/people")
    async def import_people(request: Request, user: Staff, api: Api, form: Form) -> Response:
        content = await uploaded(request, form)
        if content is None:
            return back_to("/imports#people")
        try:
            report = await api.upload_csv("assessment", "/v1/imports/people", user.token, content)
        except ServiceError as err:
            flash(request, err.message)
            return back_to("/imports#people")
        if not report.accepted:
            context = imports_context(user, finance.quarter_of(_today()))
            return render(request, "imports.html", {**context, "report": report}, status_code=422)
        flash(
            request,
            f"People imported: {report.lines} line(s); {report.count('imported')} new "
            f"(an assessment started for each), {report.count('already_imported')} "
            "imported before.",
            "success",
        )
        return back_to("/imports")

    @app.get("/returns/cld.csv")
    async def cld_csv(request: Request, user: Staff, api: Api, quarter: str = "") -> Response:
        if not finance.QUARTER.match(quarter):
            flash(request, "Choose a quarter, like 2026-Q3.")
            return back_to("/imports#cld")
        upstream = await api.request(
            "audit", "GET", "/v1/returns/cld.csv", user.token, params={"quarter": quarter}
        )
        extract = upstream.content.decode("utf-8")
        people = cld.people_in(extract)
        identities: dict[str, dict[str, Any]] = {}
        for start in range(0, len(people), cld.MAX_PEOPLE_PER_REQUEST):
            batch = people[start : start + cld.MAX_PEOPLE_PER_REQUEST]
            answer = await api.post(
                "assessment", "/v1/people/identities", user.token, {"person_ids": batch}
            )
            identities.update({item["person_id"]: item for item in answer["items"]})
        filled = cld.with_identities(extract, identities)
        return _download(filled.encode("utf-8"), f"cld-{quarter}.csv")

    @app.get("/returns/kpis.csv")
    async def kpis_csv(user: Staff, api: Api) -> Response:
        upstream = await api.request("audit", "GET", "/v1/returns/kpis.csv", user.token)
        return _download(upstream.content, f"kpis-{_today().isoformat()}.csv")

    @app.get("/performance", response_class=HTMLResponse)
    async def performance(request: Request, user: Staff, api: Api) -> Response:
        days = views.month_ends(_today(), PERFORMANCE_MONTHS)
        ni130, lancashire = await asyncio.gather(
            asyncio.gather(
                *(
                    api.get("audit", "/v1/kpis/ni130", user.token, {"by": "team", "as_of": d})
                    for d in days
                )
            ),
            asyncio.gather(
                *(
                    api.get("audit", "/v1/kpis/lancashire", user.token, {"by": "team", "as_of": d})
                    for d in days
                )
            ),
        )
        target = settings_of(request).target_for(user.council)
        measures = [
            views.measure("NI130: people with a personal budget", "ni130", days, ni130, target),
            views.measure(
                "Lancashire: budget known, plan paid, reviewed in a year",
                "lancashire",
                days,
                lancashire,
                target,
            ),
        ]
        charts = {
            m["key"]: line_chart(
                [
                    *(Series(team, pts, step=False) for team, pts in m["series"].items()),
                    Series(
                        f"Target ({target:g}%)",
                        [
                            (date.fromisoformat(days[0]), target),
                            (date.fromisoformat(days[-1]), target),
                        ],
                    ),
                ],
                chart_id=f"chart-{m['key']}",
                title=m["title"],
                description=f"Percentage of community-based people by team, month by month, "
                f"against the council's target of {target:g}%. The table below has the figures.",
                value_label=lambda v: f"{v:g}%",
                y_max=100,
            )
            for m in measures
        }
        return render(
            request,
            "performance.html",
            {
                "title": "Performance",
                "measures": measures,
                "charts": charts,
                "target": target,
                "days": days,
            },
        )

    # --- the person's own view -------------------------------------------------------------

    @app.get("/me", response_class=HTMLResponse)
    async def my_budget(request: Request, user: User, api: Api) -> Response:
        if not user.is_citizen or user.person_id is None:
            return back_to("/caseload")
        case = await views.load_case(api, user, user.person_id)
        return render(
            request,
            "me.html",
            {
                "title": "Your personal budget",
                "case": case,
                "chart": _budget_chart(case),
                "chart_rows": views.chart_table(case),
                "next_review": views.next_review(case),
            },
        )


async def uploaded(request: Request, form: FormData) -> bytes | None:
    """The chosen file's bytes; None (with the reason flashed) when there is none to send."""
    chosen = form.get("file")
    if not isinstance(chosen, UploadFile) or not chosen.filename:
        flash(request, "Choose a CSV file to upload.")
        return None
    content = await chosen.read(finance.MAX_UPLOAD_BYTES + 1)
    if not content.strip():
        flash(request, f"The file {chosen.filename} is empty.")
        return None
    if len(content) > finance.MAX_UPLOAD_BYTES:
        flash(request, f"The file {chosen.filename} is larger than 32 MB: split it.")
        return None
    return content


def _download(content: bytes, filename: str) -> Response:
    return Response(
        content,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


# --- helpers for the person page ---------------------------------------------------------------


def _budget_chart(case: views.Case) -> Any:
    points = views.chart_points(case)
    if not any(points.values()):
        return None
    last_due = max((d for d, _ in points["scheduled"]), default=_today())
    return line_chart(
        [
            Series("Budget (a year)", points["budget"]),
            Series("Plan cost (a year)", points["plan"]),
            Series("Paid so far", points["paid"], holds_until=_today()),
            Series("Payments due so far (the schedule)", points["scheduled"]),
        ],
        chart_id="budget-chart",
        title="Budget, plan cost and payments over time",
        description="The yearly budget, the yearly cost of the signed-off plan, the running "
        "total paid and the running total the payment schedule pays, by date. The table "
        "below has the same figures.",
        value_label=lambda v: money(round(v)),
        until=max(_today(), last_due),
    )


def _may_agree(policy: Policy | None, user: SignedIn, case: views.Case) -> bool:
    budget = case.budget
    if policy is None or budget is None or user.role not in PRACTITIONER_ROLES:
        return False
    return _can_agree(policy, user, budget["current_revision"])


def _can_agree(policy: Policy | None, user: SignedIn, budget: dict[str, Any]) -> bool:
    """`budget`: a budget summary or revision, each with its weekly amount and client group."""
    return (
        policy is not None
        and authority.may_agree_in_principle(
            policy, user.role, int(budget["weekly_pence"]), budget.get("client_group")
        ).allowed
    )


def _who_agrees(policy: Policy | None, budget: dict[str, Any]) -> dict[str, Any]:
    """A waiting budget with who may agree it and, where the panel sits separately, when."""
    if policy is None:
        return budget
    weekly = int(budget["weekly_pence"])
    return {
        **budget,
        "role_needed": authority.who_may_agree(policy, weekly, budget.get("client_group")),
        "panel_sitting": authority.panel_sitting(policy, weekly),
    }


def _sign_off_role(policy: Policy | None, case: views.Case) -> Role | None:
    if policy is None or case.plan is None:
        return None
    group = case.assessment.get("client_group") if case.assessment else None
    return authority.lowest_sign_off_role(policy, int(case.plan["costing"]["weekly_pence"]), group)


def _limits(policy: Policy | None, role: Role) -> dict[str, str]:
    if policy is None:
        return {}
    return {
        act.value: authority.limit_in_words(policy, act, role)
        for act in (authority.Act.AGREE_IN_PRINCIPLE, authority.Act.SIGN_OFF)
    }
