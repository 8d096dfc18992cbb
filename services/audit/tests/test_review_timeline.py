"""How the timeline words a direct payment's review and an unscheduled review brought
forward by an event in the person's life."""

from __future__ import annotations

import uuid
from datetime import date

from contracts import events as ev
from contracts.envelope import Envelope, decode
from contracts.golden.make_golden import golden_file
from services.audit.domain import facts_from, link, timeline_entry


def summary_of(envelope: Envelope) -> str:
    return timeline_entry(link(facts_from(envelope), None), envelope.event).summary


def test_a_direct_payments_review_is_named_on_the_timeline() -> None:
    scheduled = decode(golden_file(ev.ReviewScheduled.type).read_bytes())
    due = decode(golden_file(ev.ReviewDue.type).read_bytes())
    assert summary_of(scheduled) == "Direct payment review scheduled for 2025-08-11"
    assert summary_of(due) == "Direct payment review due on 2025-08-11"


def test_an_unscheduled_review_says_what_brought_it_forward() -> None:
    scheduled = ev.ReviewScheduled(
        person_id="p-1",
        council="lancashire",
        review_id=uuid.uuid4(),
        plan_id=uuid.uuid4(),
        kind=ev.ReviewKind.UNSCHEDULED,
        due_on=date(2026, 12, 15),
        reason="carer stopped on 2026-12-01",
        scheduled_by="care_manager:cm-1",
        trigger=ev.ReviewTrigger.CARER_STOPPED,
        happened_on=date(2026, 12, 1),
        policy_version="lancashire/2009.1",
    )
    assert summary_of(Envelope(event=scheduled)) == (
        "Unscheduled review scheduled for 2026-12-15 after carer stopped on 2026-12-01"
    )
