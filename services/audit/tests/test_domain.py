"""The audit rules, pure: the hash chain and its verification, as-of budgets, the KPIs.

Seed 000 = Putting People First (NI130: 30% by 2010-11); seed 001 = Barnet scrutiny report
(2,246 PBs of 6,704 community-based clients = 33.50%); seed 003 = Self-Directed Support in
Lancashire (ch.1: Lancashire's stricter definition of having a personal budget).
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
import uuid
from datetime import date

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from msgspec.structs import replace

from contracts.envelope import Envelope
from services.audit.domain import (
    GENESIS_HASH,
    BadDateRange,
    ChainHead,
    EventFacts,
    GroupBy,
    PersonInputs,
    StoredEvent,
    UnknownEventTypeFilter,
    _hashed_columns,
    apply_to_inputs,
    budget_history,
    chain,
    chain_hash,
    check_date_range,
    end_of_day,
    event_of,
    facts_from,
    has_lancashire_pb,
    lancashire_measure,
    ni130,
    one_year_before,
    percentage,
    project_person,
    replay_order,
    types_matching,
    verify_chain,
)
from services.audit.tests.journey import Journey, at

DOCUMENT_KEYS = (
    "id",
    "type",
    "source",
    "time",
    "subject",
    "correlationid",
    "causationid",
    "policyversion",
    "data",
)
"""The keys of an event's canonical document that has no actor."""


def stored_chain(envelopes: list[Envelope]) -> list[StoredEvent]:
    return chain(facts_from(e) for e in envelopes)


def head_of(links: list[StoredEvent]) -> ChainHead:
    return links[-1].head()


# --- the chain -----------------------------------------------------------------------------


def test_the_first_event_links_to_sixty_four_zeros_and_hashes_prev_plus_document() -> None:
    (first,) = stored_chain([Journey("p-1").started(at("2025-01-06"))])
    assert first.seq == 1
    assert first.prev_hash == GENESIS_HASH == "0" * 64
    expected = hashlib.sha256(("0" * 64 + first.canonical).encode()).hexdigest()
    assert first.hash == expected


def test_the_canonical_document_is_the_sorted_compact_envelope() -> None:
    envelope = Journey("p-1").budget(at("2025-01-20"))
    document = facts_from(envelope).canonical()
    parsed = json.loads(document)
    assert list(parsed) == sorted(parsed)
    assert set(parsed) == set(DOCUMENT_KEYS)
    assert parsed["time"] == "2025-01-20T10:00:00.000000+00:00"
    assert parsed["data"]["weekly_pence"] == 25_000
    assert ", " not in document and ": " not in document
    assert document == json.dumps(parsed, sort_keys=True, separators=(",", ":"))


def test_each_link_carries_the_hash_of_the_one_before() -> None:
    links = stored_chain(Journey("p-1").full())
    assert [s.seq for s in links] == list(range(1, 11))
    for before, after in itertools.pairwise(links):
        assert after.prev_hash == before.hash
        assert after.hash == chain_hash(before.hash, after.canonical)


def test_a_sound_chain_of_a_whole_journey_verifies() -> None:
    links = stored_chain(Journey("p-1").full())
    report = verify_chain("p-1", links, head_of(links))
    assert report.ok and report.events == 10 and report.first_bad_seq is None
    assert report.head_hash == links[-1].hash


def test_an_edited_event_is_named_by_its_seq() -> None:
    links = stored_chain(Journey("p-1").full())
    edited = links[2].canonical.replace('"weekly_pence":25000', '"weekly_pence":99999')
    assert edited != links[2].canonical
    links[2] = replace(links[2], canonical=edited)
    report = verify_chain("p-1", links, head_of(links))
    assert not report.ok
    assert report.first_bad_seq == 3 and report.first_bad_event_id == links[2].event_id
    assert "edited" in (report.reason or "")


def test_an_edit_with_a_recomputed_hash_is_named_through_the_next_link() -> None:
    # seq 4's link breaks; the head vouches for seq 4, so seq 3 is the bad one
    links = stored_chain(Journey("p-1").full())
    edited = links[2].canonical.replace('"weekly_pence":25000', '"weekly_pence":99999')
    links[2] = replace(links[2], canonical=edited, hash=chain_hash(links[2].prev_hash, edited))
    report = verify_chain("p-1", links, head_of(links))
    assert report.first_bad_seq == 3 and report.first_bad_event_id == links[2].event_id
    assert "prev_hash" in (report.reason or "")


def test_without_a_head_a_broken_link_names_its_later_end() -> None:
    links = stored_chain(Journey("p-1").full())
    edited = links[2].canonical.replace('"weekly_pence":25000', '"weekly_pence":99999')
    links[2] = replace(links[2], canonical=edited, hash=chain_hash(links[2].prev_hash, edited))
    report = verify_chain("p-1", links, None)
    assert report.first_bad_seq == 4 and "prev_hash" in (report.reason or "")


def test_a_forged_event_with_a_sound_link_of_its_own_is_named_not_the_next() -> None:
    journey = Journey("p-1")
    links = stored_chain(journey.full())
    head = head_of(links)
    forged = stored_chain([journey.paid(at("2025-01-30"))])[0]
    forged = replace(
        forged, seq=3, prev_hash=links[1].hash, hash=chain_hash(links[1].hash, forged.canonical)
    )
    shifted = [*links[:2], forged, *(replace(s, seq=s.seq + 1) for s in links[2:])]
    report = verify_chain("p-1", shifted, head)
    assert report.first_bad_seq == 3 and report.first_bad_event_id == forged.event_id
    assert "inserted" in (report.reason or "")


def test_a_tail_rewritten_with_fresh_hashes_is_caught_only_at_the_head() -> None:
    links = stored_chain(Journey("p-1").full())
    head = head_of(links)
    edited = links[2].canonical.replace('"weekly_pence":25000', '"weekly_pence":99999')
    links[2] = replace(links[2], canonical=edited)
    for index in range(2, len(links)):
        prev = links[index - 1].hash
        links[index] = replace(
            links[index], prev_hash=prev, hash=chain_hash(prev, links[index].canonical)
        )
    assert verify_chain("p-1", links, head_of(links)).ok  # with its head forged too: sound
    report = verify_chain("p-1", links, head)
    assert not report.ok and report.first_bad_seq == 10
    assert "rewritten at or before seq 10" in (report.reason or "")


def test_a_deleted_event_is_named_as_the_missing_seq() -> None:
    links = stored_chain(Journey("p-1").full())
    head = head_of(links)
    del links[4]
    report = verify_chain("p-1", links, head)
    assert report.first_bad_seq == 5 and "missing" in (report.reason or "")


def test_a_deleted_last_event_is_caught_by_the_head() -> None:
    links = stored_chain(Journey("p-1").full())
    head = head_of(links)
    report = verify_chain("p-1", links[:-1], head)
    assert report.first_bad_seq == 10 and "missing" in (report.reason or "")


def test_an_event_added_beyond_the_head_is_named() -> None:
    journey = Journey("p-1")
    links = stored_chain([*journey.full(), journey.paid(at("2025-06-01"))])
    report = verify_chain("p-1", links, links[9].head())
    assert report.first_bad_seq == 11 and "beyond the chain head" in (report.reason or "")


def test_two_swapped_events_are_named_by_the_first_position() -> None:
    links = stored_chain(Journey("p-1").full())
    second, third = links[1], links[2]
    links[1], links[2] = replace(third, seq=2), replace(second, seq=3)
    report = verify_chain("p-1", links, head_of(links))
    assert report.first_bad_seq == 2 and "prev_hash" in (report.reason or "")


def test_an_inserted_event_is_named() -> None:
    journey = Journey("p-1")
    links = stored_chain(journey.full())
    forged = stored_chain([journey.paid(at("2025-01-30"))])[0]
    forged = replace(forged, seq=3, prev_hash=links[1].hash)  # its own hash is stale
    shifted = [*links[:2], forged, *(replace(s, seq=s.seq + 1) for s in links[2:])]
    report = verify_chain("p-1", shifted, replace(head_of(links), last_seq=11))
    assert report.first_bad_seq == 3 and report.first_bad_event_id == forged.event_id


def test_a_stored_column_that_disagrees_with_the_hashed_document_is_named() -> None:
    links = stored_chain(Journey("p-1").full())
    links[5] = replace(links[5], type="pb.planning.review-due.v1")
    report = verify_chain("p-1", links, head_of(links))
    assert report.first_bad_seq == 6 and "type" in (report.reason or "")


_JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner),
    max_leaves=6,
)


@st.composite
def stored_documents(draw: st.DrawFn) -> str:
    """A journey event's canonical document, or one a row edited behind the service might
    hold: values of any JSON type, keys missing, a key written twice, data not an object,
    a time that is no time, or text that is no JSON at all."""
    facts = facts_from(draw(st.sampled_from(Journey("p-1").full())))
    document: dict[str, object] = json.loads(facts.canonical())
    for key in draw(st.lists(st.sampled_from(DOCUMENT_KEYS), max_size=3, unique=True)):
        action = draw(st.sampled_from(["drop", "retype", "mistime"]))
        if action == "drop":
            document.pop(key)
        elif action == "retype":
            document[key] = draw(_JSON_VALUES)
        else:
            document[key] = draw(st.sampled_from(["2025-13-01", "", "10:00", "2025-01-06"]))
    text = json.dumps(document, sort_keys=True, separators=(",", ":"))
    edit = draw(st.sampled_from(["none", "twice", "truncate"]))
    if edit == "twice" and document:
        key = draw(st.sampled_from(sorted(document)))
        text = text[:-1] + "," + json.dumps(key) + ":" + json.dumps(draw(_JSON_VALUES)) + "}"
    elif edit == "truncate":
        text = text[: draw(st.integers(0, max(0, len(text) - 1)))]
    return text


def _columns_the_long_way(canonical: str) -> object:
    try:
        facts = EventFacts.from_canonical(canonical)
    except (ValueError, KeyError, TypeError) as err:
        return type(err)
    return (
        facts.event_id,
        facts.type,
        facts.person_id,
        facts.time,
        facts.correlation_id,
        facts.causation_id,
        facts.policy_version,
    )


@settings(max_examples=400, deadline=None, derandomize=True)
@given(stored_documents())
def test_verification_reads_a_documents_columns_as_reading_its_facts_does(canonical: str) -> None:
    """Verifying reads each document's columns without its data; whatever the document,
    what it reads (or refuses) is what reading the whole document gives."""
    try:
        fast: object = _hashed_columns(canonical)
    except (ValueError, KeyError, TypeError) as err:
        fast = type(err)
    assert fast == _columns_the_long_way(canonical)


def test_a_document_reads_back_as_the_same_facts() -> None:
    facts = facts_from(Journey("p-1").validated(at("2025-01-13")))
    again = EventFacts.from_canonical(facts.canonical())
    assert again.canonical() == facts.canonical()


# --- replay order --------------------------------------------------------------------------


def test_a_replay_keeps_a_verified_chains_order_then_adds_new_events_in_log_order() -> None:
    log = [(0, "review"), (1, "payment"), (2, "new-b"), (3, "new-a")]
    old = {"payment": 1, "review": 2}
    assert replay_order(log, old) == ["payment", "review", "new-b", "new-a"]


def test_a_replay_without_an_old_chain_follows_the_log() -> None:
    assert replay_order([(5, "b"), (2, "a")], {}) == ["a", "b"]


def test_events_the_log_lacks_keep_their_place_from_the_old_chain() -> None:
    assert replay_order([(0, "c")], {"a": 1, "b": 2, "c": 3}) == ["a", "b", "c"]


# --- filters -------------------------------------------------------------------------------


def test_a_type_filter_takes_a_short_name_or_a_full_type() -> None:
    assert types_matching("budget-issued") == {"pb.allocation.budget-issued.v1"}
    assert types_matching("pb.planning.review-due.v1") == {"pb.planning.review-due.v1"}


def test_an_unknown_type_filter_is_refused_naming_the_field() -> None:
    with pytest.raises(UnknownEventTypeFilter, match="type: 'budget-spent'"):
        types_matching("budget-spent")


def test_a_date_range_must_not_run_backwards() -> None:
    with pytest.raises(BadDateRange, match="since"):
        check_date_range(date(2025, 2, 1), date(2025, 1, 1))
    check_date_range(date(2025, 1, 1), date(2025, 1, 1))


def test_the_end_of_a_day_is_the_next_midnight_utc() -> None:
    assert end_of_day(date(2025, 1, 6)).isoformat() == "2025-01-07T00:00:00+00:00"


# --- the as-of budget history --------------------------------------------------------------


def test_a_budget_revised_later_shows_the_earlier_revision_as_of_an_earlier_date() -> None:
    journey = Journey("p-1")
    links = stored_chain(
        [
            journey.started(at("2025-01-06")),
            journey.validated(at("2025-01-13")),
            journey.budget(at("2025-01-20"), revision=1, weekly_pence=25_000),
            journey.budget(
                at("2025-03-03"),
                revision=2,
                weekly_pence=41_500,
                reason="2:1 support not captured by points (seed 003 ch.2 §iii)",
            ),
        ]
    )
    before = budget_history("p-1", links, date(2025, 2, 1))
    assert [b.revision for b in before.budgets] == [1]
    assert before.budgets[0].current and before.budgets[0].weekly_pence == 25_000
    after = budget_history("p-1", links, date(2025, 3, 3))
    assert [(b.revision, b.current) for b in after.budgets] == [(1, False), (2, True)]
    assert after.budgets[1].weekly_pence == 41_500


def test_as_of_a_date_counts_that_whole_day_and_nothing_after() -> None:
    journey = Journey("p-1")
    links = stored_chain(
        [
            journey.started(at("2025-01-06", hour=23)),
            journey.validated(at("2025-01-07", hour=0)),
        ]
    )
    history = budget_history("p-1", links, date(2025, 1, 6))
    assert history.events == 1 and history.assessment is not None
    assert history.assessment.status == "started" and history.assessment.domain_levels is None


def test_a_whole_journey_as_of_its_end() -> None:
    history = budget_history("p-1", stored_chain(Journey("p-1").full()), date(2025, 12, 31))
    assert history.assessment is not None and history.assessment.status == "validated"
    assert history.assessment.domain_levels is not None
    assert history.assessment.domain_levels["staying_safe"] == 5
    assert history.plan is not None and history.plan.status == "signed_off"
    assert history.plan.weekly_pence == 24_000
    assert history.deployment is not None and history.deployment.net_annual_pence == 24_000 * 52
    assert history.deployment.agreement_signed_on == date(2025, 2, 3)
    assert len(history.schedules) == 1
    assert len(history.payments) == 1 and history.payments_total_pence == 96_000
    assert [(r.status, r.completed_on) for r in history.reviews] == [
        ("completed", date(2025, 3, 17))
    ]


def test_a_review_shows_as_scheduled_before_it_is_completed() -> None:
    history = budget_history("p-1", stored_chain(Journey("p-1").full()), date(2025, 2, 28))
    assert [(r.status, r.due_on) for r in history.reviews] == [("scheduled", date(2025, 3, 17))]


# --- projections ---------------------------------------------------------------------------


def test_projections_folded_one_event_at_a_time_equal_a_rebuild() -> None:
    links = stored_chain(Journey("p-1", team="south", key_worker_id="kw-9").full())
    inputs: PersonInputs | None = None
    for link in links:
        inputs = apply_to_inputs(inputs, link, event_of(link))
    rebuilt, timeline = project_person(links)
    assert rebuilt == inputs
    assert rebuilt is not None and rebuilt.team == "south" and rebuilt.events == 10
    assert rebuilt.last_review_completed_on == date(2025, 3, 17)
    assert [entry.seq for entry in timeline] == list(range(1, 11))
    assert "£250.00 a week" in timeline[2].summary


# --- KPIs ----------------------------------------------------------------------------------


def person(
    n: int,
    *,
    community_based: bool = True,
    team: str = "north",
    budget: bool = False,
    signed_off: bool = False,
    paid: bool = False,
    key_worker: str = "kw-1",
) -> PersonInputs:
    return PersonInputs(
        person_id=f"p-{n}",
        council="barnet",
        team=team,
        key_worker_id=key_worker,
        community_based=community_based,
        assessed_at=at("2010-05-01"),
        budget_issued_at=at("2010-06-01") if budget else None,
        plan_signed_off_at=at("2010-07-01") if signed_off else None,
        payment_released_at=at("2010-08-01") if paid else None,
    )


def test_percentages_have_two_places_rounded_half_up_without_floats() -> None:
    assert percentage(2_246, 6_704) == "33.50"  # seed 001 §9.7: Barnet's 2010-11 outturn
    assert percentage(2, 6) == "33.33"
    assert percentage(1, 8) == "12.50"
    assert percentage(2, 3) == "66.67"
    assert percentage(0, 0) == "0.00"


def test_ni130_counts_community_based_people_with_an_indicative_budget_or_better() -> None:
    # Barnet-like (seed 001): a third of community-based people on self-directed support.
    people = [
        person(1, budget=True),
        person(2, signed_off=True),  # further on than an indicative budget still counts
        person(3),
        person(4),
        person(5),
        person(6),
        person(7, community_based=False, budget=True),  # not community-based: not counted
    ]
    result = ni130(people, GroupBy.COUNCIL, date(2011, 3, 31))
    assert (result.total.numerator, result.total.denominator) == (2, 6)
    assert result.total.percentage == "33.33"
    assert [(g.key, g.numerator, g.denominator) for g in result.groups] == [("barnet", 2, 6)]


def test_ni130_by_team_and_by_key_worker() -> None:
    people = [
        person(1, team="east", key_worker="kw-a", budget=True),
        person(2, team="east", key_worker="kw-b"),
        person(3, team="west", key_worker="kw-a", budget=True),
    ]
    by_team = ni130(people, GroupBy.TEAM, date(2011, 3, 31))
    assert [(g.key, g.percentage) for g in by_team.groups] == [
        ("east", "50.00"),
        ("west", "100.00"),
    ]
    by_worker = ni130(people, GroupBy.KEY_WORKER, date(2011, 3, 31))
    assert [(g.key, g.numerator, g.denominator) for g in by_worker.groups] == [
        ("kw-a", 2, 2),
        ("kw-b", 0, 1),
    ]


def test_ni130_as_of_a_date_ignores_what_happened_after_it() -> None:
    people = [person(1, budget=True), person(2)]
    assert ni130(people, GroupBy.COUNCIL, date(2010, 5, 31)).total.numerator == 0
    assert ni130(people, GroupBy.COUNCIL, date(2010, 6, 1)).total.numerator == 1
    assert ni130(people, GroupBy.COUNCIL, date(2010, 4, 30)).total.denominator == 0


def test_lancashire_needs_a_budget_a_signed_off_plan_with_money_and_a_recent_review() -> None:
    # Seed 003 ch.1: knows the indicative budget; plan signed off and money released;
    # reviewed at least once a year.
    reviewed = [(date(2010, 9, 1), at("2010-09-01"))]
    everything = person(1, budget=True, signed_off=True, paid=True)
    as_of = date(2011, 3, 31)
    assert has_lancashire_pb(everything, reviewed, as_of)
    assert not has_lancashire_pb(everything, [], as_of)
    assert not has_lancashire_pb(
        dataclasses.replace(everything, payment_released_at=None), reviewed, as_of
    )
    assert not has_lancashire_pb(
        dataclasses.replace(everything, plan_signed_off_at=None), reviewed, as_of
    )
    assert not has_lancashire_pb(
        dataclasses.replace(everything, budget_issued_at=None), reviewed, as_of
    )


def test_a_review_more_than_twelve_months_old_does_not_count() -> None:
    everything = person(1, budget=True, signed_off=True, paid=True)
    review = [(date(2010, 9, 1), at("2010-09-01"))]
    assert has_lancashire_pb(everything, review, date(2011, 9, 1))
    assert not has_lancashire_pb(everything, review, date(2011, 9, 2))


def test_a_review_audit_heard_of_after_the_date_does_not_count_as_of_it() -> None:
    everything = person(1, budget=True, signed_off=True, paid=True)
    late = [(date(2010, 9, 1), at("2010-10-01"))]
    assert not has_lancashire_pb(everything, late, date(2010, 9, 30))


def test_the_lancashire_measure_is_stricter_than_ni130() -> None:
    people = [
        person(1, budget=True, signed_off=True, paid=True),
        person(2, budget=True, signed_off=True, paid=True),
        person(3, budget=True),
    ]
    reviews = {"p-1": [(date(2010, 9, 1), at("2010-09-01"))]}
    as_of = date(2011, 3, 31)
    assert ni130(people, GroupBy.COUNCIL, as_of).total.numerator == 3
    result = lancashire_measure(people, reviews, GroupBy.COUNCIL, as_of)
    assert (result.total.numerator, result.total.denominator) == (1, 3)
    assert result.total.percentage == "33.33"


def test_a_year_before_a_leap_day_is_the_28th_of_february() -> None:
    assert one_year_before(date(2024, 2, 29)) == date(2023, 2, 28)
    assert one_year_before(date(2025, 3, 31)) == date(2024, 3, 31)


def test_a_fresh_person_has_no_milestones() -> None:
    links = stored_chain([Journey(f"p-{uuid.uuid4().hex[:8]}").started(at("2025-01-06"))])
    inputs, _ = project_person(links)
    assert inputs is not None and inputs.budget_issued_at is None and inputs.events == 1


def test_the_last_day_of_the_calendar_ends_at_the_last_instant_there_is() -> None:
    # Found by the API fuzz test: as_of=9999-12-31 overflowed to a 500.
    assert end_of_day(date.max).isoformat() == "9999-12-31T23:59:59.999999+00:00"


def test_a_year_before_a_date_in_year_one_is_the_first_day_there_is() -> None:
    assert one_year_before(date(1, 6, 15)) == date.min
    assert one_year_before(date(2, 6, 15)) == date(1, 6, 15)


def test_every_event_type_has_a_plain_summary_on_the_timeline() -> None:
    """A person's timeline (and the portal's journey) never shows a raw event type."""
    from contracts.envelope import decode
    from contracts.golden.make_golden import GOLDEN_DIR
    from services.audit.domain import facts_from, link, timeline_entry

    fixtures = sorted(GOLDEN_DIR.glob("*.json"))
    assert fixtures
    for path in fixtures:
        envelope = decode(path.read_bytes())
        stored = link(facts_from(envelope), None)
        entry = timeline_entry(stored, envelope.event)
        assert entry.summary != stored.type, f"{path.name} has no plain summary"
