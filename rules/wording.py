"""How the rules put figures into words for a case worker or the person."""

from __future__ import annotations


def group_words(client_group: str) -> str:
    """A client group as words: `mental_health` is "mental health"."""
    return client_group.replace("_", " ")


def percent(basis_points: int) -> str:
    """Basis points as a percentage: 7500 is "75%", 1050 is "10.50%"."""
    whole, rest = divmod(basis_points, 100)
    return f"{whole}%" if rest == 0 else f"{whole}.{rest:02d}%"
