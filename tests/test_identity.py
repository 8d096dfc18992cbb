"""Who may call at all: tokens verified against the identity provider's key set, with key
rotation, and the development key refused anywhere but the embedded default.

The service here is the real assessment app in-process; the key set comes over real HTTP
from the local identity provider (pbj/idp.py) on a loopback port.
"""

from __future__ import annotations

import base64
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import jwt
import pydantic
import pytest

from contracts.vocabulary import Role
from pbj.idp import IDP_ISSUER, JwksServer, LocalIdentityProvider
from servicekit.auth import TokenVerifier, ensure_dev_keys, mint_token
from servicekit.errors import TokenExpired, Unauthenticated
from servicekit.testing import POLICIES_DIR, REPO_ROOT, Tokens, running
from services.assessment.api import create_app
from services.assessment.settings import Settings

QUESTIONNAIRE = "/v1/questionnaires/lancashire"


@pytest.fixture
def idp(tmp_path: Path) -> Iterator[JwksServer]:
    server = JwksServer(LocalIdentityProvider(tmp_path / "idp")).start()
    try:
        yield server
    finally:
        server.stop()


def settings_for(data_dir: Path, jwks_url: str, **overrides: float) -> Settings:
    return Settings(
        data_dir=data_dir,
        policies_dir=POLICIES_DIR,
        jwks_url=jwks_url,
        jwt_issuer=IDP_ISSUER,
        **overrides,  # type: ignore[arg-type]
    )


@pytest.fixture
async def client(tmp_path: Path, idp: JwksServer) -> AsyncIterator[httpx.AsyncClient]:
    settings = settings_for(
        tmp_path, idp.jwks_url, jwks_cache_seconds=0.5, jwks_refetch_cooldown_seconds=0
    )
    async with running(create_app(settings)) as client:
        yield client


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def care_manager(provider: LocalIdentityProvider, **options: int | str) -> dict[str, str]:
    return bearer(
        provider.mint(user_id="cm-1", role=Role.CARE_MANAGER, council="lancashire", **options)  # type: ignore[arg-type]
    )


async def test_a_token_from_a_newly_rotated_key_is_accepted_without_a_restart(
    client: httpx.AsyncClient, idp: JwksServer
) -> None:
    provider = idp.idp
    first = provider.ensure()
    assert (await client.get(QUESTIONNAIRE, headers=care_manager(provider))).status_code == 200

    second = provider.rotate()
    assert second != first
    signed_with_new_key = care_manager(provider)
    assert (await client.get(QUESTIONNAIRE, headers=signed_with_new_key)).status_code == 200
    # The old key stays in the set until retired: tokens already issued still work.
    old = care_manager(provider, kid=first)
    assert (await client.get(QUESTIONNAIRE, headers=old)).status_code == 200


async def test_a_token_signed_with_a_retired_key_is_refused_once_the_cache_expires(
    client: httpx.AsyncClient, idp: JwksServer
) -> None:
    provider = idp.idp
    first = provider.ensure()
    old = care_manager(provider, kid=first)
    assert (await client.get(QUESTIONNAIRE, headers=old)).status_code == 200

    provider.rotate(retire_others=True)
    time.sleep(0.6)  # the service's key set cache (0.5 s here; 300 s by default)
    refused = await client.get(QUESTIONNAIRE, headers=old)
    assert refused.status_code == 401
    assert "does not list" in refused.json()["detail"]
    assert (await client.get(QUESTIONNAIRE, headers=care_manager(provider))).status_code == 200


async def test_a_remembered_token_of_a_retired_key_is_refused_as_soon_as_the_set_is_refetched(
    tmp_path: Path, idp: JwksServer
) -> None:
    provider = idp.idp
    first = provider.ensure()
    settings = settings_for(
        tmp_path, idp.jwks_url, jwks_cache_seconds=300, jwks_refetch_cooldown_seconds=0
    )
    async with running(create_app(settings)) as client:
        old = care_manager(provider, kid=first)
        assert (await client.get(QUESTIONNAIRE, headers=old)).status_code == 200
        assert (await client.get(QUESTIONNAIRE, headers=old)).status_code == 200

        provider.rotate(retire_others=True)
        # A token under the new kid makes the service fetch the set again, long before
        # its 300 s cache would have expired; the old token was checked against the old set.
        assert (await client.get(QUESTIONNAIRE, headers=care_manager(provider))).status_code == 200
        refused = await client.get(QUESTIONNAIRE, headers=old)
        assert refused.status_code == 401
        assert "does not list" in refused.json()["detail"]


def test_a_verified_token_is_remembered_until_it_expires_and_a_refused_one_never(
    tmp_path: Path,
) -> None:
    private_path, public_path = ensure_dev_keys(tmp_path)
    verifier = TokenVerifier(public_path.read_bytes())
    private_key = private_path.read_bytes()
    # exp is whole seconds from a truncated now, so a 1 s token may have only a few
    # milliseconds left when minted; 3 s leaves room for a loaded machine.
    token = mint_token(
        private_key, user_id="cm-1", role=Role.CARE_MANAGER, council="lancashire", ttl_seconds=3
    )
    assert verifier.verified(token) is None
    actor = verifier.verify(token)
    assert verifier.verified(token) == actor

    expires_at = jwt.decode(token, options={"verify_signature": False})["exp"]
    time.sleep(max(0.0, expires_at - time.time()) + 0.1)
    assert verifier.verified(token) is None
    with pytest.raises(TokenExpired) as refused:
        verifier.verify(token)
    assert refused.value.status_code == 401 and "expired" in str(refused.value)

    other = mint_token(private_key, user_id="x", role=Role.CARE_MANAGER, council="lancashire")
    forged = other[:-4] + ("AAAA" if not other.endswith("AAAA") else "BBBB")  # a bad signature
    with pytest.raises(Unauthenticated):
        verifier.verify(forged)
    assert verifier.verified(forged) is None


async def test_expired_forged_unsigned_and_missing_tokens_are_refused_with_401(
    client: httpx.AsyncClient, idp: JwksServer, tmp_path: Path
) -> None:
    provider = idp.idp
    kid = provider.ensure()

    expired = care_manager(provider, ttl_seconds=-60)
    answer = await client.get(QUESTIONNAIRE, headers=expired)
    assert answer.status_code == 401 and "expired" in answer.json()["detail"]
    assert answer.json()["error"] == "TokenExpired"

    # Signed by a key the provider never issued, under the current key's kid.
    impostor = LocalIdentityProvider(tmp_path / "impostor")
    forged = mint_token(
        impostor.private_key(impostor.ensure()),
        user_id="cm-1",
        role=Role.CARE_MANAGER,
        council="lancashire",
        kid=kid,
        issuer=IDP_ISSUER,
    )
    answer = await client.get(QUESTIONNAIRE, headers=bearer(forged))
    assert answer.status_code == 401 and "signature does not match" in answer.json()["detail"]

    # The development key's tokens (no kid) mean nothing to a service on a JWKS URL.
    dev = Tokens(tmp_path / "dev").headers(Role.CARE_MANAGER)
    answer = await client.get(QUESTIONNAIRE, headers=dev)
    assert answer.status_code == 401 and "kid" in answer.json()["detail"]

    answer = await client.get(QUESTIONNAIRE)
    assert answer.status_code == 401
    assert answer.headers["WWW-Authenticate"] == "Bearer"

    answer = await client.get(QUESTIONNAIRE, headers=bearer("not.a.jwt"))
    assert answer.status_code == 401
    assert answer.json()["error"] == "Unauthenticated"


@pytest.mark.parametrize("garbage", ["not.a.jwt", "////.////.////", "eyJhbGciOiJSUzI1NiJ9.x.y"])
async def test_a_garbage_token_is_refused_in_words_without_the_decoders_message(
    client: httpx.AsyncClient, idp: JwksServer, garbage: str
) -> None:
    idp.idp.ensure()
    answer = await client.get(QUESTIONNAIRE, headers=bearer(garbage))
    assert answer.status_code == 401
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.json() == {
        "type": "urn:pb-journey:problem:Unauthenticated",
        "title": "Unauthorized",
        "status": 401,
        "detail": "the bearer token is not a valid signed token",
        "error": "Unauthenticated",
    }


async def test_a_flood_of_unknown_key_ids_fetches_the_key_set_at_most_once(
    tmp_path: Path, idp: JwksServer
) -> None:
    provider = idp.idp
    provider.ensure()
    settings = settings_for(tmp_path, idp.jwks_url, jwks_refetch_cooldown_seconds=60)
    async with running(create_app(settings)) as client:
        assert (await client.get(QUESTIONNAIRE, headers=care_manager(provider))).status_code == 200
        fetched = idp.requests_served
        impostor = LocalIdentityProvider(tmp_path / "impostor")
        for number in range(20):
            made_up = mint_token(
                impostor.private_key(impostor.ensure()),
                user_id="x",
                role=Role.CARE_MANAGER,
                council="lancashire",
                kid=f"unknown-{number}",
                issuer=IDP_ISSUER,
            )
            answer = await client.get(QUESTIONNAIRE, headers=bearer(made_up))
            assert answer.status_code == 401
        assert idp.requests_served - fetched <= 1


async def test_an_unreachable_key_set_answers_503_not_500(tmp_path: Path, idp: JwksServer) -> None:
    provider = idp.idp
    token = care_manager(provider)
    settings = settings_for(tmp_path, idp.jwks_url, jwks_cache_seconds=0.2)
    async with running(create_app(settings)) as client:
        assert (await client.get(QUESTIONNAIRE, headers=token)).status_code == 200
        idp.stop()
        time.sleep(0.3)
        answer = await client.get(QUESTIONNAIRE, headers=token)
        assert answer.status_code == 503
        assert "identity provider" in answer.json()["detail"]


@pytest.mark.parametrize(
    ("setting", "value", "named"),
    [
        ("event_log_url", "kafka://127.0.0.1:9092", "the event log is kafka"),
        ("database_url", "postgresql+asyncpg://pbj:pbj@127.0.0.1:5432/x", "database is postgresql"),
        ("environment", "production", "environment is production"),
    ],
)
def test_the_development_key_is_refused_outside_the_embedded_default(
    tmp_path: Path, setting: str, value: str, named: str
) -> None:
    with pytest.raises(pydantic.ValidationError) as refused:
        Settings(data_dir=tmp_path, **{setting: value})  # type: ignore[arg-type]
    assert "refusing to trust the development signing key" in str(refused.value)
    assert named in str(refused.value)
    # With the identity provider's key set the same settings are fine (production also
    # wants the master key that seals personal details: docs/privacy.md).
    master_key = base64.b64encode(bytes(32)).decode()
    Settings(
        data_dir=tmp_path,
        jwks_url="http://127.0.0.1:1/jwks.json",
        personal_data_master_key=master_key,
        **{setting: value},  # type: ignore[arg-type]
    )


def test_a_service_on_kafka_with_the_development_key_will_not_start(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "ASSESSMENT_DATA_DIR": str(tmp_path),
        "ASSESSMENT_EVENT_LOG_URL": "kafka://127.0.0.1:9092",
        "ASSESSMENT_POLICIES_DIR": str(POLICIES_DIR),
    }
    env.pop("ASSESSMENT_JWKS_URL", None)
    started = subprocess.run(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "services.assessment.api:create_app",
            "--factory",
            "--port",
            "0",
        ],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert started.returncode != 0
    assert b"refusing to trust the development signing key" in started.stderr


async def test_the_caller_of_a_state_change_is_recorded_on_its_event_and_in_the_audit_chain(
    tmp_path: Path,
) -> None:
    from servicekit.testing import deliver, outbox_events
    from services.audit.api import create_app as create_audit
    from services.audit.settings import Settings as AuditSettings

    tokens = Tokens(tmp_path)
    assessment = create_app(
        Settings(
            data_dir=tmp_path,
            database_url=f"sqlite+aiosqlite:///{tmp_path}/assessment.db",
            policies_dir=POLICIES_DIR,
        )
    )
    start = {
        "person_id": "p-1",
        "client_group": "older_people",
        "completed_by": "self",
        "team": "North",
        "key_worker_id": "kw-1",
        "age_band": "85+",
    }
    async with running(assessment) as client:
        headers = tokens.headers(Role.PERSON, person_id="p-1", user_id="mrs-k")
        assert (await client.post("/v1/assessments", json=start, headers=headers)).is_success
        (started,) = await outbox_events(assessment)
    assert started.actor == "person:mrs-k"

    audit = create_audit(AuditSettings(data_dir=tmp_path, policies_dir=POLICIES_DIR))
    async with running(audit) as client:
        await deliver(audit, started)
        history = await client.get("/v1/people/p-1/history", headers=tokens.headers(Role.AUDITOR))
        verified = await client.get("/v1/people/p-1/verify", headers=tokens.headers(Role.AUDITOR))
    assert history.json()["items"][0]["actor"] == "person:mrs-k"
    assert verified.json()["ok"] is True


# --- tokens that are well signed but must still be refused ----------------------------------

HOUR = 3600


def signed(provider: LocalIdentityProvider, **claims: object) -> dict[str, str]:
    """A token of the provider's current key with these claims over a good care manager's
    (a claim given as None is left out)."""
    kid = provider.ensure()
    now = int(time.time())
    body: dict[str, object] = {
        "iss": IDP_ISSUER,
        "aud": provider.audience,
        "sub": "cm-1",
        "role": "care_manager",
        "council": "lancashire",
        "iat": now,
        "exp": now + 8 * HOUR,
    }
    body.update(claims)
    body = {name: value for name, value in body.items() if value is not None}
    key = provider.private_key(kid)
    return bearer(jwt.encode(body, key, algorithm="RS256", headers={"kid": kid}))


NOW = int(time.time())


@pytest.mark.parametrize(
    ("claims", "reason"),
    [
        ({"council": "atlantis"}, "council this service does not serve"),
        ({"council": ""}, "no council"),
        ({"council": ["lancashire"]}, "no council"),
        ({"council": None}, "no council"),
        ({"role": "superuser"}, "no role this service knows"),
        ({"role": ["finance"]}, "no role this service knows"),
        ({"exp": 253402300799}, "lives longer than the 12 hours"),  # 9999-12-31
        ({"exp": str(NOW + HOUR)}, "must be numbers"),
        ({"iat": NOW - 20 * HOUR, "exp": NOW + HOUR}, "lives longer than the 12 hours"),
        ({"iat": NOW + 10 * 60}, "issued in the future"),
        ({"iat": None}, "no iat claim"),
        ({"nbf": NOW + 10 * 60}, "not valid yet"),
        ({"sub": ""}, "no user"),
    ],
    ids=[
        "unknown-council",
        "empty-council",
        "list-council",
        "no-council",
        "unknown-role",
        "list-role",
        "exp-in-9999",
        "exp-as-string",
        "lifetime-over-max",
        "iat-in-future",
        "no-iat",
        "nbf-in-future",
        "empty-sub",
    ],
)
async def test_a_well_signed_token_is_still_refused_when_its_claims_are_not_acceptable(
    client: httpx.AsyncClient, idp: JwksServer, claims: dict[str, object], reason: str
) -> None:
    answer = await client.get(QUESTIONNAIRE, headers=signed(idp.idp, **claims))
    assert answer.status_code == 401, answer.text
    assert answer.json()["error"] == "Unauthenticated"
    assert reason in answer.json()["detail"]


async def test_tokens_within_the_rules_are_accepted_up_to_the_clock_leeway(
    client: httpx.AsyncClient, idp: JwksServer
) -> None:
    now = int(time.time())
    for claims in (
        {},  # what the provider mints: 8 hours
        {"iat": now + 30},  # the provider's clock a little ahead
        {"nbf": now - 60},
        {"exp": now + 12 * HOUR},  # the longest allowed
        {"council": "council_c"},  # any council of the policy book
    ):
        answer = await client.get(
            f"/v1/questionnaires/{claims.get('council', 'lancashire')}",
            headers=signed(idp.idp, **claims),
        )
        assert answer.status_code == 200, (claims, answer.text)


async def test_pbj_token_and_the_local_provider_mint_tokens_the_services_accept(
    client: httpx.AsyncClient, idp: JwksServer, tmp_path: Path
) -> None:
    answer = await client.get(QUESTIONNAIRE, headers=care_manager(idp.idp))
    assert answer.status_code == 200
    dev_key = tmp_path / "dev"
    private_path, public_path = ensure_dev_keys(dev_key)
    verifier = TokenVerifier(public_path.read_bytes(), councils=frozenset({"lancashire"}))
    token = mint_token(
        private_path.read_bytes(), user_id="u", role=Role.FINANCE, council="lancashire"
    )
    assert verifier.verify(token).council == "lancashire"
