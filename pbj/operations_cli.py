"""`pbj events` and `pbj dead-letters`: put records back on the event log, and say why.

    pbj events redeliver (--event-id ID ... | --person ID | --since T [--until T])
                         --council SLUG --reason "..."
    pbj dead-letters list [--topic T] [--service S] [--council SLUG]
    pbj dead-letters show ID
    pbj dead-letters redrive (ID ... | --all) --council SLUG --reason "..."

These work on the event log directly (`--log-url`, or PBJ_EVENT_LOG_URL, or the embedded
log in the data directory), not through a service: whoever may write to the log runs
them (docs/security.md). Each action is recorded as an OperatorActionRecorded naming the
operator (`--user`, default the login name) and the reason; audit keeps it in the
council's operations history (pbj/log_operations.py).
"""

from __future__ import annotations

import asyncio
import getpass
import json
import re
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, TypeVar

import typer
from rich.console import Console
from rich.table import Table

from contracts.registry import ALL_TOPICS, DEAD_LETTER_TOPIC, topic_for_service
from contracts.vocabulary import Role
from pbj.log_operations import (
    ActionDone,
    DeadLetter,
    OperationRefused,
    Selection,
    dead_letters,
    redeliver,
    redrive,
)
from servicekit.eventlog import EventLog, open_event_log

T = TypeVar("T")

COUNCIL_SLUG = re.compile(r"^[a-z][a-z0-9_]{0,52}$")

events_app = typer.Typer(
    help="Events on the log: redeliver them to every consumer (a duplicate changes nothing).",
    no_args_is_help=True,
)
dead_letters_app = typer.Typer(
    help="Records consumers could not apply: list, show, and re-drive them once fixed.",
    no_args_is_help=True,
)
console = Console()
errors = Console(stderr=True)

DataDir = Annotated[
    Path,
    typer.Option("--data-dir", envvar="PBJ_DATA_DIR", help="Where the embedded log lives."),
]
LogUrl = Annotated[
    str | None,
    typer.Option(
        "--log-url",
        envvar="PBJ_EVENT_LOG_URL",
        help="sqlite:///PATH or kafka://HOST:PORT[?namespace=N]; default the embedded log "
        "in --data-dir.",
    ),
]
CouncilOpt = Annotated[
    str, typer.Option("--council", help="The council whose records these are (its slug).")
]
Reason = Annotated[
    str, typer.Option("--reason", help="Why: recorded with the action in the audit history.")
]
User = Annotated[
    str | None,
    typer.Option("--user", help="Who is acting, as recorded; default the login name."),
]


@events_app.callback()
def events_main() -> None:
    """Events on the log: redeliver them to every consumer (a duplicate changes nothing)."""


@dead_letters_app.callback()
def dead_letters_main() -> None:
    """Records consumers could not apply: list, show, and re-drive them once fixed."""


def _fail(message: str) -> None:
    errors.print(message, style="bold red", markup=False, highlight=False)
    raise typer.Exit(1)


def _on_log(url: str | None, data_dir: Path, work: Callable[[EventLog], Awaitable[T]]) -> T:
    async def run() -> T:
        log = open_event_log(url or f"sqlite:///{data_dir}/eventlog.db")
        await log.start()
        try:
            # As every service does at start: a log that predates pb.operations gets it
            # (on Kafka with retention for ever) before the first action is recorded there.
            await log.ensure_topics([*ALL_TOPICS, DEAD_LETTER_TOPIC])
            return await work(log)
        finally:
            await log.close()

    try:
        return asyncio.run(run())
    except OperationRefused as err:
        _fail(str(err))
        raise  # unreachable: _fail exits
    except (OSError, TimeoutError, ValueError) as err:
        _fail(f"the event log: {err}")
        raise


def _performer(user: str | None) -> str:
    name = (user or getpass.getuser()).strip()
    if not 0 < len(name) <= 100:
        _fail("--user must name who is acting, in at most 100 characters")
    return f"{Role.OPERATIONS.value}:{name}"


def _checked(council: str, reason: str) -> None:
    if not COUNCIL_SLUG.match(council):
        _fail(f"--council must be a council's slug, like lancashire, not {council!r}")
    if not reason.strip():
        _fail("--reason must say why")
    if len(reason) > 2000:
        _fail("--reason is at most 2,000 characters")


def _done(done: ActionDone, what: str) -> None:
    action = done.action
    console.print(
        f"{what}: {done.records} record(s) re-published. Recorded as action "
        f"{action.action_id} by {action.performed_by} in {action.person_id}'s history "
        f"(event {done.envelope_id}).",
        style="green",
        highlight=False,
    )


@events_app.command("redeliver")
def events_redeliver(
    council: CouncilOpt,
    reason: Reason,
    event_id: Annotated[
        list[str] | None, typer.Option("--event-id", help="A CloudEvent id (repeatable).")
    ] = None,
    person: Annotated[str | None, typer.Option("--person", help="Every event of one person.")] = (
        None
    ),
    since: Annotated[
        str | None, typer.Option(help="Events from this time (RFC 3339), by event time.")
    ] = None,
    until: Annotated[str | None, typer.Option(help="Events before this time (RFC 3339).")] = None,
    user: User = None,
    log_url: LogUrl = None,
    data_dir: DataDir = Path("var"),
) -> None:
    """Re-publish events unchanged (same CloudEvent ids) so every consumer sees them again."""
    _checked(council, reason)
    try:
        selection = Selection(
            event_ids=frozenset(event_id or ()),
            person_id=person,
            since=_moment(since, "--since"),
            until=_moment(until, "--until"),
        )
    except OperationRefused as err:
        _fail(str(err))
        return
    done = _on_log(
        log_url,
        data_dir,
        lambda log: redeliver(
            log,
            selection=selection,
            council=council,
            performed_by=_performer(user),
            reason=reason.strip(),
        ),
    )
    _done(done, "Redelivered")


def _moment(text: str | None, option: str) -> datetime | None:
    """An RFC 3339 time; one without an offset is UTC, as the log's times are."""
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        _fail(f"{option} must be a time like 2026-11-23T09:00:00Z (RFC 3339), not {text!r}")
        raise
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _status(letter: DeadLetter) -> str:
    if letter.redriven is None:
        return "waiting"
    return f"re-driven {letter.redriven.at:%Y-%m-%d %H:%M} by {letter.redriven.performed_by}"


@dead_letters_app.command("list")
def dead_letters_list(
    topic: Annotated[
        str | None, typer.Option(help="Only records from this topic (pb.planning or planning).")
    ] = None,
    service: Annotated[
        str | None, typer.Option(help="Only those this service's consumers refused.")
    ] = None,
    council: Annotated[str | None, typer.Option(help="Only this council's records.")] = None,
    log_url: LogUrl = None,
    data_dir: DataDir = Path("var"),
) -> None:
    """A table of dead letters: when, source topic, consumer, event, reason, re-driven."""
    letters = _on_log(log_url, data_dir, dead_letters)
    if topic is not None:
        wanted = topic if topic.startswith("pb.") else topic_for_service(topic)
        letters = [x for x in letters if x.topic == wanted]
    if service is not None:
        letters = [x for x in letters if x.consumer.split("-", 1)[0] == service]
    if council is not None:
        letters = [x for x in letters if x.council in (council, None)]
    table = Table(title=f"Dead letters ({len(letters)})")
    for column in ("id", "when (UTC)", "topic", "consumer", "event", "reason", "status"):
        table.add_column(column, overflow="fold")
    for x in letters:
        table.add_row(
            x.dead_letter_id,
            f"{x.at:%Y-%m-%d %H:%M:%S}",
            x.topic,
            x.consumer,
            f"{x.event_id or '?'}\n{x.event_type or '(not a CloudEvent)'}",
            x.reason[:300],
            _status(x),
        )
    # A console of this call's own, so the table takes the terminal's width now (COLUMNS),
    # not the width when the module was first imported.
    Console().print(table)


@dead_letters_app.command("show")
def dead_letters_show(
    dead_letter_id: Annotated[str, typer.Argument(help="The id `list` shows (partition-offset).")],
    log_url: LogUrl = None,
    data_dir: DataDir = Path("var"),
) -> None:
    """One dead letter: the reason, where it came from, and the record itself."""
    letters = {x.dead_letter_id: x for x in _on_log(log_url, data_dir, dead_letters)}
    letter = letters.get(dead_letter_id)
    if letter is None:
        _fail(f"no dead letter {dead_letter_id} on the log")
        return
    document = {
        "dead_letter_id": letter.dead_letter_id,
        "at": letter.at.isoformat(),
        "consumer": letter.consumer,
        "reason": letter.reason,
        "topic": letter.topic,
        "partition": letter.partition,
        "offset": letter.offset,
        "key": letter.key,
        "council": letter.council,
        "redriven": None
        if letter.redriven is None
        else {
            "action_id": letter.redriven.action_id,
            "at": letter.redriven.at.isoformat(),
            "performed_by": letter.redriven.performed_by,
            "reason": letter.redriven.reason,
        },
        "record": letter.record(),
    }
    typer.echo(json.dumps(document, indent=2, ensure_ascii=False))


@dead_letters_app.command("redrive")
def dead_letters_redrive(
    council: CouncilOpt,
    reason: Reason,
    dead_letter_ids: Annotated[
        list[str] | None, typer.Argument(help="Dead letter ids, as `list` shows them.")
    ] = None,
    all_: Annotated[
        bool, typer.Option("--all", help="Every dead letter of the council not yet re-driven.")
    ] = False,
    user: User = None,
    log_url: LogUrl = None,
    data_dir: DataDir = Path("var"),
) -> None:
    """Re-publish the records of dead letters to their topics, once each."""
    _checked(council, reason)
    if bool(dead_letter_ids) == all_:
        _fail("name the dead letters to re-drive, or --all (not both)")
    done = _on_log(
        log_url,
        data_dir,
        lambda log: redrive(
            log,
            dead_letter_ids=None if all_ else list(dead_letter_ids or ()),
            council=council,
            performed_by=_performer(user),
            reason=reason.strip(),
        ),
    )
    if done is None:
        console.print("Nothing to re-drive: every dead letter chosen was re-driven already.")
        return
    _done(done, f"Re-drove {len(done.action.dead_letter_ids)} dead letter(s)")
