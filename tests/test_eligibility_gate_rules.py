"""rules.eligibility.validation_basis: a budget is calculated only for eligible needs, or
for a recorded reason to go ahead without an eligible determination."""

from __future__ import annotations

from datetime import date
from uuid import UUID

import pytest
from hypothesis import given
from hypothesis import strategies as st

from contracts.events import ValidationBasis
from rules.eligibility import (
    GOING_AHEAD_REASONS,
    MIN_EXPLANATION_CHARS,
    DeterminationOnRecord,
    ExplanationTooShort,
    GoingAhead,
    NeedsNotEligible,
    NoDetermination,
    validation_basis,
)

determinations = st.none() | st.builds(
    DeterminationOnRecord,
    determination_id=st.uuids(),
    eligible=st.booleans(),
    determined_on=st.dates(date(2015, 4, 1), date(2030, 12, 31)),
)
reasons = st.sampled_from(sorted(GOING_AHEAD_REASONS))
going_ahead = st.none() | st.builds(
    GoingAhead, reason=reasons, explanation=st.text(min_size=0, max_size=40)
)


@given(latest=determinations, going=going_ahead)
def test_validation_goes_ahead_only_for_eligible_needs_or_an_explained_reason(
    latest: DeterminationOnRecord | None, going: GoingAhead | None
) -> None:
    explained = going is not None and len(going.explanation.strip()) >= MIN_EXPLANATION_CHARS
    eligible = latest is not None and latest.eligible
    try:
        basis = validation_basis(latest, going, in_force=True)
    except (NoDetermination, NeedsNotEligible):
        assert going is None and not eligible
        return
    except ExplanationTooShort:
        assert going is not None and not explained
        return
    assert eligible or explained
    if going is None:
        assert basis.basis is ValidationBasis.ELIGIBLE and basis.explanation is None
    else:
        assert basis.basis is going.reason and basis.explanation == going.explanation.strip()
    # Whatever it rested on, the latest determination (or its absence) travels with it.
    assert basis.determination_id == (latest.determination_id if latest else None)
    assert basis.determined_eligible == (latest.eligible if latest else None)


def test_needs_found_not_eligible_say_how_to_go_on() -> None:
    latest = DeterminationOnRecord(UUID(int=7), eligible=False, determined_on=date(2026, 4, 6))
    with pytest.raises(NeedsNotEligible, match=r"2026-04-06.*redetermine.*urgent_need"):
        validation_basis(latest, None, in_force=True)


def test_a_conversion_goes_ahead_without_any_determination() -> None:
    basis = validation_basis(
        None,
        GoingAhead(ValidationBasis.CONVERTED_FROM_LEGACY_SYSTEM, "Supported since 2019"),
        in_force=True,
    )
    assert basis.basis is ValidationBasis.CONVERTED_FROM_LEGACY_SYSTEM
    assert basis.determination_id is None


def test_before_the_care_act_there_is_nothing_to_determine_and_the_basis_says_so() -> None:
    basis = validation_basis(None, None, in_force=False)
    assert basis.basis is ValidationBasis.NO_CRITERIA_IN_FORCE
