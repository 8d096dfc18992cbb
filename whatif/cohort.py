"""The cohort: each person's latest assessment, budget and plan, folded from the event log.

`fold(envelopes)` is pure: give it envelopes in log order and it returns one `Person` per
(council, person id) with the latest `AssessmentValidated` (the RAS inputs and the fields an
equality impact assessment groups by), the latest `BudgetIssued`, the latest
`PlanSignedOff`, the latest `DeploymentSetUp` and the latest financial assessment carried out
(`FinancialAssessmentCompleted`; a deferred one is not), the signed-off plan's review history
(`ReviewScheduled`, `ReviewCompleted`) and the surpluses flagged and recoup notices
not yet acted on (`CardSurplusFlagged`, `RecoupNoticeSent` less `CardFundsRecouped`).
"Latest" is log order: one person's events on one topic share a partition (the record key
is the person id), so the log keeps them in the order they happened.

`read_cohort(url)` feeds the fold from an event log. It is read-only: a throwaway consumer
group that never commits, from the beginning up to the end offsets taken when it starts, and
on the embedded log only topics that already exist (subscribing to a missing topic would
create it).
"""

from __future__ import annotations

import sqlite3
import uuid
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from contracts import events as ev
from contracts.envelope import Envelope, InvalidEvent, decode
from contracts.registry import UPCASTERS, topic_for
from contracts.vocabulary import AgeBand, ClientGroup
from rules.ras import BudgetInputs, FundingStream
from servicekit.eventlog import open_event_log
from whatif.charging import Finances
from whatif.errors import EventLogNotFound
from whatif.reviews import OpenNotice, ReviewHistory

DEFAULT_LOG_URL = "sqlite:///var/eventlog.db"
GROUP_PREFIX = "whatif-readonly-"
POLL_RECORDS = 5_000
_IDLE_POLLS_BEFORE_GIVING_UP = 20  # x 500 ms: a Kafka end offset may sit past a marker

WANTED: tuple[type[ev.Event], ...] = (
    ev.PolicyAdopted,
    ev.AssessmentValidated,
    ev.BudgetIssued,
    ev.PlanSignedOff,
    ev.DeploymentSetUp,
    ev.FinancialAssessmentCompleted,
    ev.ReviewScheduled,
    ev.ReviewCompleted,
    ev.CardSurplusFlagged,
    ev.RecoupNoticeSent,
    ev.CardFundsRecouped,
)
TOPICS: tuple[str, ...] = tuple(dict.fromkeys(topic_for(cls) for cls in WANTED))


def _wanted_markers() -> tuple[bytes, ...]:
    """Type names whose records may hold a wanted event: the types and every older version
    that upcasts to one. A record without any of them is skipped without decoding."""
    wanted = {cls.type for cls in WANTED}
    markers = set(wanted)
    for old in UPCASTERS:
        seen, step = set(), old
        while step in UPCASTERS and step not in seen:
            seen.add(step)
            step = UPCASTERS[step][0]
        if step in wanted:
            markers.add(old)
    return tuple(sorted(m.encode("ascii") for m in markers))


MARKERS = _wanted_markers()


# --- one person -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Assessed:
    """The latest validated assessment: what the RAS needs and what the EIA groups by."""

    assessment_id: str
    client_group: ClientGroup
    team: str
    age_band: AgeBand
    domain_levels: tuple[tuple[str, int], ...]
    significant_informal_support: bool
    needs_24_7: bool
    carer_support_weekly_pence: int
    other_funding: tuple[tuple[ev.OtherFundingSource, int], ...]
    policy_version: str

    @classmethod
    def of(cls, event: ev.AssessmentValidated) -> Assessed:
        return cls(
            assessment_id=str(event.assessment_id),
            client_group=event.client_group,
            team=event.team,
            age_band=event.age_band,
            domain_levels=tuple(event.domain_levels.items()),
            significant_informal_support=event.significant_informal_support,
            needs_24_7=event.needs_24_7,
            carer_support_weekly_pence=event.carer_support_weekly_pence,
            other_funding=tuple((f.source, f.weekly_pence) for f in event.other_funding),
            policy_version=event.policy_version,
        )

    def budget_inputs(self) -> BudgetInputs:
        """The RAS inputs, exactly as allocation builds them from this assessment."""
        return BudgetInputs(
            client_group=self.client_group,
            domain_levels=dict(self.domain_levels),
            significant_informal_support=self.significant_informal_support,
            needs_24_7=self.needs_24_7,
            carer_support_weekly_pence=self.carer_support_weekly_pence,
            other_funding=tuple(
                FundingStream(source=source, weekly_pence=pence)
                for source, pence in self.other_funding
            ),
        )


@dataclass(frozen=True, slots=True)
class Issued:
    """The latest budget the person was told (indicative, or final at the plan's cost)."""

    budget_id: str
    stage: ev.BudgetStage
    revision: int
    weekly_pence: int
    policy_version: str


@dataclass(frozen=True, slots=True)
class SignedOff:
    """The latest signed-off support plan: its recurring weekly cost."""

    plan_id: str
    plan_version: int
    weekly_pence: int
    annual_pence: int


@dataclass(frozen=True, slots=True)
class Deployed:
    """The latest deployment: what the person is charged a year under the means test."""

    gross_annual_pence: int
    contribution_annual_pence: int
    policy_version: str


@dataclass(slots=True)
class Person:
    council: str
    person_id: str
    assessment: Assessed | None = None
    budget: Issued | None = None
    plan: SignedOff | None = None
    deployment: Deployed | None = None
    finances: Finances | None = None
    reviews: ReviewHistory | None = None
    open_notices: dict[str, OpenNotice] = field(default_factory=dict)


# --- the fold -------------------------------------------------------------------------------


@dataclass
class Cohort:
    """Everyone the log knows, by (council, person id), and what was read to find them."""

    people: dict[tuple[str, str], Person] = field(default_factory=dict)
    adoptions: list[ev.PolicyAdopted] = field(default_factory=list)
    """Policy versions councils adopted, in log order: part of 'the policy in force'."""
    records_read: int = 0
    events_used: int = 0
    invalid_records: int = 0
    skipped_other_councils: int = 0

    def council_people(self, council: str) -> list[Person]:
        """One council's people, by person id (a stable order for every report)."""
        return sorted(
            (p for (c, _), p in self.people.items() if c == council), key=lambda p: p.person_id
        )

    def assessed_by_council(self) -> dict[str, int]:
        """People with a validated assessment, per council."""
        counts = Counter(c for (c, _), p in self.people.items() if p.assessment is not None)
        return dict(counts)


def apply(cohort: Cohort, envelope: Envelope, *, council: str | None = None) -> None:
    """Fold one event into the cohort; events of other types (or councils) change nothing."""
    event = envelope.event
    if not isinstance(event, WANTED):
        return
    if council is not None and event.council != council:
        cohort.skipped_other_councils += 1
        return
    if isinstance(event, ev.PolicyAdopted):
        cohort.adoptions.append(event)
        return
    key = (event.council, event.person_id)
    person = cohort.people.get(key)
    if person is None:
        person = cohort.people[key] = Person(council=event.council, person_id=event.person_id)
    cohort.events_used += 1
    if isinstance(event, ev.AssessmentValidated):
        person.assessment = Assessed.of(event)
    elif isinstance(event, ev.BudgetIssued):
        person.budget = Issued(
            budget_id=str(event.budget_id),
            stage=event.stage,
            revision=event.revision,
            weekly_pence=event.weekly_pence,
            policy_version=event.policy_version,
        )
    elif isinstance(event, ev.PlanSignedOff):
        person.plan = SignedOff(
            plan_id=str(event.plan_id),
            plan_version=event.plan_version,
            weekly_pence=event.weekly_pence,
            annual_pence=event.annual_pence,
        )
        if person.reviews is None or person.reviews.plan_id != str(event.plan_id):
            # A new version of the same plan keeps its review history; a new plan starts one.
            person.reviews = ReviewHistory(str(event.plan_id), envelope.time.date())
    elif isinstance(event, ev.DeploymentSetUp):
        person.deployment = Deployed(
            gross_annual_pence=event.gross_annual_pence,
            contribution_annual_pence=event.contribution_annual_pence,
            policy_version=event.policy_version,
        )
        direct = any(p.option is ev.DeploymentOption.DIRECT_PAYMENT for p in event.parts)
        if direct and person.reviews is not None and person.reviews.plan_id == str(event.plan_id):
            person.reviews.direct_payment_from = envelope.time.date()
    elif isinstance(event, ev.ReviewScheduled):
        if person.reviews is not None and person.reviews.plan_id == str(event.plan_id):
            person.reviews.scheduled(event)
    elif isinstance(event, ev.ReviewCompleted):
        if person.reviews is not None and person.reviews.plan_id == str(event.plan_id):
            person.reviews.completed(event)
    elif isinstance(event, ev.CardSurplusFlagged):
        surplus_id = str(event.surplus_id)
        person.open_notices[surplus_id] = OpenNotice(surplus_id, event.surplus_pence)
    elif isinstance(event, ev.RecoupNoticeSent):
        # The notice takes the place of the flagged surplus it is for.
        person.open_notices.pop(str(event.surplus_id), None)
        notice_id = str(event.notice_id)
        person.open_notices[notice_id] = OpenNotice(
            str(event.surplus_id), event.amount_pence, notice_id, event.sent_on
        )
    elif isinstance(event, ev.CardFundsRecouped):
        person.open_notices.pop(str(event.notice_id), None)
    elif isinstance(event, ev.FinancialAssessmentCompleted) and (
        event.outcome is not ev.FinancialAssessmentOutcome.DEFERRED
    ):
        person.finances = Finances.of(event)


def fold(envelopes: Iterable[Envelope], *, council: str | None = None) -> Cohort:
    """The cohort the envelopes describe, taken in log order (pure: no I/O)."""
    cohort = Cohort()
    for envelope in envelopes:
        cohort.records_read += 1
        apply(cohort, envelope, council=council)
    return cohort


def apply_record(cohort: Cohort, value: bytes, *, council: str | None = None) -> None:
    """Fold one raw record: skipped cheaply unless it may hold a wanted event type."""
    cohort.records_read += 1
    if not any(marker in value for marker in MARKERS):
        return
    try:
        envelope = decode(value)
    except InvalidEvent:
        cohort.invalid_records += 1
        return
    apply(cohort, envelope, council=council)


# --- reading the log ------------------------------------------------------------------------


def _embedded_path(url: str) -> Path | None:
    return Path(url.removeprefix("sqlite:///")) if url.startswith("sqlite:///") else None


def existing_embedded_topics(path: Path, url: str) -> list[str]:
    """The wanted topics the embedded log already has, read through a read-only connection."""
    if not path.is_file():
        raise EventLogNotFound(url)
    try:
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
        try:
            names = {row[0] for row in conn.execute("SELECT name FROM topics")}
        finally:
            conn.close()
    except sqlite3.DatabaseError as err:
        raise EventLogNotFound(f"{url} ({path} is not an embedded event log: {err})") from err
    return [topic for topic in TOPICS if topic in names]


async def read_cohort(
    url: str = DEFAULT_LOG_URL,
    *,
    council: str | None = None,
    console: Console | None = None,
    show_progress: bool = True,
) -> Cohort:
    """Read the log from the beginning into a cohort, with a progress bar; write nothing."""
    topics = list(TOPICS)
    path = _embedded_path(url)
    if path is not None:
        topics = existing_embedded_topics(path, url)
    cohort = Cohort()
    if not topics:
        return cohort
    log = open_event_log(url)
    await log.start()
    consumer = log.consumer(f"{GROUP_PREFIX}{uuid.uuid4().hex}", topics)
    try:
        await consumer.seek_to_beginning()
        ends = {slot: end for slot, end in (await consumer.end_offsets()).items() if end > 0}
        total = sum(ends.values())
        reached: dict[tuple[str, int], int] = {}
        with Progress(
            TextColumn("[bold]reading the event log"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=console,
            disable=not show_progress,
        ) as progress:
            task = progress.add_task("read", total=total)
            idle = 0
            while any(reached.get(slot, 0) < end for slot, end in ends.items()):
                records = await consumer.poll(max_records=POLL_RECORDS, timeout_ms=500)
                if not records:
                    idle += 1
                    if idle >= _IDLE_POLLS_BEFORE_GIVING_UP:
                        break
                    continue
                idle = 0
                useful = 0
                for record in records:
                    slot = (record.topic, record.partition)
                    if record.offset >= ends.get(slot, 0):
                        continue  # written after the run started: not part of this picture
                    reached[slot] = record.offset + 1
                    useful += 1
                    apply_record(cohort, record.value, council=council)
                progress.advance(task, useful)
    finally:
        await consumer.close()
        await log.close()
    return cohort
