"""Policy what-if: a proposed RAS or charging change replayed over the real cohort.

Read-only. It reads the event log from the beginning with a throwaway consumer group that
never commits, recomputes every person's indicative budget under the council's policy in
force and under a proposed policy file with the council's rulebook, the very RAS allocation
sets budgets with (`rules.ras.calculate_budget`), and writes JSON, CSV and HTML reports
into an output directory. Nothing else is written anywhere.

    cohort.py    the event history folded into one record per person (pure fold + reader)
    compare.py   the comparison, per person and in totals (pure)
    diff.py      what changed between two policies, in plain English (pure)
    report.py    JSON and CSV; html.py the self-contained HTML report with inline SVG
    cli.py       `pbj whatif run PROPOSED_POLICY` and `pbj whatif generate`
    generate.py  a seeded, realistic synthetic cohort for tests, demos and the benchmark
"""
