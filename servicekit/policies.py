"""Adopted policy versions: kept in each service's own database, added to its PolicyBook.

A council adopts a policy version through allocation (`POST /v1/policies`), which writes
a `PolicyAdopted` event carrying the whole document. Every service that computes with
policy keeps the versions it has seen in its `adopted_policies` table, written in the same
transaction as the inbox row, and loads them into its PolicyBook at start-up, so after a
restart it still knows every version the log taught it. From the effective date the book
hands the new version to new computations; a version already recorded on an event stays
resolvable by its identifier, so an audit can recompute any figure.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import sqlalchemy as sa
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from contracts.events import POLICY_SUBJECT_PREFIX, PolicyAdopted
from contracts.policy import Policy, PolicyBook, content_sha256, policy_document, problems_of
from servicekit import clock
from servicekit.errors import Conflict, Invalid, UnknownCouncil


class InvalidPolicyDocument(Invalid):
    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("policy: the document is not a valid policy: " + "; ".join(problems))


class VersionAdoptedWithOtherContent(Conflict):
    def __init__(self, policy_version: str, effective_from: date) -> None:
        super().__init__(
            f"policy {policy_version} was already adopted (in force from "
            f"{effective_from.isoformat()}) with different content; give the new document a "
            "new version"
        )


def policy_for(
    book: PolicyBook, council: str, *, version: str | None = None, on: date | None = None
) -> Policy:
    """The council's policy: the recorded `version` (e.g. ``lancashire/2024.1``) when it is
    the council's and still known, else the version in force `on` (today by the service's
    clock). A council with no policy at all is refused with `UnknownCouncil` (422)."""
    if version is not None and version.partition("/")[0] == council:
        try:
            return book.version(version)
        except KeyError:
            pass
    try:
        return book.current(council, on or clock.today())
    except KeyError as err:
        raise UnknownCouncil(council) from err


def policy_subject(council: str) -> str:
    """The subject of a council's policy events: its own chain, apart from every person."""
    return f"{POLICY_SUBJECT_PREFIX}{council}"


def parse_policy(document: dict[str, Any]) -> Policy:
    """Validate a policy document with the model the files are loaded with."""
    try:
        return Policy.model_validate(document)
    except ValidationError as err:
        raise InvalidPolicyDocument(problems_of(err)) from err


def adopted_policy(document: dict[str, Any], effective_from: date) -> Policy:
    """The policy a document describes, in force from the adoption's date."""
    return parse_policy({**document, "effective_from": effective_from.isoformat()})


def adoption_event(policy: Policy, *, adopted_by: str) -> PolicyAdopted:
    document = policy_document(policy)
    return PolicyAdopted(
        person_id=policy_subject(policy.council),
        council=policy.council,
        policy_version=policy.policy_version,
        version=policy.version,
        effective_from=policy.effective_from,
        policy=document,
        content_sha256=content_sha256(document),
        adopted_by=adopted_by,
    )


@dataclass(frozen=True)
class AdoptedRow:
    policy: Policy
    content_sha256: str
    adopted_by: str
    adopted_at: datetime


async def find_adoption(
    session: AsyncSession, table: sa.Table, council: str, version: str
) -> AdoptedRow | None:
    row = (
        await session.execute(
            sa.select(table).where(table.c.council == council, table.c.version == version)
        )
    ).first()
    return None if row is None else _row(row._mapping)


def _row(mapping: Any) -> AdoptedRow:
    return AdoptedRow(
        policy=adopted_policy(mapping["document"], mapping["effective_from"]),
        content_sha256=mapping["content_sha256"],
        adopted_by=mapping["adopted_by"],
        adopted_at=mapping["adopted_at"],
    )


async def record_adoption(
    session: AsyncSession, table: sa.Table, event: PolicyAdopted, event_id: str
) -> Policy | None:
    """Keep an adopted version; None when exactly this adoption is already kept."""
    policy = adopted_policy(event.policy, event.effective_from)
    known = await find_adoption(session, table, event.council, event.version)
    if known is not None:
        if known.content_sha256 == event.content_sha256:
            return None
        raise VersionAdoptedWithOtherContent(event.policy_version, known.policy.effective_from)
    await session.execute(
        table.insert().values(
            council=event.council,
            version=event.version,
            effective_from=event.effective_from,
            document=event.policy,
            content_sha256=event.content_sha256,
            adopted_by=event.adopted_by,
            event_id=event_id,
            adopted_at=datetime.now(UTC),
        )
    )
    return policy


async def adopted_rows(session: AsyncSession, table: sa.Table) -> list[AdoptedRow]:
    """Every adoption kept, in the order they were recorded (later adoptions win ties)."""
    rows = await session.execute(sa.select(table).order_by(table.c.adopted_at, table.c.version))
    return [_row(r._mapping) for r in rows]
