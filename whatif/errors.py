"""What can go wrong in a what-if run, in words an officer can act on."""

from __future__ import annotations


class WhatIfError(ValueError):
    """A what-if run that cannot go ahead; the message says why and what to do."""


class DifferentCouncil(WhatIfError):
    def __init__(self, proposed: str, council: str) -> None:
        super().__init__(
            f"council: the proposed policy is for {proposed!r} but the run is for "
            f"{council!r}; a proposed policy can only be compared with its own council's"
        )


class UnknownCouncil(WhatIfError):
    def __init__(self, council: str, known: list[str], where: str) -> None:
        super().__init__(
            f"council {council!r} has no policy in force in {where}; "
            f"the councils there are: {', '.join(known) or 'none'}"
        )


class EventLogNotFound(WhatIfError):
    def __init__(self, url: str) -> None:
        super().__init__(f"there is no event log at {url}: check --log (nothing was created there)")


class EmptyCohort(WhatIfError):
    def __init__(self, council: str, url: str, records: int, others: dict[str, int]) -> None:
        elsewhere = (
            "; it holds validated assessments for "
            + ", ".join(f"{c} ({n:,} people)" for c, n in sorted(others.items()))
            if others
            else ""
        )
        super().__init__(
            f"empty cohort: no validated assessment for council {council!r} in the event log "
            f"at {url} ({records:,} records read){elsewhere}"
        )
