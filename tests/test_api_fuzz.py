"""Property-based API tests: Schemathesis drives every operation of the five services.

Each service is built in-process (ASGI, no network) on a fresh data directory and started
with its lifespan (migrations, relay, consumers). Its OpenAPI document is read from the
app itself, a few records are seeded (through its API and the events it consumes), and
every operation gets a bounded number of generated requests: valid ones, invalid ones,
valid ones aimed at the seeded records (so the deeper rules run too), and sweeps that
push each field of such a request, one at a time, to an edge (2^63, year 9999, ...).
Every request carries a staff token of the council "lancashire"; each service runs with
the role that owns its decisions, two with a second role. Every answer must not be a 5xx,
must match the schema the operation declares, and must not come from servicekit's last
guard against values the database cannot hold (architecture.md §8: bad input gets a
clear error, never a 500). The examples are fixed (derandomized), so a failure repeats;
PBJ_FUZZ_EXAMPLES=300 runs more of them per operation.

How Schemathesis is driven (4.x Python API): `openapi.from_dict` on the app's own
document, `APIOperation.as_strategy` under Hypothesis's `@given`, and
`Case.call_and_validate` through a `requests` session whose adapter hands each request
to the app through httpx's ASGI transport on the event loop the app runs on. That loop
(an anyio blocking portal) also runs the seeding, which must share the app's database
engine. Schemathesis's own pytest loader for apps built in a fixture
(`schemathesis.pytest.from_fixture`) does not run on pytest 9.2 (it sets
`Node._nodeid`), and its eager `schema.parametrize()` would build the apps at import.
"""

from __future__ import annotations

import importlib
import io
import os
import re
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import anyio.from_thread
import httpx
import hypothesis
import pytest
import requests
import requests.adapters
import schemathesis
import urllib3
from fastapi import FastAPI
from hypothesis import HealthCheck, given
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from contracts import events as ev
from contracts.vocabulary import AgeBand, ClientGroup, CompletedBy, Role
from servicekit import clock
from servicekit.testing import POLICIES_DIR, Tokens, deliver, running

BASE_URL = "http://testserver"
COUNCIL = "lancashire"
LANCASHIRE_DOMAINS = (
    "staying_safe",
    "communication",
    "work_leisure_learning",
    "essential_living_tasks",
    "personal_care",
    "health",
)
SEED = 20240601
# Examples per operation; PBJ_FUZZ_EXAMPLES=300 digs deeper locally (the suite keeps 20).
MAX_EXAMPLES = int(os.environ.get("PBJ_FUZZ_EXAMPLES", "20"))


@schemathesis.check
def bounded_by_the_request_model(ctx: Any, response: Any, case: Any) -> bool | None:
    """servicekit's last guard (422 ValueOutOfRange: a number or date the database or the
    calendar cannot hold) must never be what answers: the request model refuses such a
    value first, naming the field. If it answers, a field is missing its bound."""
    if response.status_code == 422 and b'"ValueOutOfRange"' in response.content:
        raise AssertionError(
            "a value out of range got past the request model to the database or the "
            f"date arithmetic: bound the field it came in ({response.content[:300]!r})"
        )
    return None


CHECKS = [not_a_server_error, response_schema_conformance, bounded_by_the_request_model]

FUZZ_SETTINGS = hypothesis.settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    derandomize=True,  # the same examples every run: a failure here is reproducible
    database=None,
    suppress_health_check=list(HealthCheck),
    print_blob=False,
)


# --- the app on a loop of its own -----------------------------------------------------------


class InProcessAdapter(requests.adapters.HTTPAdapter):
    """Sends each prepared request to the app through httpx's ASGI transport, no socket."""

    def __init__(self, portal: anyio.from_thread.BlockingPortal, client: httpx.AsyncClient):
        super().__init__()
        self._portal = portal
        self._client = client

    def send(self, request: requests.PreparedRequest, *args: Any, **kwargs: Any) -> Any:
        body = request.body
        content = body.encode() if isinstance(body, str) else (body or b"")
        headers = [(k.encode("latin-1"), _latin1(v)) for k, v in request.headers.items()]
        call = partial(
            self._client.request,
            request.method or "GET",
            request.url or "/",
            headers=headers,
            content=content,
        )
        answer: httpx.Response = self._portal.call(call)
        raw = urllib3.HTTPResponse(
            body=io.BytesIO(answer.content),
            headers=list(answer.headers.multi_items()),
            status=answer.status_code,
            reason=answer.reason_phrase,
            preload_content=False,
            decode_content=False,
            version=11,
        )
        return self.build_response(request, raw)


def _latin1(value: str | bytes) -> bytes:
    if isinstance(value, bytes):
        return value
    try:
        return value.encode("latin-1")
    except UnicodeEncodeError:
        return value.encode("utf-8")


@dataclass
class Harness:
    name: str
    app: FastAPI
    client: httpx.AsyncClient
    tokens: Tokens
    portal: anyio.from_thread.BlockingPortal
    ids: dict[str, list[str]] = field(default_factory=dict)

    def as_(self, role: Role, **extra: Any) -> dict[str, str]:
        return self.tokens.headers(role, COUNCIL, **extra)

    async def ok(self, method: str, url: str, role: Role, **kwargs: Any) -> Any:
        r = await self.client.request(method, url, headers=self.as_(role), **kwargs)
        assert r.status_code < 300, f"seeding {method} {url}: {r.status_code} {r.text}"
        return r.json()


# --- seeds: a few records per service, so generated requests reach the deeper rules ----------


def _validated(person_id: str) -> ev.AssessmentValidated:
    return ev.AssessmentValidated(
        person_id=person_id,
        council=COUNCIL,
        assessment_id=uuid.uuid4(),
        client_group=ClientGroup.LEARNING_DISABILITY,
        completed_by=CompletedBy.SUPPORTED,
        team="North",
        key_worker_id="kw-1",
        age_band=AgeBand.AGE_18_64,
        community_based=True,
        domain_levels=dict.fromkeys(LANCASHIRE_DOMAINS, 2),
        adjustments=[],
        significant_informal_support=False,
        needs_24_7=False,
        carer_support_weekly_pence=0,
        other_funding=[],
        outcomes=["Live in my own flat"],
        risks=[],
        validated_by="care_manager:cm-1",
        policy_version=f"{COUNCIL}/2009.1",
    )


async def seed_assessment(h: Harness) -> None:
    questionnaire = await h.ok("GET", f"/v1/questionnaires/{COUNCIL}", Role.CARE_MANAGER)
    domains = {d["key"]: d["levels"][0]["level"] for d in questionnaire["domains"]}
    ids = []
    for n in range(3):
        start = {
            "person_id": f"p-{n}",
            "client_group": "learning_disability",
            "completed_by": "supported",
            "team": "North",
            "key_worker_id": "kw-1",
            "age_band": "18-64",
        }
        a = await h.ok("POST", "/v1/assessments", Role.CARE_MANAGER, json=start)
        url = f"/v1/assessments/{a['assessment_id']}"
        answers = {"domains": domains, "significant_informal_support": False, "needs_24_7": False}
        if n >= 1:
            await h.ok("PUT", f"{url}/answers", Role.CARE_MANAGER, json=answers)
        if n >= 2:
            await h.ok("POST", f"{url}/submit", Role.CARE_MANAGER)
        ids.append(a["assessment_id"])
    h.ids = {"assessment_id": ids, "council": [COUNCIL]}


async def seed_allocation(h: Harness) -> None:
    for n in range(2):
        await deliver(h.app, _validated(f"p-{n}"))
    page = await h.ok("GET", "/v1/budgets", Role.CARE_MANAGER)
    ids = [b["budget_id"] for b in page["items"]]
    await h.ok("POST", f"/v1/budgets/{ids[0]}/agree", Role.TEAM_MANAGER, json={})
    h.ids = {"budget_id": ids}


def _plan(person_id: str, budget_id: uuid.UUID) -> dict[str, Any]:
    line = {
        "description": "Personal assistant, mornings",
        "provider_kind": "personal_assistant",
        "frequency": "weekly",
        "amount_pence": 20_000,
        "domains": ["personal_care"],
    }
    return {"person_id": person_id, "budget_id": str(budget_id), "lines": [line]}


async def seed_planning(h: Harness) -> None:
    plans = []
    for n in range(3):
        assessment = _validated(f"p-{n}")
        await deliver(h.app, assessment)
        budget_id = uuid.uuid4()
        await deliver(
            h.app,
            ev.BudgetIssued(
                person_id=assessment.person_id,
                council=COUNCIL,
                budget_id=budget_id,
                assessment_id=assessment.assessment_id,
                client_group=assessment.client_group,
                stage=ev.BudgetStage.INDICATIVE,
                revision=1,
                points=40,
                scale=ev.Scale.STANDARD,
                weekly_pence=25_000,
                annual_pence=25_000 * 52,
                ceiling_weekly_pence=None,
                ceiling_exception=False,
                explanation=[],
                agreed_by="team_manager:tm-1",
                agreed_by_role=Role.TEAM_MANAGER,
                policy_version=assessment.policy_version,
            ),
        )
        plan = await h.ok("POST", "/v1/plans", Role.CARE_MANAGER, json=_plan(f"p-{n}", budget_id))
        url = f"/v1/plans/{plan['plan_id']}"
        if n >= 1:
            await h.ok("POST", f"{url}/submit", Role.CARE_MANAGER, json={})
        if n >= 2:
            await h.ok("POST", f"{url}/sign-off", Role.TEAM_MANAGER, json={"on": "2010-05-03"})
        plans.append(plan["plan_id"])
    reviews = await h.ok("GET", "/v1/reviews", Role.CARE_MANAGER)
    h.ids = {"plan_id": plans, "review_id": [r["review_id"] for r in reviews["items"]]}


async def seed_payments(h: Harness) -> None:
    start = clock.today()  # payments pays nothing before it is due by its own clock
    deployments = []
    for n in range(3):
        await deliver(
            h.app,
            ev.PlanSignedOff(
                person_id=f"p-{n}",
                council=COUNCIL,
                plan_id=uuid.uuid4(),
                budget_id=uuid.uuid4(),
                assessment_id=uuid.uuid4(),
                plan_version=1,
                weekly_pence=20_000,
                annual_pence=20_000 * 52,
                one_off_pence=0,
                contingency_weekly_pence=0,
                lines=[],
                request_for_more=False,
                signed_off_by="tm-1",
                signed_off_by_role=Role.TEAM_MANAGER,
                first_review_on=start,  # signed off 42 days before it
                policy_version=f"{COUNCIL}/2010.1",
            ),
        )
    page = await h.ok("GET", "/v1/deployments", Role.FINANCE)
    deployments = [d["deployment_id"] for d in page["items"]]
    arrangement = {
        "parts": [{"option": "direct_payment"}],
        "frequency": "weekly",
        "first_due_on": start.isoformat(),
        "assessed_max_weekly_contribution_pence": 0,
    }
    for n, deployment_id in enumerate(deployments[1:], start=1):
        url = f"/v1/deployments/{deployment_id}"
        await h.ok("PUT", f"{url}/arrangement", Role.CARE_MANAGER, json=arrangement)
        if n >= 2:
            signed = {"signed_on": start.isoformat()}
            await h.ok("POST", f"{url}/agreement", Role.CARE_MANAGER, json=signed)
    as_of = {"as_of": start.isoformat()}
    await h.ok("POST", "/v1/payments/release-due", Role.FINANCE, json=as_of)
    up_to = {"up_to": start.isoformat()}
    batch = await h.ok("POST", "/v1/exports/payments", Role.FINANCE, json=up_to)
    card_file = (
        "account_reference,person_id,row_type,transaction_id,posted_on,amount_pence,"
        f"merchant_category\nPPC-2,p-2,transaction,TX-2,{start},-1500,groceries\n"
        f"PPC-2,p-2,balance,,{start},90000,\n"
    )
    imported = await h.client.post(
        "/v1/card-accounts/transactions",
        headers={**h.as_(Role.FINANCE), "Content-Type": "text/csv"},
        content=card_file.encode(),
    )
    assert imported.status_code == 200, imported.text
    accounts = await h.ok("GET", "/v1/card-accounts", Role.FINANCE)
    account_id = accounts["items"][0]["account_id"]
    notice = {"amount_pence": 100, "reason": "Money built up beyond the plan"}
    noticed = await h.ok(
        "POST", f"/v1/card-accounts/{account_id}/recoup-notices", Role.FINANCE, json=notice
    )
    h.ids = {
        "deployment_id": deployments,
        "batch_id": [batch["batch_id"]],
        "account_id": [account_id],
        "notice_id": [noticed["notices"][0]["notice_id"]],
    }


async def seed_audit(h: Harness) -> None:
    from services.audit.tests.journey import Journey

    for person_id in ("p-0", "p-1"):
        for envelope in Journey(person_id).full():
            await deliver(h.app, envelope)
    replay = await h.ok("POST", "/v1/replay", Role.OPERATIONS, json={})
    h.ids = {"person_id": ["p-0", "p-1"], "replay_id": [replay["replay_id"]]}


SEEDS: dict[str, Callable[[Harness], Awaitable[None]]] = {
    "assessment": seed_assessment,
    "allocation": seed_allocation,
    "planning": seed_planning,
    "payments": seed_payments,
    "audit": seed_audit,
}

# (service, role): the role that owns each service's decisions, so requests get past the
# role check into the deeper rules; a second role where another one owns other routes.
RUNS = [
    ("assessment", Role.CARE_MANAGER),
    ("allocation", Role.TEAM_MANAGER),
    ("allocation", Role.OPERATIONS),
    ("planning", Role.CARE_MANAGER),
    ("planning", Role.TEAM_MANAGER),
    ("payments", Role.FINANCE),
    ("payments", Role.CARE_MANAGER),
    ("audit", Role.AUDITOR),
    ("audit", Role.OPERATIONS),
]


@dataclass
class Target:
    harness: Harness
    schema: Any
    session: requests.Session
    headers: dict[str, str]


@pytest.fixture(params=RUNS, ids=[f"{s}-{r.value}" for s, r in RUNS])
def target(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Target]:
    name, role = request.param
    tokens = Tokens(tmp_path)  # first, so the signing key exists at start-up
    api = importlib.import_module(f"services.{name}.api")
    settings = importlib.import_module(f"services.{name}.settings")
    app = api.create_app(settings.Settings(data_dir=tmp_path, policies_dir=POLICIES_DIR))
    with (
        anyio.from_thread.start_blocking_portal() as portal,
        portal.wrap_async_context_manager(running(app)) as client,
    ):
        harness = Harness(name, app, client, tokens, portal)
        portal.call(SEEDS[name], harness)
        document = portal.call(client.get, "/openapi.json").json()
        config = schemathesis.Config.from_dict(
            {"seed": SEED, "generation": {"with-security-parameters": False}}
        )
        schema = schemathesis.openapi.from_dict(document, config=config)
        with requests.Session() as session:
            session.mount("http://", InProcessAdapter(portal, client))
            yield Target(harness, schema, session, tokens.headers(role, COUNCIL))


# Values at the edges of what a type can hold: Hypothesis reaches them only now and then, so
# one field of a valid request is pushed to one of them on purpose (as a coverage phase would).
EDGES: dict[str, list[Any]] = {
    "integer": [-1, 0, 2**31, 2**53 + 1, 2**63 - 1, 2**63, 10**20],
    "date": ["0001-01-01", "9999-12-31"],
    "date-time": [
        "0001-01-01T00:00:00+05:00",
        "9999-12-31T23:59:59-05:00",
        "9999-12-31T23:59:59",
    ],
    "string": ["", " ", "x" * 5000, "\u0000", "𝔘𝔫𝔦𝔠𝔬𝔡𝔢 ✓"],
}
DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
DATE_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T")


def _kind_of_value(value: Any) -> str | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return "integer"
    if isinstance(value, str):
        return "date" if DATE.match(value) else "date-time" if DATE_TIME.match(value) else "string"
    return None


def _kind_of_schema(schema: dict[str, Any]) -> str | None:
    for option in [schema, *schema.get("anyOf", [])]:
        if option.get("format") in ("date", "date-time"):
            return str(option["format"])
        if option.get("type") in ("integer", "string"):
            return str(option["type"])
    return None


def _leaves(value: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[tuple[Any, ...], str]]:
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _leaves(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _leaves(item, (*path, index))
    elif path and (kind := _kind_of_value(value)) is not None:
        yield path, kind


def _replaced(value: Any, path: tuple[Any, ...], new: Any) -> Any:
    if not path:
        return new
    copy = dict(value) if isinstance(value, dict) else list(value)
    copy[path[0]] = _replaced(copy[path[0]], path[1:], new) if path[1:] else new
    return copy


def _body_kinds(operation: Any) -> dict[str, str]:
    """The top-level fields of a JSON body and their kinds, optional ones included."""
    kinds: dict[str, str] = {}
    for body in operation.body:
        schema = getattr(body, "resolved_schema", None) or {}
        for name, definition in schema.get("properties", {}).items():
            if (kind := _kind_of_schema(definition)) is not None:
                kinds[name] = kind
    return kinds


def _edge_sweep(operation: Any, cases: Any) -> Any:
    """One valid case, then one request per body field and query parameter with that one
    set to an edge value (a field the case left out, an optional one, is added with it)."""
    query_kinds = {
        p.name: kind
        for p in operation.query
        if (kind := _kind_of_schema(p.definition.get("schema", {}))) is not None
    }
    body_kinds = _body_kinds(operation)

    @st.composite
    def sweep(draw: st.DrawFn) -> list[Any]:
        case = draw(cases)
        targets: list[tuple[str, Any, str]] = [
            ("body", path, kind) for path, kind in _leaves(case.body)
        ] + [("query", name, kind) for name, kind in query_kinds.items()]
        if isinstance(case.body, dict):
            targets += [
                ("body", (name,), kind)
                for name, kind in body_kinds.items()
                if name not in case.body
            ]
        pushed = []
        for where, target, kind in targets:
            edge = draw(st.sampled_from(EDGES[kind]))
            body, query = case.body, dict(case.query or {})
            if where == "body":
                body = _replaced(body, target, edge)
            else:
                query[target] = edge
            pushed.append(
                operation.Case(
                    path_parameters=dict(case.path_parameters or {}),
                    headers=dict(case.headers or {}),
                    query=query,
                    body=body,
                    media_type=case.media_type,
                )
            )
        return pushed

    return sweep()


def _strategies(operation: Any, ids: dict[str, list[str]]) -> Any:
    """Lists of requests: one valid, one invalid, one valid aimed at a seeded record, or
    a sweep pushing each field of a valid one aimed at a seeded record to an edge."""
    positive = [operation.as_strategy(GenerationMode.POSITIVE)]
    names = [p.name for p in operation.path_parameters]
    if names and all(n in ids for n in names):
        positive = [
            operation.as_strategy(
                GenerationMode.POSITIVE,
                path_parameters={n: ids[n][index % len(ids[n])] for n in names},
            )
            for index in range(max(len(ids[n]) for n in names))
        ]
    single = st.one_of(
        operation.as_strategy(GenerationMode.POSITIVE),
        operation.as_strategy(GenerationMode.NEGATIVE),
        *positive,
    )
    return st.one_of(single.map(lambda case: [case]), _edge_sweep(operation, st.one_of(positive)))


def _fuzz(target: Target, operation: Any) -> None:
    @FUZZ_SETTINGS
    @given(cases=_strategies(operation, target.harness.ids))
    def run(cases: list[schemathesis.Case]) -> None:
        for case in cases:
            case.call_and_validate(
                base_url=BASE_URL, session=target.session, headers=target.headers, checks=CHECKS
            )

    run()


# The app runs on a thread of its own (above), and OpenTelemetry's id generator draws its
# trace and span ids from the global `random` module there, for requests and for events its
# consumers apply in the background. Hypothesis, generating in this thread, sees the global
# random state move under a draw and warns that a strategy used `random`; none does, and the
# examples stay fixed by `derandomize`.
@pytest.mark.filterwarnings("ignore:Do not use the `random` module inside strategies")
def test_every_operation_survives_generated_requests(
    target: Target, subtests: pytest.Subtests
) -> None:
    operations = [result.ok() for result in target.schema.get_all_operations()]
    assert len(operations) > 3, f"{target.harness.name} documents too few operations"
    for operation in operations:
        with subtests.test(operation=operation.label):
            _fuzz(target, operation)


# --- JSON that Python reads but no service may take -----------------------------------------

# Each body as sent on the wire: Python's JSON reader takes them all, and each once made every
# service answer 500, as the 422 that echoed the input could not itself be written as JSON.
BAD_JSON = [
    (b'{"as_of": NaN}', "InvalidJson", "body.as_of"),
    (b'{"as_of": Infinity}', "InvalidJson", "body.as_of"),
    (b'{"rows": [{"amount_pence": -Infinity}]}', "InvalidJson", "body.rows.0.amount_pence"),
    (b'{"person_id": "\\ud800"}', "InvalidJson", "body.person_id"),
    (b'{"note": "a\\udc00b"}', "InvalidJson", "body.note"),
    (b'{"person_id": "\\u0000"}', "ControlCharacter", "body.person_id"),
    (
        b'{"lines": [{"description": "red \\u001b[31m"}]}',
        "ControlCharacter",
        "body.lines.0.description",
    ),
    (b'{"reason": "bell\\u0007"}', "ControlCharacter", "body.reason"),
    (b'{"bad\\u0000key": 1}', "ControlCharacter", "body.bad?key"),
    (b'{"note": "raw \x07 bell"}', "InvalidJson", "body"),  # not JSON at all
]


def _json_operations(document: dict[str, Any]) -> list[tuple[str, str]]:
    """Every operation of a service that takes a JSON body, its path's parameters filled."""
    found = []
    for path, item in document["paths"].items():
        for method, operation in item.items():
            content = operation.get("requestBody", {}).get("content", {})
            if "application/json" in content:
                found.append((method.upper(), re.sub(r"\{[^}]+\}", "p-1", path)))
    return found


@pytest.mark.parametrize("name", list(SEEDS))
async def test_nan_infinity_lone_surrogates_and_control_characters_are_a_422_on_every_route(
    name: str, tmp_path: Path
) -> None:
    tokens = Tokens(tmp_path)
    api = importlib.import_module(f"services.{name}.api")
    settings = importlib.import_module(f"services.{name}.settings")
    app = api.create_app(settings.Settings(data_dir=tmp_path, policies_dir=POLICIES_DIR))
    headers = {**tokens.headers(Role.OPERATIONS, COUNCIL), "Content-Type": "application/json"}
    async with running(app) as client:
        operations = _json_operations((await client.get("/openapi.json")).json())
        assert operations, f"{name} takes no JSON body"
        for method, path in operations:
            for body, error, field in BAD_JSON:
                r = await client.request(method, path, content=body, headers=headers)
                label = f"{method} {path} {body!r}"
                assert r.status_code == 422, (label, r.text)
                assert r.headers["content-type"] == "application/problem+json", label
                problem = r.json()
                assert problem["error"] == error, label
                assert [e["field"] for e in problem["errors"]] == [field], label
                assert "\\ud800" not in r.text and "\\u0000" not in r.text, label


async def test_a_well_formed_body_with_escapes_and_line_breaks_still_goes_through(
    tmp_path: Path,
) -> None:
    # The careful reading runs only for bodies holding an escape; it must refuse nothing else.
    tokens = Tokens(tmp_path)
    api = importlib.import_module("services.assessment.api")
    settings = importlib.import_module("services.assessment.settings")
    app = api.create_app(settings.Settings(data_dir=tmp_path, policies_dir=POLICIES_DIR))
    body = (
        b'{"person_id": "p-1", "client_group": "learning_disability", "completed_by": '
        b'"supported", "team": "North \\u00e9\\t\\n", "key_worker_id": "kw-1", '
        b'"age_band": "18-64"}'
    )
    headers = {**tokens.headers(Role.CARE_MANAGER, COUNCIL), "Content-Type": "application/json"}
    async with running(app) as client:
        r = await client.post("/v1/assessments", content=body, headers=headers)
    assert r.status_code == 201, r.text
