"""``--report DIR``: the evaluation as Markdown and self-contained HTML, with SVG charts.

Writes ``report.md`` (charts as ``.svg`` files beside it), ``report.html`` (the same content,
charts inline: no script, no external reference) and, with the oracle, ``oracle.csv`` (its
choice per flight). Per scenario: the table (baseline, each policy, oracle), (a) the revenue
uplift of each run with its 95 % interval, (b) the final load factors of each run, (c) the
booking curves of the flights the first policy promoted, with its decisions and without them.
"""

from __future__ import annotations

import csv
import os
import platform
import re
from collections.abc import Sequence
from html import escape
from pathlib import Path
from typing import Any

from airline_charts import page
from airline_charts import svg as charts

from airline_evaluator.cli import BASELINE, ScenarioOutcome, oracle_summary
from airline_evaluator.outcomes import BAND, PolicyResult, booking_curve
from airline_evaluator.settings import Settings

#: A block of the report: ("h2"/"h3"/"p"/"code", text), ("table", head, rows) or
#: ("chart", file name, svg text).
Block = tuple[Any, ...]
_DEMAND = ("target_load_factor", "demand_cv", "elasticity_leisure", "elasticity_business",
           "booking_horizon_days", "booking_cancellation_rate", "tick_minutes")


def _row(r: PolicyResult) -> list[str]:
    ci = r.revenue_change_ci95
    return [r.name, f"{r.departed:,}", f"{r.mean_load_factor:.3f}", f"{r.p10_load_factor:.3f}",
            f"{r.in_band_share:.1%}", f"{r.revenue:,.2f}", f"{r.revenue_change_pct:+.2f} %",
            f"[{ci[0]:+.2f}, {ci[1]:+.2f}]" if ci else "-",
            "-" if r.oracle_share is None else f"{r.oracle_share:.0%}",
            f"{r.promotions_per_flight:.2f}", f"{r.discount_given:,.2f}"]


_HEAD = ["run", "departed", "mean LF", "p10 LF", "in band", "revenue", "vs baseline",
         "95 % CI", "oracle share", "promotions/flight", "discount given"]


def _scenario_blocks(o: ScenarioOutcome, settings: Settings, slug: str) -> list[Block]:
    blocks: list[Block] = []
    if o.scenario is not None:
        blocks += [("h2", f"Scenario {o.name}"),
                   ("p", f"{o.scenario.meaning} ({o.scenario.describe()}); seeds "
                         f"{', '.join(map(str, o.seeds))}, pooled: every flight of every seed "
                         "paired with its own seed's baseline.")]
    else:
        blocks.append(("h2", "Results"))
    blocks.append(("table", _HEAD, [_row(r) for r in o.results]))
    runs = o.results[1:]
    blocks += [("p", "(a) Revenue change of each run against no promotions, with its 95 % "
                     "interval (paired per flight)."),
               ("chart", f"{slug}uplift.svg", charts.error_bars(
                   [(r.name, r.revenue_change_pct, r.revenue_change_ci95) for r in runs],
                   "Revenue uplift vs no promotions"))]
    blocks += [("p", "(b) Final load factor of the departed flights: box from the first to the "
                     "third quartile, median line, whiskers at the 5th and 95th percentiles, the "
                     "mean as a dot; shaded: the 75-90 % band."),
               ("chart", f"{slug}load_factor.svg", charts.box_plots(
                   [(r.name, [f.load_factor for f in o.ledgers[r.name].flights.values()
                              if f.status == "departed"]) for r in o.results],
                   "Final load factor per run", "final load factor", BAND))]
    first = settings.policy_names[0]
    policy, base = o.ledgers[first], o.ledgers[BASELINE]
    ids = policy.promoted_ids(base)
    horizon = o.producer.booking_horizon_days
    series = [(f"{first}", booking_curve([policy.flights[i] for i in ids], horizon)),
              ("no promotions", booking_curve([base.flights[i] for i in ids], horizon))]
    blocks += [("p", f"(c) Mean seats booked (net of cancellations) by days before departure "
                     f"on the {len(ids):,} flights {first} promoted, with its decisions and "
                     "without them (the baseline: the same customers)."),
               ("chart", f"{slug}booking_curves.svg", charts.lines(
                   series, f"Booking curves of the flights {first} promoted",
                   "days before departure", "mean seats booked",
                   note="" if ids else f"{first} promoted no flight"))]
    summary = oracle_summary(o)
    if summary is not None:
        best = summary["best_single_schedule"]
        blocks += [("h3", "Oracle"),
                   ("p", "Per flight the best of no promotion or "
                         f"{'/'.join(map(str, summary['family']['discounts_pct']))} % off the "
                         "target bucket from "
                         f"{'/'.join(map(str, summary['family']['days_out']))} days out, chosen "
                         f"in hindsight. Best single schedule for every flight: {best} "
                         f"({summary['single_schedule_change_pct'][best]:+.2f} %). Per flight "
                         "choices: oracle.csv."),
                   ("table", ["schedule chosen", "departed flights"],
                    [[k, f"{v:,}"] for k, v in summary["chosen"].items()])]
    return blocks


def blocks_of(settings: Settings, outcomes: Sequence[ScenarioOutcome], command: str,
              seconds: float) -> list[Block]:
    """The whole report, as blocks."""
    env = sorted(f"{k}={v}" for k, v in os.environ.items()
                 if k.startswith(("EVALUATE_", "PRODUCER_")))
    values = [("flights", settings.flights), ("days", settings.days),
              ("seeds", ", ".join(map(str, sorted({s for o in outcomes for s in o.seeds})))),
              ("policies", settings.policies), ("delay minutes", settings.delay_minutes),
              ("oracle", settings.oracle), ("oracle workers", settings.worker_count),
              ("scenarios", ", ".join(o.name for o in outcomes))]
    demand = [[o.name, *(str(getattr(o.producer, k)) for k in _DEMAND)] for o in outcomes]
    blocks: list[Block] = [
        ("h1", "Promotion policies in closed loop"),
        ("code", command),
        ("p", f"Took {seconds:,.1f} s on {os.cpu_count()} CPUs ({platform.system()} "
              f"{platform.machine()}, Python {platform.python_version()}). Revenue change: "
              "per flight departed in both runs, mean difference against the baseline (same "
              "customers) as a percentage of the baseline's mean revenue per flight; 95 % "
              "interval: mean +- 1.96 sd / sqrt(n) over flights. Oracle share: uplift / the "
              "oracle's uplift. See docs/evaluator.md."),
        ("table", ["setting", "value"], [[k, str(v)] for k, v in values]),
        ("p", "Environment: " + (", ".join(env) if env else "no EVALUATE_/PRODUCER_ variable "
                                 "set (defaults)")),
        ("table", ["scenario", *_DEMAND], demand)]
    for o in outcomes:
        slug = "" if len(outcomes) == 1 else f"{o.name}-"
        blocks += _scenario_blocks(o, settings, re.sub(r"[^a-z0-9-]+", "-", slug.lower()))
    return blocks


def markdown(blocks: Sequence[Block]) -> str:
    out = []
    for kind, *rest in blocks:
        if kind in ("h1", "h2", "h3"):
            out.append(f"{'#' * int(kind[1])} {rest[0]}")
        elif kind == "p":
            out.append(rest[0])
        elif kind == "code":
            out.append(f"```\n{rest[0]}\n```")
        elif kind == "table":
            head, rows = rest
            out.append("\n".join([f"| {' | '.join(head)} |", f"|{'---|' * len(head)}",
                                  *(f"| {' | '.join(r)} |" for r in rows)]))
        elif kind == "chart":
            out.append(f"![{rest[0]}]({rest[0]})")
    return "\n\n".join(out) + "\n"


def html(blocks: Sequence[Block]) -> str:
    out = ['<!DOCTYPE html>', '<html lang="en"><head><meta charset="utf-8">',
           "<title>Promotion policies in closed loop</title>",
           f"<style>{page.STYLE}</style></head><body>"]
    for kind, *rest in blocks:
        if kind in ("h1", "h2", "h3", "p"):
            out.append(f"<{kind}>{escape(rest[0])}</{kind}>")
        elif kind == "code":
            out.append(f"<pre>{escape(rest[0])}</pre>")
        elif kind == "table":
            head, rows = rest
            out.append(page.table(head, rows))
        elif kind == "chart":
            out.append(rest[1])
    return "\n".join([*out, "</body></html>"]) + "\n"


def write(directory: str | Path, settings: Settings, outcomes: Sequence[ScenarioOutcome],
          command: str, seconds: float) -> list[Path]:
    """Write the report into ``directory`` (created); the files written."""
    root = Path(directory)
    root.mkdir(parents=True, exist_ok=True)
    blocks = blocks_of(settings, outcomes, command, seconds)
    written = []
    for kind, *rest in blocks:
        if kind == "chart":
            path = root / rest[0]
            path.write_text(charts.standalone(rest[1]))
            written.append(path)
    for name, text in (("report.md", markdown(blocks)), ("report.html", html(blocks))):
        (root / name).write_text(text)
        written.append(root / name)
    if any(o.oracles for o in outcomes):
        path = root / "oracle.csv"
        with path.open("w", newline="") as f:
            out = csv.writer(f)
            out.writerow(["scenario", "seed", "flight_id", "discount_pct", "days_out", "revenue",
                          "baseline_revenue"])
            for o in outcomes:
                for seed, found in o.oracles:
                    for c in found.choices.values():
                        out.writerow([o.name, seed, c.flight_id, c.discount, c.days, c.revenue,
                                      c.baseline_revenue])
        written.append(path)
    return written

