"""Filling a CLD extract's identifying columns from assessment's answer (contracts.cld)."""

from __future__ import annotations

from contracts.cld import people_in, with_identities
from services.audit.returns import CLD_FIELDS, to_csv


def row(person_id: str, event: str, **values: str) -> dict[str, str]:
    return {
        **dict.fromkeys(CLD_FIELDS, ""),
        "LA_Person_Unique_Identifier": person_id,
        "Event_Type": event,
        **values,
    }


def test_identities_fill_only_the_blank_identity_columns_of_the_people_named() -> None:
    extract = to_csv(
        CLD_FIELDS,
        [
            row("p-1", "Assessment", Client_Type="Service User"),
            row("p-2", "Assessment", Postcode="PR1 1AA"),
            row("p-1", "Service", Client_Type="Service User"),
        ],
    )
    assert people_in(extract) == ["p-1", "p-2"]
    filled = with_identities(
        extract,
        {
            "p-1": {"nhs_number": "9434765005", "date_of_birth": "1951-11-02", "postcode": None},
            "p-2": {"nhs_number": None, "date_of_birth": None, "postcode": "LA1 4RD"},
        },
    )
    expected = to_csv(
        CLD_FIELDS,
        [
            row("p-1", "Assessment", Client_Type="Service User", NHS_Number="9434765005",
                Date_of_Birth="1951-11-02"),
            row("p-2", "Assessment", Postcode="PR1 1AA"),  # what audit gave is kept
            row("p-1", "Service", Client_Type="Service User", NHS_Number="9434765005",
                Date_of_Birth="1951-11-02"),
        ],
    )  # fmt: skip
    assert filled == expected


def test_an_empty_extract_stays_as_it_is() -> None:
    extract = to_csv(CLD_FIELDS, [])
    assert people_in(extract) == [] and with_identities(extract, {}) == extract
