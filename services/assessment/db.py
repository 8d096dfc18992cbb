"""Assessment's own tables, its repository, and its unit of work.

Portable across SQLite and PostgreSQL: nested parts are sa.JSON, money sa.BigInteger,
times timezone-aware (read back as UTC). A save is a conditional UPDATE on the version
it loaded, so two writers racing on one assessment cannot both win.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from contracts.events import EligibilityBasis, OtherFundingSource
from contracts.vocabulary import AgeBand, ClientGroup, CompletedBy
from rules.eligibility import DeterminationOnRecord
from servicekit.db import (
    UtcDateTime,
    VersionedWithHistory,
    adopted_policies_table,
    messaging_tables,
    one_of,
)
from servicekit.uow import UnitOfWork
from services.assessment.domain import (
    Action,
    Adjustment,
    Answers,
    Assessment,
    FundingLine,
    HistoryEntry,
    PersonsRisk,
    RaisedBy,
    RiskRecord,
    Status,
    Validation,
)
from services.assessment.personal import (
    FINANCIAL_RECORD_FIELDS,
    FinancialRecord,
    PersonKey,
    SealedRecord,
)

metadata = sa.MetaData()
outbox, inbox, idempotency_keys = messaging_tables(metadata)
adopted_policies = adopted_policies_table(metadata)

assessments = sa.Table(
    "assessments",
    metadata,
    sa.Column("assessment_id", sa.Uuid, primary_key=True),
    sa.Column("council", sa.String(64), nullable=False),
    sa.Column("person_id", sa.String(64), nullable=False),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("policy_version", sa.String(100), nullable=False),
    sa.Column("client_group", sa.String(40), nullable=False),
    sa.Column("completed_by", sa.String(20), nullable=False),
    sa.Column("team", sa.String(200), nullable=False),
    sa.Column("key_worker_id", sa.String(200), nullable=False),
    sa.Column("age_band", sa.String(10), nullable=False),
    sa.Column("community_based", sa.Boolean, nullable=False),
    # The person's answers.
    sa.Column("answers", sa.JSON, nullable=False),
    sa.Column("significant_informal_support", sa.Boolean, nullable=False),
    sa.Column("needs_24_7", sa.Boolean, nullable=False),
    sa.Column("carer_support_weekly_pence", sa.BigInteger, nullable=False),
    sa.Column("other_funding", sa.JSON, nullable=False),
    sa.Column("outcomes", sa.JSON, nullable=False),
    sa.Column("persons_risks", sa.JSON, nullable=False),
    # The practitioner's validation, kept apart from the answers.
    sa.Column("validated_levels", sa.JSON, nullable=True),
    sa.Column("adjustments", sa.JSON, nullable=True),
    sa.Column("validated_significant_informal_support", sa.Boolean, nullable=True),
    sa.Column("validated_needs_24_7", sa.Boolean, nullable=True),
    sa.Column("validated_carer_support_weekly_pence", sa.BigInteger, nullable=True),
    sa.Column("validated_other_funding", sa.JSON, nullable=True),
    sa.Column("validated_risks", sa.JSON, nullable=True),
    sa.Column("validated_by", sa.String(200), nullable=True),
    sa.Column("validated_at", UtcDateTime(), nullable=True),
    # What the validation rested on (rules.eligibility.validation_basis); empty on those
    # validated before it was required.
    sa.Column("validated_eligibility", sa.JSON, nullable=True),
    sa.Column("created_by", sa.String(200), nullable=False),
    sa.Column("created_at", UtcDateTime(), nullable=False),
    sa.Column("updated_at", UtcDateTime(), nullable=False),
)
sa.Index(
    "assessments_by_council",
    assessments.c.council,
    assessments.c.created_at,
    assessments.c.assessment_id,
)
sa.Index("assessments_by_person", assessments.c.council, assessments.c.person_id)

eligibility_determinations = sa.Table(
    "eligibility_determinations",
    metadata,
    # Orders determinations recorded in the same instant: the later one is the latest.
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("determination_id", sa.Uuid, nullable=False, unique=True),
    sa.Column("assessment_id", sa.Uuid, sa.ForeignKey("assessments.assessment_id"), nullable=False),
    sa.Column("eligible", sa.Boolean, nullable=False),
    sa.Column("determined_on", sa.Date, nullable=False),
    sa.Column("recorded_at", UtcDateTime(), nullable=False),
)
"""Each determination's decision, for the gate before validation; the determination
itself (outcomes, reasons) is the EligibilityDetermined event the audit keeps."""
sa.Index(
    "eligibility_determinations_by_assessment",
    eligibility_determinations.c.assessment_id,
    eligibility_determinations.c.seq,
)

legacy_people = sa.Table(
    "legacy_people",
    metadata,
    sa.Column("council", sa.String(64), primary_key=True),
    sa.Column("legacy_client_id", sa.String(32), primary_key=True),
    sa.Column("person_id", sa.String(64), nullable=False, unique=True),
    sa.Column("assessment_id", sa.Uuid, nullable=False),
    sa.Column("imported_at", UtcDateTime(), nullable=False),
    sa.Column("imported_by", sa.String(200), nullable=False),
)
"""A legacy system's client id -> the opaque person id it was given here. Only ids: the
personal details of the extract are never stored in this table."""

assessment_history = sa.Table(
    "assessment_history",
    metadata,
    sa.Column(
        "assessment_id",
        sa.Uuid,
        sa.ForeignKey("assessments.assessment_id"),
        primary_key=True,
    ),
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("action", sa.String(20), nullable=False),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("at", UtcDateTime(), nullable=False),
    sa.Column("by", sa.String(200), nullable=False),
    sa.Column("reasons", sa.JSON, nullable=False),
)

# Personal data (docs/privacy.md). No column holds a personal detail in the clear: the
# details are sealed under the person's data key, and the data key is kept only wrapped
# by the master key. Erasure deletes the sealed rows and the wrapped key.
person_keys = sa.Table(
    "person_keys",
    metadata,
    sa.Column("council", sa.String(64), primary_key=True),
    sa.Column("person_id", sa.String(64), primary_key=True),
    sa.Column("key_id", sa.String(36), nullable=False, unique=True),
    sa.Column("wrapped_key", sa.LargeBinary, nullable=True),
    sa.Column("created_at", UtcDateTime(), nullable=False),
    sa.Column("erased_at", UtcDateTime(), nullable=True),
    sa.Column("erased_by", sa.String(200), nullable=True),
)

personal_details = sa.Table(
    "personal_details",
    metadata,
    sa.Column("details_id", sa.String(36), primary_key=True),
    sa.Column("council", sa.String(64), nullable=False),
    sa.Column("person_id", sa.String(64), nullable=False),
    sa.Column("key_id", sa.String(36), nullable=False),
    sa.Column("sealed_details", sa.Text, nullable=False),
    sa.Column("fields", sa.JSON, nullable=False),
    sa.Column("correction", sa.Boolean, nullable=False),
    sa.Column("recorded_at", UtcDateTime(), nullable=False),
    sa.Column("recorded_by", sa.String(200), nullable=False),
)
sa.Index("personal_details_by_person", personal_details.c.council, personal_details.c.person_id)

financial_inputs = sa.Table(
    "financial_inputs",
    metadata,
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("financial_assessment_id", sa.Uuid, nullable=False, unique=True),
    sa.Column("council", sa.String(64), nullable=False),
    sa.Column("person_id", sa.String(64), nullable=False),
    sa.Column("assessment_id", sa.Uuid, nullable=False),
    sa.Column("policy_version", sa.String(100), nullable=False),
    sa.Column("applies_from", sa.Date, nullable=False),
    # What a full assessment was told, sealed under the person's data key like their
    # details (an erasure deletes the row and the key); none for the other paths.
    sa.Column("key_id", sa.String(36), nullable=True),
    sa.Column("sealed_inputs", sa.Text, nullable=True),
    sa.Column("recorded_at", UtcDateTime(), nullable=False),
)
"""Each financial assessment recorded, newest last per person: what an uprating
recalculates from (docs/charging.md)."""
sa.Index("financial_inputs_by_person", financial_inputs.c.council, financial_inputs.c.person_id)

person_activity = sa.Table(
    "person_activity",
    metadata,
    sa.Column("council", sa.String(64), primary_key=True),
    sa.Column("person_id", sa.String(64), primary_key=True),
    sa.Column("last_event_at", UtcDateTime(), nullable=False),
)
"""The time of the latest event about each person from any service: the last contact the
retention period counts from."""


def _utc(value: datetime) -> datetime:
    """SQLite hands back naive datetimes; every time we store is UTC."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _funding_to_json(lines: tuple[FundingLine, ...]) -> list[dict[str, Any]]:
    return [{"source": f.source.value, "weekly_pence": f.weekly_pence} for f in lines]


def _funding_from_json(rows: list[dict[str, Any]]) -> tuple[FundingLine, ...]:
    return tuple(FundingLine(OtherFundingSource(r["source"]), int(r["weekly_pence"])) for r in rows)


def _risk_to_json(risk: RiskRecord) -> dict[str, Any]:
    return {
        "risk_id": risk.risk_id,
        "description": risk.description,
        "raised_by": risk.raised_by.value,
        "persons_view": risk.persons_view,
        "practitioners_view": risk.practitioners_view,
        "flagged": risk.flagged,
    }


def _risk_from_json(row: dict[str, Any]) -> RiskRecord:
    return RiskRecord(
        risk_id=row["risk_id"],
        description=row["description"],
        raised_by=RaisedBy(row["raised_by"]),
        persons_view=row["persons_view"],
        practitioners_view=row["practitioners_view"],
        flagged=bool(row["flagged"]),
    )


def _row_values(a: Assessment) -> dict[str, Any]:
    v = a.validation
    return {
        "council": a.council,
        "person_id": a.person_id,
        "status": a.status.value,
        "version": a.version,
        "policy_version": a.policy_version,
        "client_group": a.client_group.value,
        "completed_by": a.completed_by.value,
        "team": a.team,
        "key_worker_id": a.key_worker_id,
        "age_band": a.age_band.value,
        "community_based": a.community_based,
        "answers": dict(a.answers.domains),
        "significant_informal_support": a.answers.significant_informal_support,
        "needs_24_7": a.answers.needs_24_7,
        "carer_support_weekly_pence": a.answers.carer_support_weekly_pence,
        "other_funding": _funding_to_json(a.answers.other_funding),
        "outcomes": list(a.answers.outcomes),
        "persons_risks": [
            {"risk_id": r.risk_id, "description": r.description, "persons_view": r.persons_view}
            for r in a.answers.risks
        ],
        "validated_levels": dict(v.domain_levels) if v else None,
        "adjustments": (
            [
                {
                    "domain": x.domain,
                    "original_level": x.original_level,
                    "validated_level": x.validated_level,
                    "reason": x.reason,
                }
                for x in v.adjustments
            ]
            if v
            else None
        ),
        "validated_significant_informal_support": v.significant_informal_support if v else None,
        "validated_needs_24_7": v.needs_24_7 if v else None,
        "validated_carer_support_weekly_pence": v.carer_support_weekly_pence if v else None,
        "validated_other_funding": _funding_to_json(v.other_funding) if v else None,
        "validated_risks": [_risk_to_json(r) for r in v.risks] if v else None,
        "validated_by": v.validated_by if v else None,
        "validated_at": v.validated_at if v else None,
        "validated_eligibility": (
            v.eligibility.model_dump(mode="json") if v and v.eligibility else None
        ),
        "created_by": a.created_by,
        "created_at": a.created_at,
        "updated_at": a.updated_at,
    }


def _validation_from_row(row: Mapping[Any, Any]) -> Validation | None:
    if row["validated_at"] is None:
        return None
    return Validation(
        domain_levels={k: int(v) for k, v in row["validated_levels"].items()},
        adjustments=tuple(
            Adjustment(
                x["domain"], int(x["original_level"]), int(x["validated_level"]), x["reason"]
            )
            for x in row["adjustments"]
        ),
        significant_informal_support=bool(row["validated_significant_informal_support"]),
        needs_24_7=bool(row["validated_needs_24_7"]),
        carer_support_weekly_pence=int(row["validated_carer_support_weekly_pence"]),
        other_funding=_funding_from_json(row["validated_other_funding"]),
        risks=tuple(_risk_from_json(r) for r in row["validated_risks"]),
        validated_by=row["validated_by"],
        validated_at=_utc(row["validated_at"]),
        eligibility=(
            EligibilityBasis.model_validate(row["validated_eligibility"])
            if row["validated_eligibility"]
            else None
        ),
    )


def _assessment_from_row(row: Mapping[Any, Any], history: list[HistoryEntry]) -> Assessment:
    return Assessment(
        assessment_id=row["assessment_id"],
        council=row["council"],
        person_id=row["person_id"],
        client_group=ClientGroup(row["client_group"]),
        completed_by=CompletedBy(row["completed_by"]),
        team=row["team"],
        key_worker_id=row["key_worker_id"],
        age_band=AgeBand(row["age_band"]),
        community_based=bool(row["community_based"]),
        policy_version=row["policy_version"],
        status=Status(row["status"]),
        version=int(row["version"]),
        created_at=_utc(row["created_at"]),
        updated_at=_utc(row["updated_at"]),
        created_by=row["created_by"],
        answers=Answers(
            domains={k: int(v) for k, v in row["answers"].items()},
            significant_informal_support=bool(row["significant_informal_support"]),
            needs_24_7=bool(row["needs_24_7"]),
            carer_support_weekly_pence=int(row["carer_support_weekly_pence"]),
            other_funding=_funding_from_json(row["other_funding"]),
            outcomes=tuple(row["outcomes"]),
            risks=tuple(
                PersonsRisk(r["risk_id"], r["description"], r["persons_view"])
                for r in row["persons_risks"]
            ),
        ),
        validation=_validation_from_row(row),
        history=history,
    )


def _history_rows(assessment: Assessment) -> list[dict[str, Any]]:
    return [
        {
            "assessment_id": assessment.assessment_id,
            "seq": seq,
            "action": entry.action.value,
            "status": entry.status.value,
            "at": entry.at,
            "by": entry.by,
            "reasons": list(entry.reasons),
        }
        for seq, entry in enumerate(assessment.history, start=1)
    ]


class AssessmentRepository:
    """Loads and saves whole assessments; remembers what it loaded to save conditionally."""

    def __init__(self, session: AsyncSession, track: Callable[[Assessment], Assessment]) -> None:
        self._session = session
        self._track = track
        self._rows = VersionedWithHistory[Assessment](
            session,
            assessments,
            assessment_history,
            what="assessment",
            key=lambda assessment: assessment.assessment_id,
            values=_row_values,
            history_rows=_history_rows,
        )

    async def get(self, assessment_id: UUID) -> Assessment | None:
        loaded = await self._rows.load(assessment_id)
        if loaded is None:
            return None
        row, history_rows = loaded
        history = [
            HistoryEntry(
                action=Action(h.action),
                status=Status(h.status),
                at=_utc(h.at),
                by=h.by,
                reasons=tuple(h.reasons),
            )
            for h in history_rows
        ]
        assessment = _assessment_from_row(row._mapping, history)
        assessment.eligibility = await self.latest_determination(assessment_id)
        return self._track(assessment)

    async def latest_determination(self, assessment_id: UUID) -> DeterminationOnRecord | None:
        d = eligibility_determinations.c
        row = (
            await self._session.execute(
                sa.select(d.determination_id, d.eligible, d.determined_on)
                .where(d.assessment_id == assessment_id)
                .order_by(d.seq.desc())
                .limit(1)
            )
        ).first()
        if row is None:
            return None
        return DeterminationOnRecord(row.determination_id, bool(row.eligible), row.determined_on)

    async def add_determination(
        self, assessment_id: UUID, determination: DeterminationOnRecord, recorded_at: datetime
    ) -> None:
        await self._session.execute(
            eligibility_determinations.insert(),
            {
                "determination_id": determination.determination_id,
                "assessment_id": assessment_id,
                "eligible": determination.eligible,
                "determined_on": determination.determined_on,
                "recorded_at": recorded_at,
            },
        )

    async def add(self, assessment: Assessment) -> None:
        await self._rows.add(assessment)
        self._track(assessment)

    async def save(self, assessment: Assessment) -> None:
        """Write a loaded assessment back; refused if someone saved it meanwhile."""
        await self._rows.save(assessment)

    async def list(
        self,
        *,
        council: str,
        person_id: str | None,
        status: Status | None,
        limit: int,
        after: tuple[datetime, UUID] | None,
    ) -> list[Assessment]:
        """Newest first, without history; `after` is the (created_at, id) ending the page before."""
        query = sa.select(assessments).where(assessments.c.council == council)
        if person_id is not None:
            query = query.where(assessments.c.person_id == person_id)
        if status is not None:
            query = query.where(assessments.c.status == status.value)
        if after is not None:
            created_at, assessment_id = after
            query = query.where(
                sa.or_(
                    assessments.c.created_at < created_at,
                    sa.and_(
                        assessments.c.created_at == created_at,
                        assessments.c.assessment_id < assessment_id,
                    ),
                )
            )
        query = query.order_by(
            assessments.c.created_at.desc(), assessments.c.assessment_id.desc()
        ).limit(limit)
        rows = (await self._session.execute(query)).mappings().all()
        return [_assessment_from_row(row, history=[]) for row in rows]


class PeopleRepository:
    """Each person's data key, their sealed details and their last contact."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    def _engine(self) -> AsyncEngine:
        bind = self._session.bind
        assert isinstance(bind, AsyncEngine), "sessions are made from the service's engine"
        return bind

    async def key(self, council: str, person_id: str) -> PersonKey | None:
        row = (
            (
                await self._session.execute(
                    sa.select(person_keys).where(
                        person_keys.c.council == council, person_keys.c.person_id == person_id
                    )
                )
            )
            .mappings()
            .first()
        )
        return PersonKey(**row) if row else None

    async def add_key(self, key: PersonKey) -> None:
        await self._session.execute(
            person_keys.insert(),
            {
                "council": key.council,
                "person_id": key.person_id,
                "key_id": key.key_id,
                "wrapped_key": key.wrapped_key,
                "created_at": key.created_at,
            },
        )

    async def records(self, council: str, person_id: str) -> list[SealedRecord]:
        """Oldest first: the last one is the details in force."""
        rows = (
            (
                await self._session.execute(
                    sa.select(personal_details)
                    .where(
                        personal_details.c.council == council,
                        personal_details.c.person_id == person_id,
                    )
                    .order_by(personal_details.c.recorded_at, personal_details.c.details_id)
                )
            )
            .mappings()
            .all()
        )
        return [SealedRecord(**{**row, "fields": tuple(row["fields"])}) for row in rows]

    async def add_record(self, record: SealedRecord) -> None:
        values = asdict(record)
        values["fields"] = list(record.fields)
        await self._session.execute(personal_details.insert(), values)

    async def erase(self, council: str, person_id: str, *, at: datetime, by: str) -> None:
        """Destroy the data key and drop the sealed rows; only the fact of erasure stays."""
        if self._engine().dialect.name == "sqlite":
            # Zero the freed bytes in the file, so the wrapped key is not left in free space.
            await self._session.execute(sa.text("PRAGMA secure_delete = ON"))
        await self._session.execute(
            personal_details.delete().where(
                personal_details.c.council == council, personal_details.c.person_id == person_id
            )
        )
        await self._session.execute(
            financial_inputs.delete().where(
                financial_inputs.c.council == council, financial_inputs.c.person_id == person_id
            )
        )
        await self._session.execute(
            person_keys.update()
            .where(person_keys.c.council == council, person_keys.c.person_id == person_id)
            .values(wrapped_key=None, erased_at=at, erased_by=by)
        )

    async def scrub_freed_space(self) -> None:
        """After an erasure: push old page copies out of the database's own logs.

        SQLite keeps earlier copies of a page in its write-ahead log until a checkpoint;
        a truncating checkpoint writes the zeroed pages back and empties the log.
        PostgreSQL keeps dead row versions until VACUUM prunes them (its WAL and backups
        age out on their own schedule: docs/privacy.md says what remains).
        """
        engine = self._engine()
        async with engine.connect() as connection:
            autocommit = await connection.execution_options(isolation_level="AUTOCOMMIT")
            if engine.dialect.name == "sqlite":
                await autocommit.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
            else:
                await autocommit.exec_driver_sql(
                    "VACUUM person_keys, personal_details, financial_inputs"
                )

    async def touch(self, council: str, person_id: str, at: datetime) -> None:
        """Remember the latest event time seen for the person (events may come out of order)."""
        await self.touch_all(council, {person_id: at})

    async def touch_all(self, council: str, latest: Mapping[str, datetime]) -> None:
        """touch for many of the council's people at once (`latest`: each one's latest
        event time among a consumer batch's): one read, one insert, one update. A time
        never moves back."""
        rows = await self._session.execute(
            sa.select(person_activity.c.person_id, person_activity.c.last_event_at).where(
                person_activity.c.council == council,
                one_of(person_activity.c.person_id, latest),
            )
        )
        current = {person_id: _utc(at) for person_id, at in rows}
        new = [
            {"council": council, "person_id": person_id, "last_event_at": at}
            for person_id, at in latest.items()
            if person_id not in current
        ]
        later = [
            {"person": person_id, "at": at}
            for person_id, at in latest.items()
            if person_id in current and current[person_id] < at
        ]
        if new:
            await self._session.execute(person_activity.insert(), new)
        if later:
            await self._session.execute(
                person_activity.update()
                .where(
                    person_activity.c.council == council,
                    person_activity.c.person_id == sa.bindparam("person"),
                )
                .values(last_event_at=sa.bindparam("at")),
                later,
            )

    async def last_contact(self, council: str, person_id: str) -> datetime | None:
        """The latest of: any event about the person, any assessment change, any details."""
        candidates = [
            sa.select(sa.func.max(person_activity.c.last_event_at)).where(
                person_activity.c.council == council, person_activity.c.person_id == person_id
            ),
            sa.select(sa.func.max(assessments.c.updated_at)).where(
                assessments.c.council == council, assessments.c.person_id == person_id
            ),
            sa.select(sa.func.max(personal_details.c.recorded_at)).where(
                personal_details.c.council == council, personal_details.c.person_id == person_id
            ),
        ]
        times = [(await self._session.execute(query)).scalar_one_or_none() for query in candidates]
        found = [_utc(t) for t in times if t is not None]
        return max(found) if found else None


class FinancialInputsRepository:
    """Each person's financial assessments in the order recorded, with sealed inputs."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def add(self, record: FinancialRecord) -> None:
        await self._session.execute(financial_inputs.insert().values(**asdict(record)))

    async def latest_per_person(self, council: str) -> list[FinancialRecord]:
        """The newest financial assessment of each of the council's people."""
        f = financial_inputs.c
        newest = (
            sa.select(sa.func.max(f.seq))
            .where(f.council == council)
            .group_by(f.person_id)
            .scalar_subquery()
        )
        rows = (
            (
                await self._session.execute(
                    sa.select(*(financial_inputs.c[name] for name in FINANCIAL_RECORD_FIELDS))
                    .where(f.seq.in_(newest))
                    .order_by(f.person_id)
                )
            )
            .mappings()
            .all()
        )
        return [FinancialRecord(**row) for row in rows]


class LegacyPeopleRepository:
    """Which person each legacy (CareFirst) client id became: what makes re-import harmless."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def known(self, council: str, legacy_ids: list[str]) -> dict[str, str]:
        """Legacy client id -> person id, for those of these ids imported before."""
        found: dict[str, str] = {}
        for start in range(0, len(legacy_ids), 500):
            rows = await self._session.execute(
                sa.select(legacy_people.c.legacy_client_id, legacy_people.c.person_id).where(
                    legacy_people.c.council == council,
                    one_of(legacy_people.c.legacy_client_id, legacy_ids[start : start + 500]),
                )
            )
            found.update({row.legacy_client_id: row.person_id for row in rows})
        return found

    async def add(
        self,
        *,
        council: str,
        legacy_client_id: str,
        person_id: str,
        assessment_id: UUID,
        imported_by: str,
    ) -> None:
        await self._session.execute(
            legacy_people.insert(),
            {
                "council": council,
                "legacy_client_id": legacy_client_id,
                "person_id": person_id,
                "assessment_id": assessment_id,
                "imported_at": datetime.now(UTC),
                "imported_by": imported_by,
            },
        )


class AssessmentUnitOfWork(UnitOfWork):
    assessments: AssessmentRepository
    people: PeopleRepository
    finances: FinancialInputsRepository
    legacy_people: LegacyPeopleRepository

    def _open(self) -> None:
        self.assessments = AssessmentRepository(self.session, self.track)
        self.people = PeopleRepository(self.session)
        self.finances = FinancialInputsRepository(self.session)
        self.legacy_people = LegacyPeopleRepository(self.session)
