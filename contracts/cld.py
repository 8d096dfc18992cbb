"""The identifying columns of a Client Level Data extract, filled in by the caller.

Audit builds the extract from events, which never carry personal details, so its NHS
number, date of birth and postcode columns come out blank. Whoever downloads the extract
for the council (`pbj returns cld`, the portal) asks assessment for those people's
details (`POST /v1/people/identities`, the roles that may download the extract) and fills
them in here; nothing is stored on the way. Names stay blank: the journey records one
name, and splitting it into the return's first and last name would be a guess.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping

from servicekit.csvexport import csv_text

PERSON_COLUMN = "LA_Person_Unique_Identifier"
MAX_PEOPLE_PER_REQUEST = 1000
"""How many people one `POST /v1/people/identities` may name."""
IDENTITY_COLUMNS = {
    "nhs_number": "NHS_Number",
    "date_of_birth": "Date_of_Birth",
    "postcode": "Postcode",
}
"""Assessment's identity fields and the CLD column each fills."""


def people_in(extract: str) -> list[str]:
    """The people an extract's rows name, each once, in the order they first appear."""
    rows = csv.DictReader(io.StringIO(extract, newline=""))
    return list(dict.fromkeys(row[PERSON_COLUMN] for row in rows if row.get(PERSON_COLUMN)))


def with_identities(extract: str, identities: Mapping[str, Mapping[str, str | None]]) -> str:
    """The extract with each named person's identity columns filled where they are blank.

    `identities`: by person id, assessment's answer for them (`nhs_number`,
    `date_of_birth` as YYYY-MM-DD, `postcode`). Rows, their order and every other
    column are as they were; the CSV keeps its CRLF line ends.
    """
    reader = csv.reader(io.StringIO(extract, newline=""))
    header = next(reader, None)
    if header is None:
        return extract
    person = header.index(PERSON_COLUMN)
    columns = {field: header.index(column) for field, column in IDENTITY_COLUMNS.items()}
    filled = []
    for row in reader:
        identity = identities.get(row[person], {})
        for field, at in columns.items():
            if not row[at] and identity.get(field):
                row[at] = str(identity[field])
        filled.append(row)
    return csv_text(header, filled)
