"""Bulk conversion: many rows through a service's ordinary use cases, one transaction a batch.

A council moving onto PB Journey converts its existing clients: tens of thousands of
people, each through the same steps (and so the same events, the same calculation and
the same approval rules) as a person walked through one call at a time. Each service's
`POST /v1/conversions/...` route hands its rows to `convert_valid_rows`, which

- looks each row's reference up in the idempotency table: a row converted before comes
  back as it was (`already_done`), so re-running a whole file changes nothing; the same
  reference with different content is refused;
- applies the rest with the service's own use cases inside one unit-of-work batch
  (servicekit.uow), so their state, their outbox events and their idempotency rows
  commit together, once;
- when a row is refused by a rule (a DomainError, or a row that is not valid), records
  the reason, rolls the whole batch back and applies it again without that row: a bad
  row is never half-written and never takes the good ones with it;
- leaves a row whose inputs have not arrived yet through the log (`Pending`) unwritten,
  for the caller to send again shortly.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Annotated, Any, Literal, TypeVar

import sqlalchemy as sa
from fastapi import HTTPException
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from servicekit.db import one_of
from servicekit.errors import DomainError, Invalid
from servicekit.problems import in_words
from servicekit.runtime import ServiceRuntime
from servicekit.uow import UnitOfWork

RowModel = TypeVar("RowModel", bound=BaseModel)

MAX_ROWS = 500
"""Rows per request: a batch commits in well under a second on either engine."""

Outcome = Literal["done", "already_done", "pending", "rejected"]


ConversionRef = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,119}$")]
"""The legacy system's reference for the row: what makes a re-run idempotent."""


class ConversionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rows: list[dict[str, Any]] = Field(
        min_length=1,
        max_length=MAX_ROWS,
        description=(
            "The rows to convert. Each row is validated on its own (see the route's "
            "description for its fields): a row that does not validate is rejected with "
            "the field and the reason, and the others still go through."
        ),
    )


class TooManyRows(Invalid):
    pass


class DuplicateRowRef(Invalid):
    pass


class Pending(Exception):
    """The row depends on an event from another service that has not been applied yet."""


class RowResult(BaseModel):
    ref: str = Field(description="The row's reference, as sent.")
    outcome: Outcome = Field(
        description=(
            "done: converted now; already_done: converted by an earlier request (the same "
            "result again); pending: waiting for an event from another service, send it "
            "again shortly; rejected: refused, nothing written (see status and detail)."
        )
    )
    status: int = Field(description="The HTTP status this row alone would have had.")
    detail: str | None = Field(None, description="Why a row was rejected or is pending.")
    result: dict[str, Any] = Field(default_factory=dict)


class ConversionOut(BaseModel):
    done: int
    already_done: int
    pending: int
    rejected: int
    rows: list[RowResult]


@dataclass
class Row:
    """One row to convert: its reference, its content's fingerprint and what to do."""

    ref: str
    content: Any
    apply: Callable[[Any], Awaitable[dict[str, Any]]]
    fingerprint: str = field(init=False)

    def __post_init__(self) -> None:
        text = json.dumps(self.content, sort_keys=True, default=str)
        self.fingerprint = hashlib.sha256(text.encode("utf-8")).hexdigest()


def _reason(err: BaseException) -> tuple[int, str]:
    if isinstance(err, DomainError):
        return err.status_code, str(err)
    if isinstance(err, HTTPException):
        return err.status_code, str(err.detail)
    return 422, str(err)


BatchStep = Callable[[Any, Sequence[Row]], Awaitable[None]]
"""A conversion's own step around its rows, inside the batch's transaction: `prepare`
before the first row (to read what all the rows need with one query a table), `finish`
after the last one (to write what the rows decided with one statement a table)."""


async def convert_rows(
    runtime: ServiceRuntime[Any],
    *,
    scope: str,
    rows: Sequence[Row],
    prepare: BatchStep | None = None,
    finish: BatchStep | None = None,
) -> ConversionOut:
    """Apply each row once, all-or-nothing per row, in one transaction (see module doc).

    With `prepare` and `finish` a conversion reads and writes its rows as a set; they run
    again with each attempt, over the rows still to apply."""
    if len(rows) > MAX_ROWS:
        raise TooManyRows(f"rows: at most {MAX_ROWS} rows per request")
    refs = [row.ref for row in rows]
    if len(set(refs)) != len(refs):
        raise DuplicateRowRef("rows: each row's ref must be unique within a request")
    table: sa.Table = runtime.idempotency
    results: dict[str, RowResult] = {}
    async with runtime.database.sessions() as session:
        earlier = (
            await session.execute(
                sa.select(table.c.key, table.c.request_hash, table.c.body).where(
                    table.c.scope == scope, one_of(table.c.key, refs)
                )
            )
        ).all()
    for key, request_hash, body in earlier:
        row = next(r for r in rows if r.ref == key)
        if request_hash == row.fingerprint:
            results[key] = RowResult(
                ref=key, outcome="already_done", status=200, result=json.loads(body)
            )
        else:
            results[key] = RowResult(
                ref=key,
                outcome="rejected",
                status=409,
                detail="this ref was converted earlier with different content",
            )
    todo = [row for row in rows if row.ref not in results]
    while todo:
        done: dict[str, dict[str, Any]] = {}
        uow: UnitOfWork = runtime.uow()
        failed: tuple[Row, BaseException] | None = None
        try:
            async with uow.batch():
                if prepare is not None:
                    await prepare(uow, todo)
                for row in todo:
                    try:
                        done[row.ref] = await row.apply(uow)
                    except Pending as err:
                        results[row.ref] = RowResult(
                            ref=row.ref, outcome="pending", status=409, detail=str(err)
                        )
                        continue
                    except (DomainError, HTTPException) as err:
                        failed = (row, err)
                        raise
                if finish is not None:
                    await finish(uow, [row for row in todo if row.ref in done])
                now = datetime.now(UTC)
                if done:
                    await uow.session.execute(
                        table.insert(),
                        [
                            {
                                "scope": scope,
                                "key": row.ref,
                                "request_hash": row.fingerprint,
                                "status_code": 200,
                                "body": json.dumps(done[row.ref], default=str).encode(),
                                "created_at": now,
                            }
                            for row in todo
                            if row.ref in done
                        ],
                    )
        except (DomainError, HTTPException):
            assert failed is not None
            bad, refusal = failed
            status, detail = _reason(refusal)
            results[bad.ref] = RowResult(
                ref=bad.ref, outcome="rejected", status=status, detail=detail
            )
            # Everything else in the batch was rolled back with it: apply again without it.
            todo = [row for row in todo if row.ref != bad.ref]
            for row in todo:
                results.pop(row.ref, None)
            continue
        for ref, result in done.items():
            results[ref] = RowResult(ref=ref, outcome="done", status=200, result=result)
        break
    ordered = [results[row.ref] for row in rows]
    return ConversionOut(
        done=sum(r.outcome == "done" for r in ordered),
        already_done=sum(r.outcome == "already_done" for r in ordered),
        pending=sum(r.outcome == "pending" for r in ordered),
        rejected=sum(r.outcome == "rejected" for r in ordered),
        rows=ordered,
    )


async def convert_valid_rows(
    runtime: ServiceRuntime[Any],
    *,
    scope: str,
    raw_rows: Sequence[Any],
    model: type[RowModel],
    apply: Callable[[Any, RowModel], Awaitable[dict[str, Any]]],
    prepare: Callable[[Any, Sequence[RowModel]], Awaitable[None]] | None = None,
    finish: Callable[[Any], Awaitable[None]] | None = None,
) -> ConversionOut:
    """A conversion route's whole work: each row checked against its model, the valid ones
    applied with `apply(uow, row)` through convert_rows, the refused ones put back in place.

    `prepare(uow, rows)` runs before the rows of each attempt, `finish(uow)` after them
    (see convert_rows)."""
    valid, refused = validated_rows(raw_rows, model)
    rows: list[Row] = []
    models: dict[str, RowModel] = {}
    for raw, row in valid:

        async def apply_row(uow: Any, row: RowModel = row) -> dict[str, Any]:
            return await apply(uow, row)

        # A row that validated carries its ref (a ConversionRef) exactly as it was sent.
        rows.append(Row(ref=raw["ref"], content=raw, apply=apply_row))
        models[raw["ref"]] = row

    async def prepare_rows(uow: Any, todo: Sequence[Row]) -> None:
        assert prepare is not None
        await prepare(uow, [models[row.ref] for row in todo])

    async def finish_rows(uow: Any, done: Sequence[Row]) -> None:
        assert finish is not None
        await finish(uow)

    converted = await convert_rows(
        runtime,
        scope=scope,
        rows=rows,
        prepare=None if prepare is None else prepare_rows,
        finish=None if finish is None else finish_rows,
    )
    return merge_refused(converted, refused)


def validated_rows(
    raw_rows: Sequence[Any], model: type[RowModel]
) -> tuple[list[tuple[Any, RowModel]], dict[int, RowResult]]:
    """Each row checked against its model: the valid ones in order with the content they
    came as, and the refused ones by their place in the request (for merge_refused)."""
    valid: list[tuple[Any, RowModel]] = []
    refused: dict[int, RowResult] = {}
    for index, raw in enumerate(raw_rows):
        try:
            valid.append((raw, model.model_validate(raw)))
        except ValidationError as err:
            refused[index] = reject_invalid(raw_ref(raw, index), err)
    return valid, refused


def reject_invalid(ref: str, err: Exception) -> RowResult:
    """A row whose content does not validate: refused before anything runs."""
    detail = in_words(err.errors()) if isinstance(err, ValidationError) else str(err)
    return RowResult(ref=ref, outcome="rejected", status=422, detail=detail[:2000])


def raw_ref(raw: Any, index: int) -> str:
    """The ref a row gave, for the rejection of a row that does not validate."""
    ref = raw.get("ref") if isinstance(raw, dict) else None
    return ref[:120] if isinstance(ref, str) and ref else f"row {index}"


def merge_refused(out: ConversionOut, refused: dict[int, RowResult]) -> ConversionOut:
    """Put the rows refused before anything ran back in their places among the others."""
    if not refused:
        return out
    applied = iter(out.rows)
    total = len(out.rows) + len(refused)
    rows = [refused[i] if i in refused else next(applied) for i in range(total)]
    return ConversionOut(
        done=out.done,
        already_done=out.already_done,
        pending=out.pending,
        rejected=out.rejected + len(refused),
        rows=rows,
    )
