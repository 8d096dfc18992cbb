"""Bulk conversion rows: a row that does not validate is refused in its place, with its ref."""

from __future__ import annotations

from pydantic import BaseModel

from servicekit.bulk import ConversionOut, RowResult, merge_refused, validated_rows


class Row(BaseModel):
    ref: str
    amount_pence: int


def test_invalid_rows_are_refused_in_their_places_and_the_valid_ones_kept_in_order() -> None:
    raw = [
        {"ref": "a", "amount_pence": 100},
        {"ref": "b", "amount_pence": "lots"},
        "not a row",
        {"ref": "d", "amount_pence": 400},
    ]
    valid, refused = validated_rows(raw, Row)
    assert [(content["ref"], row.amount_pence) for content, row in valid] == [
        ("a", 100),
        ("d", 400),
    ]
    assert sorted(refused) == [1, 2]
    assert (refused[1].ref, refused[1].status) == ("b", 422)
    # What was expected, in words: not pydantic's report, which repeats the input.
    assert refused[1].detail == "amount_pence: expected a whole number"
    assert "lots" not in (refused[1].detail or "")
    assert refused[2].ref == "row 2"  # no ref of its own to name it by

    applied = [RowResult(ref=row.ref, outcome="done", status=200) for _, row in valid]
    out = merge_refused(
        ConversionOut(done=2, already_done=0, pending=0, rejected=0, rows=applied), refused
    )
    assert [r.ref for r in out.rows] == ["a", "b", "row 2", "d"]
    assert out.rejected == 2
