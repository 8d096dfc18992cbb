"""Line charts as inline SVG, drawn on the server (no script), each with a table beside it.

The SVG is an image with a title and a description; the same figures are in an HTML
table under it, so a screen reader user or a keyboard user reads the numbers, not the
picture. Lines differ in dash pattern and marker shape as well as colour (WCAG 1.4.1).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from html import escape

from markupsafe import Markup

from services.portal.formatting import long_date

# Colours with at least 3:1 contrast against white (WCAG 1.4.11, non-text contrast).
PALETTE = ("#1d70b8", "#b58840", "#00703c", "#d4351c", "#4c2c92", "#505a5f")
DASHES = ("", "8 4", "2 3", "12 4 2 4", "4 4", "1 5")


@dataclass(frozen=True)
class Series:
    name: str
    points: Sequence[tuple[date, float]]
    step: bool = True  # a value holds until it changes (a budget, a running total)
    holds_until: date | None = None  # where a step line stops; default the chart's end


def _nice_step(span: float, ticks: int = 5) -> float:
    if span <= 0:
        return 1.0
    raw = span / ticks
    magnitude = float(10 ** math.floor(math.log10(raw)))
    for factor in (1, 2, 2.5, 5, 10):
        if raw <= factor * magnitude:
            return factor * magnitude
    return 10 * magnitude


def line_chart(
    series: Sequence[Series],
    *,
    chart_id: str,
    title: str,
    description: str,
    value_label: Callable[[float], str],
    until: date | None = None,
    y_max: float | None = None,
    width: int = 720,
    height: int = 300,
) -> Markup:
    """An SVG line chart over dates; empty series are left out."""
    drawn = [s for s in series if s.points]
    days = [d for s in drawn for d, _ in s.points]
    if until is not None:
        days.append(until)
    if not drawn:
        return Markup("")
    first, last = min(days), max(days)
    if first == last:
        last = date.fromordinal(first.toordinal() + 1)
    top = max([v for s in drawn for _, v in s.points] + [y_max or 0, 1.0])
    step = _nice_step(top)
    top = math.ceil(top / step) * step
    left, right, upper, lower = 96, 16, 16, 40
    plot_w, plot_h = width - left - right, height - upper - lower

    def x(day: date) -> float:
        return left + plot_w * (day.toordinal() - first.toordinal()) / (
            last.toordinal() - first.toordinal()
        )

    def y(value: float) -> float:
        return upper + plot_h * (1 - value / top)

    parts = [
        f'<svg id="{chart_id}" class="chart" viewBox="0 0 {width} {height}" role="img" '
        f'aria-labelledby="{chart_id}-title {chart_id}-desc" xmlns="http://www.w3.org/2000/svg">',
        f'<title id="{chart_id}-title">{escape(title)}</title>',
        f'<desc id="{chart_id}-desc">{escape(description)}</desc>',
    ]
    tick = 0.0
    while tick <= top + 1e-9:
        ty = y(tick)
        parts.append(
            f'<line x1="{left}" x2="{width - right}" y1="{ty:.1f}" y2="{ty:.1f}" '
            'stroke="#b1b4b6" stroke-width="1"/>'
            f'<text x="{left - 8}" y="{ty + 4:.1f}" text-anchor="end" font-size="12" '
            f'fill="#0b0c0c">{escape(value_label(tick))}</text>'
        )
        tick += step
    middle = date.fromordinal((first.toordinal() + last.toordinal()) // 2)
    for day, anchor in ((first, "start"), (middle, "middle"), (last, "end")):
        parts.append(
            f'<text x="{x(day):.1f}" y="{height - 14}" text-anchor="{anchor}" font-size="12" '
            f'fill="#0b0c0c">{escape(long_date(day))}</text>'
        )
    for index, s in enumerate(drawn):
        colour, dash = PALETTE[index % len(PALETTE)], DASHES[index % len(DASHES)]
        points = sorted(s.points, key=lambda point: point[0])  # same-day order kept
        coords: list[tuple[float, float]] = []
        for n, (day, value) in enumerate(points):
            if s.step and n > 0:
                coords.append((x(day), y(points[n - 1][1])))
            coords.append((x(day), y(value)))
        end = min(s.holds_until or last, last)
        if s.step and end > points[-1][0]:
            coords.append((x(end), y(points[-1][1])))
        path = " ".join(f"{px:.1f},{py:.1f}" for px, py in coords)
        dash_attr = f' stroke-dasharray="{dash}"' if dash else ""
        parts.append(
            f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="3"{dash_attr}/>'
        )
        for day, value in points:
            cx, cy = x(day), y(value)
            if index % 2:
                parts.append(
                    f'<rect x="{cx - 4:.1f}" y="{cy - 4:.1f}" width="8" height="8" '
                    f'fill="{colour}"/>'
                )
            else:
                parts.append(f'<circle cx="{cx:.1f}" cy="{cy:.1f}" r="4" fill="{colour}"/>')
    parts.append("</svg>")
    legend = "".join(
        f'<li><svg width="36" height="12" aria-hidden="true" focusable="false">'
        f'<line x1="0" x2="36" y1="6" y2="6" stroke="{PALETTE[i % len(PALETTE)]}" '
        f'stroke-width="3"'
        + (f' stroke-dasharray="{DASHES[i % len(DASHES)]}"' if DASHES[i % len(DASHES)] else "")
        + f"/></svg> {escape(s.name)}</li>"
        for i, s in enumerate(drawn)
    )
    return Markup(
        f'<figure class="chart-figure">{"".join(parts)}'
        f'<figcaption><ul class="legend">{legend}</ul></figcaption></figure>'
    )
