"""The what-if report as one self-contained, accessible HTML page a councillor can read.

No scripts, no external CSS, fonts or images, nothing fetched from the network: the CSS is
inline and the two charts are SVG drawn here. Every chart has a title and a description
(its text alternative) and the same figures in a table beside it. Colours are the GOV.UK
palette, all at least 4.5:1 on white; no figure is shown by colour alone.
"""

from __future__ import annotations

from datetime import date, datetime
from html import escape

from contracts.money import WEEKS_PER_YEAR, div_round_half_up, format_pounds
from whatif.charging import ChargingComparison
from whatif.compare import (
    Bucket,
    Comparison,
    ContributionBasis,
    Outcome,
    PersonImpact,
    Tally,
    share,
)
from whatif.diff import words
from whatif.report import ASSUMPTIONS, RunInfo
from whatif.reviews import RecoupComparison, ReviewsComparison

INK = "#0b0c0c"
GREY = "#505a5f"
BLUE = "#1d70b8"
GREEN = "#00703c"
RED = "#d4351c"
SIDE_COLOUR = {Outcome.LOSER: RED, Outcome.UNCHANGED: GREY, Outcome.WINNER: GREEN}
MINUS = "\u2212"

CSS = f"""
body {{ font-family: Arial, Helvetica, sans-serif; color: {INK}; background: #fff;
  line-height: 1.45; margin: 0 auto; max-width: 62rem; padding: 1rem 1.25rem 3rem; }}
h1 {{ font-size: 2rem; margin: .5rem 0 .25rem; }}
h2 {{ font-size: 1.5rem; margin-top: 2.5rem; border-top: 2px solid #b1b4b6;
  padding-top: 1rem; }}
h3 {{ font-size: 1.15rem; margin-top: 1.5rem; }}
p.lede {{ font-size: 1.15rem; }}
.meta {{ color: {GREY}; }}
a {{ color: #1d70b8; }}
a:focus {{ outline: 3px solid #ffdd00; background: #ffdd00; color: {INK}; }}
.cards {{ display: grid; grid-template-columns: repeat(auto-fit, minmax(13rem, 1fr));
  gap: .75rem; margin: 1rem 0; padding: 0; list-style: none; }}
.cards li {{ border-left: 5px solid {BLUE}; background: #f3f2f1; padding: .6rem .8rem; }}
.cards .figure {{ display: block; font-size: 1.6rem; font-weight: bold; }}
table {{ border-collapse: collapse; width: 100%; margin: .75rem 0 1.25rem;
  font-size: .95rem; }}
caption {{ text-align: left; font-weight: bold; padding: .25rem 0 .5rem; }}
th, td {{ border-bottom: 1px solid #b1b4b6; padding: .35rem .5rem; text-align: left;
  vertical-align: top; }}
thead th {{ background: #f3f2f1; }}
td.n, th.n {{ text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }}
.loss {{ color: {RED}; font-weight: bold; }}
.gain {{ color: {GREEN}; font-weight: bold; }}
svg {{ max-width: 100%; height: auto; display: block; margin: .5rem 0; }}
svg text {{ font-family: Arial, Helvetica, sans-serif; fill: {INK}; }}
.note {{ border-left: 5px solid #b1b4b6; padding: .25rem .75rem; }}
@media print {{ h2 {{ break-before: auto; }} a {{ color: {INK}; }} }}
"""


def e(value: object) -> str:
    return escape(str(value), quote=True)


def signed(pence: int) -> str:
    """+£1.00, −£1.00, £0.00."""
    if pence > 0:
        return "+" + format_pounds(pence)
    if pence < 0:
        return MINUS + format_pounds(-pence)
    return format_pounds(0)


def compact(pence: int) -> str:
    """£12.3m, £456k, £789: short figures for chart labels."""
    pounds = abs(pence) // 100
    sign = MINUS if pence < 0 else ""
    if pounds >= 1_000_000:
        tenths = div_round_half_up(pounds, 100_000)
        return f"{sign}£{tenths // 10}.{tenths % 10}m"
    if pounds >= 10_000:
        return f"{sign}£{div_round_half_up(pounds, 1_000)}k"
    return f"{sign}£{pounds:,}"


def change_class(pence: int) -> str:
    return "loss" if pence < 0 else "gain" if pence > 0 else ""


def label(key: str) -> str:
    text = words(key)
    return text[:1].upper() + text[1:]


def day(d: date | datetime) -> str:
    """1 April 2026."""
    return f"{d.day} {d:%B %Y}"


def _pct_change(before: int, after: int) -> str:
    if before == 0:
        return ""
    permille = div_round_half_up((after - before) * 1000, before)
    sign = "+" if permille > 0 else MINUS if permille < 0 else ""
    return f"{sign}{abs(permille) // 10}.{abs(permille) % 10}%"


# --- charts ---------------------------------------------------------------------------------


def histogram_svg(buckets: list[Bucket]) -> str:
    """Horizontal bars: how many people's weekly budget would change by how much."""
    width, left, right, row, top = 720, 190, 70, 28, 8
    area = width - left - right
    height = top * 2 + row * len(buckets)
    peak = max((b.count for b in buckets), default=0) or 1
    text_alt = "; ".join(f"{b.label}: {b.count:,} people" for b in buckets)
    parts = [
        f'<svg viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" role="img" '
        'aria-labelledby="hist-title hist-desc">',
        '<title id="hist-title">How each person\'s weekly budget would change</title>',
        f'<desc id="hist-desc">Number of people by change in weekly budget. {e(text_alt)}.</desc>',
        f'<line x1="{left}" y1="{top}" x2="{left}" y2="{height - top}" stroke="{INK}"/>',
    ]
    for i, b in enumerate(buckets):
        y = top + i * row
        bar = b.count * area // peak
        colour = SIDE_COLOUR[b.side]
        parts.append(
            f'<text x="{left - 8}" y="{y + 18}" text-anchor="end" font-size="13">'
            f"{e(b.label)}</text>"
        )
        if bar:
            parts.append(
                f'<rect x="{left}" y="{y + 5}" width="{bar}" height="{row - 10}" '
                f'fill="{colour}"><title>{e(b.label)}: {b.count:,} people</title></rect>'
            )
        parts.append(f'<text x="{left + bar + 6}" y="{y + 18}" font-size="13">{b.count:,}</text>')
    parts.append("</svg>")
    return "".join(parts)


def cost_svg(rows: list[Tally]) -> str:
    """Paired bars per client group: annual cost now and proposed."""
    rows = [r for r in rows if r.people]
    width, left, right, bar_h, gap, top = 720, 190, 170, 16, 16, 34
    area = width - left - right
    height = top + len(rows) * (bar_h * 2 + gap) + 8
    peak = max((max(r.annual_now, r.annual_proposed) for r in rows), default=0) or 1
    text_alt = "; ".join(
        f"{label(r.key)}: now {compact(r.annual_now)}, proposed {compact(r.annual_proposed)}"
        for r in rows
    )
    parts = [
        f'<svg viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" role="img" '
        'aria-labelledby="cost-title cost-desc">',
        '<title id="cost-title">Annual cost of budgets by client group, now and proposed</title>',
        f'<desc id="cost-desc">{e(text_alt) or "No people to chart"}.</desc>',
        f'<rect x="{left}" y="6" width="14" height="14" fill="{GREY}"/>'
        f'<text x="{left + 20}" y="18" font-size="13">now</text>',
        f'<rect x="{left + 70}" y="6" width="14" height="14" fill="{BLUE}"/>'
        f'<text x="{left + 90}" y="18" font-size="13">proposed</text>',
    ]
    for i, r in enumerate(rows):
        y = top + i * (bar_h * 2 + gap)
        parts.append(
            f'<text x="{left - 8}" y="{y + bar_h + 4}" text-anchor="end" font-size="13">'
            f"{e(label(r.key))}</text>"
        )
        for j, (name, value, colour) in enumerate(
            (("now", r.annual_now, GREY), ("proposed", r.annual_proposed, BLUE))
        ):
            w = value * area // peak
            yy = y + j * bar_h
            parts.append(
                f'<rect x="{left}" y="{yy}" width="{w}" height="{bar_h - 2}" fill="{colour}">'
                f"<title>{e(label(r.key))}, {name}: {e(format_pounds(value))} a year</title>"
                "</rect>"
                f'<text x="{left + w + 6}" y="{yy + bar_h - 4}" font-size="12">'
                f"{name} {e(compact(value))}</text>"
            )
    parts.append("</svg>")
    return "".join(parts)


# --- tables ---------------------------------------------------------------------------------


def _table(caption: str, head: list[tuple[str, bool]], rows: list[list[tuple[str, str]]]) -> str:
    """head: (text, numeric); rows: (html, css class) cells; the first cell is a row header."""
    out = [f"<table><caption>{e(caption)}</caption><thead><tr>"]
    for text, numeric in head:
        out.append(f'<th scope="col"{" class=n" if numeric else ""}>{e(text)}</th>')
    out.append("</tr></thead><tbody>")
    for row in rows:
        out.append("<tr>")
        for i, (cell, css) in enumerate(row):
            tag = "th" if i == 0 else "td"
            scope = ' scope="row"' if i == 0 else ""
            cls = f' class="{css}"' if css else ""
            out.append(f"<{tag}{scope}{cls}>{cell}</{tag}>")
        out.append("</tr>")
    out.append("</tbody></table>")
    return "".join(out)


def _money(pence: int) -> tuple[str, str]:
    return e(format_pounds(pence)), "n"


def _change(pence: int) -> tuple[str, str]:
    return e(signed(pence)), f"n {change_class(pence)}".strip()


def _count(n: int) -> tuple[str, str]:
    return f"{n:,}", "n"


def cost_table(caption: str, rows: list[Tally], first: str) -> str:
    return _table(
        caption,
        [
            (first, False),
            ("People", True),
            ("A year now", True),
            ("A year proposed", True),
            ("Change a year", True),
            ("Average change a week", True),
            ("Not compared", True),
        ],
        [
            [
                (e(label(r.key)), ""),
                _count(r.people),
                _money(r.annual_now),
                _money(r.annual_proposed),
                _change(r.change_annual),
                _change(r.mean_change_weekly),
                _count(r.not_compared),
            ]
            for r in rows
        ],
    )


def equality_table(caption: str, rows: list[Tally], first: str) -> str:
    return _table(
        caption,
        [
            (first, False),
            ("People", True),
            ("Get more", True),
            ("Get less", True),
            ("No change", True),
            ("Share getting less", True),
            ("Average fall (those who lose)", True),
            ("Largest fall a week", True),
        ],
        [
            [
                (e(label(r.key)), ""),
                _count(r.people),
                _count(r.winners),
                (f"{r.losers:,}", "n loss" if r.losers else "n"),
                _count(r.unchanged),
                (share(r.losers, r.people), "n"),
                (e(MINUS + format_pounds(r.mean_loss_weekly)) if r.losers else "\u2014", "n"),
                (e(MINUS + format_pounds(r.largest_loss_weekly)) if r.losers else "\u2014", "n"),
            ]
            for r in rows
        ],
    )


def _flags(p: PersonImpact) -> str:
    flags = []
    if p.crosses_ceiling:
        flags.append("crosses ceiling")
    elif p.above_ceiling_proposed:
        flags.append("above ceiling")
    if p.plan_exceeds_proposed:
        flags.append("plan costs more than new budget")
    if p.approver_changes:
        flags.append(
            "approver: "
            + words(p.approver_now.value if p.approver_now else "nobody")
            + " \u2192 "
            + words(p.approver_proposed.value if p.approver_proposed else "nobody")
        )
    return e("; ".join(flags)) or "\u2014"


def contribution_note(c: Comparison) -> str:
    capped = sum(p.contribution_basis is ContributionBasis.MEANS_TEST_CAP for p in c.people)
    maximum = sum(p.contribution_basis is ContributionBasis.RULE_MAXIMUM for p in c.people)
    if not capped and not maximum:
        return "Neither policy charges people a contribution."
    return (
        "Contributions are an estimate. "
        + (
            f"For {capped:,} people their current charge shows the most their means test lets "
            "them pay, and that limit is kept. "
            if capped
            else ""
        )
        + (
            f"For {maximum:,} people no limit is known, so the charging rule's maximum is used: "
            "this overstates what they would pay, and so understates the council's cost after "
            "contributions."
            if maximum
            else ""
        )
    ).strip()


# --- the page -------------------------------------------------------------------------------


CHARGES_LISTED = 200


def charges_section(c: ChargingComparison) -> str:
    """Who would pay more or less a week under the proposal's charging figures."""
    out = [
        '<section aria-labelledby="charges"><h2 id="charges">Weekly charges</h2>',
    ]
    if not c.modelled:
        out.append(
            "<p>Not modelled: the policy in force or the proposal has no financial "
            "assessment figures.</p></section>"
        )
        return "".join(out)
    out.append(
        f"<p>Of {len(c.people):,} people with a financial assessment, "
        f"{c.pays_more:,} would pay more a week, {c.pays_less:,} less and {c.same:,} the "
        f"same. Together they pay {e(format_pounds(c.weekly_now_total))} a week now and "
        f"would pay {e(format_pounds(c.weekly_proposed_total))} "
        f"({e(signed(c.change_weekly_total))} a week, "
        f"{e(signed(c.change_weekly_total * WEEKS_PER_YEAR))} a year).</p>"
    )
    if c.not_compared:
        out.append(
            f"<p>{len(c.not_compared):,} people's charges could not be worked out again "
            "(the JSON and CSV give each reason).</p>"
        )
    changed = c.changed
    if changed:
        shown = changed[:CHARGES_LISTED]
        more = len(changed) - len(shown)
        caption = "Each person whose weekly charge would change, the largest change first"
        if more:
            caption += f" (the first {len(shown):,}; {more:,} more in the CSV)"
        out.append(
            _table(
                caption,
                [
                    ("Person", False),
                    ("Charge a week now", True),
                    ("Proposed", True),
                    ("Change", True),
                    ("Tariff income now", True),
                    ("Proposed", True),
                ],
                [
                    [
                        (e(p.person_id), ""),
                        _money(p.now.weekly_charge_pence),
                        _money(p.proposed.weekly_charge_pence),
                        _change(p.change_weekly),
                        _money(p.now.tariff_income_weekly_pence),
                        _money(p.proposed.tariff_income_weekly_pence),
                    ]
                    for p in shown
                ],
            )
        )
    out.append("</section>")
    return "".join(out)


REVIEWS_LISTED = 200


def _days(n: int) -> tuple[str, str]:
    text = f"+{n:,}" if n > 0 else f"{MINUS}{-n:,}" if n < 0 else "0"
    return e(text), "n"


def reviews_section(c: ReviewsComparison, recoups: RecoupComparison) -> str:
    """Whose next review would come sooner or later, and when recoups could be made."""
    out = ['<section aria-labelledby="reviews"><h2 id="reviews">Reviews and recoups</h2>']
    if c.reviews:
        overdue = len(c.newly_overdue)
        out.append(
            f"<p>Of {len(c.reviews):,} next reviews for {c.people:,} people with a signed-off "
            f"plan, {c.brought_forward:,} would be brought forward, {c.pushed_back:,} pushed "
            f"back and {c.same:,} stay on the same day. "
            + (
                f"{overdue:,} would already be overdue under the proposal"
                + (f" on {e(c.as_of.isoformat())}" if c.as_of else "")
                + " though they are not now.</p>"
                if overdue
                else "None would become overdue.</p>"
            )
        )
        out.append(
            _table(
                "Next reviews by kind (days moved: negative is sooner)",
                [
                    ("Kind", False),
                    ("Reviews", True),
                    ("Brought forward", True),
                    ("Pushed back", True),
                    ("Fewest days moved", True),
                    ("Most days moved", True),
                ],
                [
                    [(e(label(kind)), ""), _count(n), _count(a), _count(b), _days(lo), _days(hi)]
                    for kind, n, a, b, lo, hi in c.by_kind()
                ],
            )
        )
        changed = c.changed
        if changed:
            shown = changed[:REVIEWS_LISTED]
            more = len(changed) - len(shown)
            caption = "Each review whose date would move, the largest move first"
            if more:
                caption += f" (the first {len(shown):,}; {more:,} more in the JSON)"
            out.append(
                _table(
                    caption,
                    [
                        ("Person", False),
                        ("Review", False),
                        ("Due now", False),
                        ("Proposed", False),
                        ("Days", True),
                    ],
                    [
                        [
                            (e(r.person_id), ""),
                            (e(r.kind), ""),
                            (e(r.now.isoformat()), ""),
                            (e(r.proposed.isoformat()), ""),
                            _days(r.change_days),
                        ]
                        for r in shown
                    ],
                )
            )
    else:
        out.append("<p>No one in the cohort has a signed-off plan to review.</p>")
    out.append(f"<p>{e(recoups.in_words)}</p>")
    if recoups.notices:
        out.append(
            _table(
                "The earliest day each open notice or flagged surplus could be recouped "
                "(a surplus with no notice yet: as if it were sent on the day of the run)",
                [
                    ("Person", False),
                    ("Notice sent", False),
                    ("Amount", True),
                    ("Earliest now", False),
                    ("Proposed", False),
                ],
                [
                    [
                        (e(n.person_id), ""),
                        (
                            e(n.sent_on.isoformat())
                            if n.notice_id
                            else f"none yet ({e(n.sent_on.isoformat())})",
                            "",
                        ),
                        _money(n.amount_pence),
                        (e(n.now.isoformat()), ""),
                        (e(n.proposed.isoformat()), ""),
                    ]
                    for n in recoups.notices[:REVIEWS_LISTED]
                ],
            )
        )
    out.append("</section>")
    return "".join(out)


def render_html(c: Comparison, info: RunInfo) -> str:
    t = c.total
    cur, new = c.current, c.proposed
    title = f"Policy what-if: {cur.name}, version {new.version} compared with {cur.version}"
    change = t.change_annual
    direction = "rise" if change > 0 else "fall" if change < 0 else "stay the same"
    if change:
        how = (
            f"a {direction} of {e(format_pounds(abs(change)))} "
            f"({e(_pct_change(t.annual_now, t.annual_proposed))})."
        )
    else:
        how = "no change."
    headline = (
        "The proposed policy would make personal budgets cost "
        f"{e(format_pounds(t.annual_proposed))} a year instead of "
        f"{e(format_pounds(t.annual_now))}: {how}"
    )
    cards = [
        ("People compared", f"{t.people:,}"),
        ("Would get more", f"{t.winners:,}"),
        ("Would get less", f"{t.losers:,}"),
        ("No change", f"{t.unchanged:,}"),
        ("Change in annual cost", signed(change)),
        (
            "Change in the council's cost after contributions (estimate)",
            signed(t.net_annual_proposed - t.net_annual_now),
        ),
        ("Would newly be above a ceiling", f"{t.crosses_ceiling:,}"),
        ("Signed-off plans costing more than the new budget", f"{t.plan_exceeds_proposed:,}"),
        ("Would need a different approver", f"{t.approver_changes:,}"),
    ]
    modelled = [ch for ch in c.changes if ch.area != "not modelled"]
    unmodelled = [ch for ch in c.changes if ch.area == "not modelled"]
    body: list[str] = []
    body.append(
        f'<header><h1>{e(title)}</h1><p class="meta">{e(cur.council)} \u00b7 generated '
        f"{e(day(info.generated_at))} {e(info.generated_at.strftime('%H:%M UTC'))} "
        f"\u00b7 proposed policy effective from {e(day(new.effective_from))}; policy in force "
        f"{e(cur.policy_version)} from {e(day(cur.effective_from))}</p>"
        "</header>"
    )
    body.append(
        '<nav aria-label="Contents"><h2 id="contents">Contents</h2><ol>'
        '<li><a href="#in-short">In short</a></li>'
        '<li><a href="#what-changes">What the proposal changes</a></li>'
        '<li><a href="#distribution">How budgets would change</a></li>'
        '<li><a href="#cost">Cost by client group, age band and team</a></li>'
        '<li><a href="#equality">Equality impact</a></li>'
        '<li><a href="#approvals">Ceilings, plans and approvals</a></li>'
        '<li><a href="#charges">Weekly charges</a></li>'
        '<li><a href="#most-affected">The people most affected</a></li>'
        '<li><a href="#method">How these figures were worked out</a></li></ol></nav>'
    )
    body.append("<main>")
    body.append(
        f'<section aria-labelledby="in-short"><h2 id="in-short">In short</h2>'
        f'<p class="lede">{headline}</p><ul class="cards">'
    )
    for name, figure in cards:
        body.append(f'<li><span class="figure">{e(figure)}</span>{e(name)}</li>')
    body.append("</ul>")
    body.append(
        f"<p>{t.winners:,} people ({share(t.winners, t.people)}) would get a bigger budget, "
        f"{t.losers:,} ({share(t.losers, t.people)}) a smaller one and {t.unchanged:,} the same. "
        f"The council's cost after people's contributions would go from "
        f"{e(format_pounds(t.net_annual_now))} to "
        f"{e(format_pounds(t.net_annual_proposed))} a year. "
        f"For comparison, the budgets issued now add up to "
        f"{e(format_pounds(c.issued_weekly_total * 52))} a year ({c.issued_people:,} people) and "
        f"signed-off support plans to {e(format_pounds(c.plan_weekly_total * 52))} a year "
        f"({c.plan_people:,} people).</p>"
        f"<p>{e(contribution_note(c))}</p></section>"
    )

    body.append(
        '<section aria-labelledby="what-changes"><h2 id="what-changes">What the proposal '
        "changes</h2>"
    )
    if modelled:
        body.append("<ul>" + "".join(f"<li>{e(ch.words)}</li>" for ch in modelled) + "</ul>")
    else:
        body.append(
            "<p>The proposed policy changes nothing that sets a budget, a charge or an "
            "approval.</p>"
        )
    if unmodelled:
        body.append('<p class="note">' + " ".join(e(ch.words) for ch in unmodelled) + "</p>")
    body.append("</section>")

    body.append(
        '<section aria-labelledby="distribution"><h2 id="distribution">How budgets would '
        "change</h2><p>Each bar counts the people whose weekly budget would change by "
        "that much. Falls are red, rises green, no change grey.</p>"
    )
    body.append(
        f"<figure>{histogram_svg(c.histogram)}<figcaption>Number of people, by the change in "
        "their weekly budget (the same figures are in the table below).</figcaption></figure>"
    )
    body.append(
        _table(
            "People by change in weekly budget",
            [("Change a week", False), ("People", True), ("Share", True)],
            [
                [(e(b.label), ""), _count(b.count), (share(b.count, t.people), "n")]
                for b in c.histogram
            ],
        )
    )
    body.append("</section>")

    body.append(
        '<section aria-labelledby="cost"><h2 id="cost">Cost by client group, age band and team</h2>'
    )
    body.append(
        f"<figure>{cost_svg(c.by_client_group)}<figcaption>Annual cost of the budgets by client "
        "group, now and proposed (the same figures are in the table below).</figcaption>"
        "</figure>"
    )
    body.append(cost_table("Annual cost by client group", c.by_client_group, "Client group"))
    body.append(cost_table("Annual cost by age band", c.by_age_band, "Age band"))
    body.append(cost_table("Annual cost by team", c.by_team, "Team"))
    body.append("</section>")

    body.append(
        '<section aria-labelledby="equality"><h2 id="equality">Equality impact</h2>'
        "<p>Who would gain and who would lose, by client group and by age band: where an "
        "equality impact assessment of the change starts (seed 001 \u00a75.2). The events "
        "record client group and age band only; other protected characteristics must "
        "come from elsewhere.</p><h3>What stands out</h3><ul>"
    )
    body.append("".join(f"<li>{e(line)}</li>" for line in c.findings) + "</ul>")
    body.append(
        equality_table("Gains and losses by client group", c.by_client_group, "Client group")
    )
    body.append(equality_table("Gains and losses by age band", c.by_age_band, "Age band"))
    body.append("</section>")

    body.append(
        '<section aria-labelledby="approvals"><h2 id="approvals">Ceilings, plans and '
        "approvals</h2><ul>"
        f"<li>{t.above_ceiling_proposed:,} budgets would be above their client group's "
        f"ceiling under the proposal; {t.crosses_ceiling:,} of them are not above it now. "
        "A budget above its ceiling can only be agreed by an exception approver.</li>"
        f"<li>{t.plan_exceeds_proposed:,} people have a signed-off support plan that would "
        "cost more a week than their proposed budget; their plan would need reviewing "
        "or an exception.</li>"
        f"<li>{t.approver_changes:,} budgets would need a different approver.</li></ul>"
    )
    if c.approver_moves:
        body.append(
            _table(
                "Who would agree budgets in principle",
                [("Now", False), ("Proposed", False), ("People", True)],
                [[(e(label(a)), ""), (e(label(b)), ""), _count(n)] for a, b, n in c.approver_moves],
            )
        )
    body.append("</section>")

    body.append(charges_section(c.charging))
    body.append(reviews_section(c.reviews, c.recoups))

    body.append(
        '<section aria-labelledby="most-affected"><h2 id="most-affected">The '
        f"{len(c.most_affected)} people most affected</h2><p>By the size of the change "
        "in their weekly budget, either way. People are shown by their opaque id only.</p>"
    )
    body.append(
        _table(
            "People with the largest changes",
            [
                ("Person", False),
                ("Client group", False),
                ("Age band", False),
                ("Team", False),
                ("Now a week", True),
                ("Proposed a week", True),
                ("Change a week", True),
                ("Signed-off plan a week", True),
                ("Flags", False),
            ],
            [
                [
                    (e(p.person_id), ""),
                    (e(label(p.client_group.value)), ""),
                    (e(p.age_band.value), ""),
                    (e(p.team), ""),
                    _money(p.weekly_now),
                    _money(p.weekly_proposed),
                    _change(p.change_weekly),
                    _money(p.plan_weekly) if p.plan_weekly is not None else ("\u2014", "n"),
                    (_flags(p), ""),
                ]
                for p in c.most_affected
            ],
        )
    )
    body.append("</section>")

    body.append(
        '<section aria-labelledby="method"><h2 id="method">How these figures were '
        "worked out</h2><ul>"
    )
    body.append("".join(f"<li>{e(a)}</li>" for a in ASSUMPTIONS) + "</ul>")
    body.append(
        f"<p>Source: {info.records_read:,} records read from the event log "
        f"(<code>{e(info.log_url)}</code>), {info.people_in_log:,} people of this council in it, "
        f"{t.people:,} compared, {len(c.excluded):,} not compared"
        + (f", {info.invalid_records:,} unreadable records skipped" if info.invalid_records else "")
        + ".</p>"
    )
    if c.excluded:
        reasons: dict[str, int] = {}
        for x in c.excluded:
            reasons[x.reason] = reasons.get(x.reason, 0) + 1
        body.append(
            _table(
                "Not compared, by reason",
                [("Reason", False), ("People", True)],
                [[(e(r), ""), _count(n)] for r, n in sorted(reasons.items(), key=lambda i: -i[1])],
            )
        )
    body.append("</section></main>")
    return (
        '<!DOCTYPE html>\n<html lang="en-GB">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{e(title)}</title>\n<style>{CSS}</style>\n</head>\n<body>\n"
        + "\n".join(body)
        + "\n</body>\n</html>\n"
    )
