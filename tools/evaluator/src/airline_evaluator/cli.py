"""``airline-evaluate``: judge the engine's promotion policies in closed loop, in process.

Simulates every flight to departure several times on the same demand draws: once as the
baseline (the engine decides, nobody acts on it), once per policy with its decisions fed back
into demand, as in the cluster, and with --oracle once per schedule of the hindsight oracle's
family. Prints, per run, the departed flights' mean and 10th percentile final load factor, the
share inside the 75-90 % band, revenue and its change against the baseline with a 95 %
interval (paired per flight), the share of the oracle's uplift, promotions, the passengers who
booked on a promotion and the discount they were given. With --scenarios/--seeds, one table per
named demand scenario, pooled over the seeds; --report DIR also writes Markdown and HTML with
charts. Exit codes: 0 done, 2 configuration error.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shlex
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from airline_core import config
from airline_core.errors import ConfigError
from airline_core.logging import configure_logging, get_logger, uses_json
from airline_producer.settings import Settings as ProducerSettings

from airline_evaluator import closed_loop, oracle
from airline_evaluator.outcomes import Ledger, PolicyResult, paired_change
from airline_evaluator.scenarios import SCENARIOS, Scenario
from airline_evaluator.settings import Settings

log = get_logger(__name__)
BASELINE = "baseline (no promotions)"
ORACLE = oracle.NAME
#: ``progress(label, done, total)``: a long step's advance (flights closed, schedules done).
Progress = Callable[[str, int, int], None]


@dataclass
class ScenarioOutcome:
    """Every run of one scenario, pooled over its seeds."""

    scenario: Scenario | None  # None: one run with the producer settings as given
    seeds: list[int]
    producer: ProducerSettings  # of the first seed (the demand settings of the scenario)
    results: list[PolicyResult]  # baseline first, then the policies, then the oracle
    ledgers: dict[str, Ledger]  # per run name, merged over the seeds
    oracles: list[tuple[int, oracle.OracleResult]] = field(default_factory=list)
    by_seed: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def name(self) -> str:
        return self.scenario.name if self.scenario else "as configured"


def world(settings: Settings, producer: ProducerSettings, seed: int,
          scenario: Scenario | None = None) -> ProducerSettings:
    """The producer settings of one run: the evaluator's size, seed and delay, the scenario's
    demand."""
    producer = producer.replace(flights=settings.flights, days=settings.days, seed=seed,
                                promotion_delay_minutes=settings.delay_minutes)
    return scenario.apply(producer) if scenario else producer


def simulate(settings: Settings, producer: ProducerSettings, progress: Progress | None = None,
             label: str = "") -> tuple[dict[str, Ledger], oracle.OracleResult | None]:
    """One world (``producer`` as given): the baseline, each policy in closed loop, and the
    oracle if ``settings.oracle``; the ledger of each run, by name."""
    runs = [(BASELINE, settings.policy_names[0], False),
            *((name, name, True) for name in settings.policy_names)]
    ledgers: dict[str, Ledger] = {}
    for name, policy, apply in runs:
        started = time.monotonic()
        shown = f"{label}{name}"
        report = None if progress is None else (
            lambda done, total, shown=shown: progress(shown, done, total))
        ledgers[name] = closed_loop.run(
            closed_loop.LoopConfig(producer, policy, apply, partitions=settings.partitions), report)
        log.info("run simulated", run=name, seed=producer.seed,
                 seconds=round(time.monotonic() - started, 2))
    found = None
    if settings.oracle:
        shown = f"{label}{ORACLE} (simulations)"
        found = oracle.run(producer, settings.worker_count, None if progress is None else
                           lambda done, total: progress(shown, done, total))
        ledgers[ORACLE] = found.ledger
        log.info("oracle simulated", seed=producer.seed, seconds=round(found.seconds, 2),
                 workers=settings.worker_count, schedules=len(oracle.SCHEDULES),
                 flight_simulations=found.simulated)
    return ledgers, found


def compare(ledgers: dict[str, Ledger]) -> list[PolicyResult]:
    """The figures of each run against the first (the baseline), with the oracle's share."""
    names = list(ledgers)
    base = ledgers[names[0]]
    results = [base.summary(names[0])]
    results += [ledgers[n].summary(n, base) for n in names[1:]]
    best = next((r for r in results if r.name == ORACLE), None)
    if best is None or best.revenue_change_pct <= 0:
        return results
    return [dataclasses.replace(r, oracle_share=r.revenue_change_pct / best.revenue_change_pct)
            for r in results]


def evaluate_scenario(settings: Settings, producer: ProducerSettings,
                      scenario: Scenario | None, seeds: Sequence[int],
                      progress: Progress | None = None) -> ScenarioOutcome:
    """Every run of ``scenario`` for each seed; results pooled over the seeds (the flights of
    all seeds together, each paired with its own seed's baseline)."""
    started = time.monotonic()
    per_seed: list[tuple[int, dict[str, Ledger]]] = []
    oracles = []
    by_seed = []
    for seed in seeds:
        parts = [scenario.name] if scenario else []
        parts += [f"seed {seed}"] if len(seeds) > 1 else []
        label = "".join(f"{p} · " for p in parts)
        ledgers, found = simulate(settings, world(settings, producer, seed, scenario), progress,
                                  label)
        per_seed.append((seed, ledgers))
        if found is not None:
            oracles.append((seed, found))
        base = ledgers[BASELINE]
        by_seed.append({"seed": seed, "revenue_change_pct": {
            name: round(paired_change(ledger, base).pct, 4) + 0.0
            for name, ledger in ledgers.items()}})
    if len(per_seed) == 1:
        pooled = per_seed[0][1]
    else:
        pooled = {name: Ledger.merged((str(seed), ledgers[name]) for seed, ledgers in per_seed)
                  for name in per_seed[0][1]}
    results = compare(pooled)
    outcome = ScenarioOutcome(scenario, list(seeds), world(settings, producer, seeds[0], scenario),
                              results, pooled, oracles, by_seed, time.monotonic() - started)
    for r in results:
        log.info("run evaluated", scenario=outcome.name, seeds=list(seeds), run=r.name,
                 **r.as_dict())
    return outcome


def evaluate_all(settings: Settings, producer: ProducerSettings,
                 progress: Progress | None = None) -> list[ScenarioOutcome]:
    """Each scenario x seed of ``settings`` (or the one world the settings describe)."""
    if not settings.scenario_names:
        return [evaluate_scenario(settings, producer, None, [settings.seed], progress)]
    return [evaluate_scenario(settings, producer, SCENARIOS[name], settings.seed_list, progress)
            for name in settings.scenario_names]


def evaluate(settings: Settings, producer: ProducerSettings,
             progress: Progress | None = None) -> list[PolicyResult]:
    """The baseline, then each policy in closed loop (then the oracle); one result each."""
    return evaluate_scenario(settings, producer, None, [settings.seed], progress).results


# --------------------------------------------------------------------------- output
def _ci(r: PolicyResult) -> str:
    ci = r.revenue_change_ci95
    return f"[{ci[0]:+.2f},{ci[1]:+.2f}]" if ci else "-"


def _share(r: PolicyResult) -> str:
    return "-" if r.oracle_share is None else f"{r.oracle_share:.0%}"


def render(results: Sequence[PolicyResult]) -> str:
    """The comparison table (the first result is the baseline)."""
    head = (f"{'run':<26}{'departed':>9}{'mean LF':>9}{'p10 LF':>8}{'in band':>9}"
            f"{'revenue':>15}{'vs base':>9}{'95% CI':>17}{'oracle':>8}{'promoted':>9}"
            f"{'promos':>8}{'/flight':>8}{'promo pax':>11}{'discount':>15}")
    lines = [head, "-" * len(head)]
    for r in results:
        lines.append(
            f"{r.name:<26}{r.departed:>9,}{r.mean_load_factor:>9.3f}{r.p10_load_factor:>8.3f}"
            f"{r.in_band_share:>9.1%}{r.revenue:>15,.2f}{r.revenue_change_pct:>+8.2f}%"
            f"{_ci(r):>17}{_share(r):>8}{r.flights_promoted:>9,}{r.promotions:>8,}"
            f"{r.promotions_per_flight:>8.2f}{r.promo_passengers:>11,}{r.discount_given:>15,.2f}")
    lines += ["", "flights each run promoted, with its decisions and without them (same "
                  "customers):",
              f"{'run':<26}{'flights':>8}{'LF':>8}{'LF base':>9}{'revenue':>15}"
              f"{'revenue base':>15}{'change':>9}"]
    for r in results[1:]:
        p = r.promoted
        if p is None or not p.flights:
            lines.append(f"{r.name:<26}{0:>8}")
            continue
        change = (p.revenue - p.baseline_revenue) / p.baseline_revenue * 100 \
            if p.baseline_revenue else Decimal(0)
        lines.append(f"{r.name:<26}{p.flights:>8,}{p.load_factor:>8.3f}"
                     f"{p.baseline_load_factor:>9.3f}{p.revenue:>15,.2f}"
                     f"{p.baseline_revenue:>15,.2f}{change:>+8.2f}%")
    return "\n".join(lines)


def oracle_summary(outcome: ScenarioOutcome) -> dict[str, Any] | None:
    """What the oracle chose (departed flights per schedule, over the seeds) and what each
    single schedule of its family would have made on every flight."""
    if not outcome.oracles:
        return None
    counts = {s.label: 0 for s in oracle.SCHEDULES}
    totals = dict.fromkeys(oracle.SCHEDULES, Decimal(0))
    for _, found in outcome.oracles:
        for label, n in found.counts().items():
            counts[label] += n
        for schedule, revenue in found.schedule_revenue.items():
            totals[schedule] += revenue
    base = totals[oracle.NONE]
    single = {s.label: round(float((v - base) / base * 100), 4) + 0.0 if base else 0.0
              for s, v in totals.items()}
    best = max(single, key=lambda k: single[k])
    return {"family": {"discounts_pct": list(oracle.DISCOUNTS),
                       "days_out": list(oracle.DAYS_OUT)},
            "chosen": {k: n for k, n in counts.items() if n},
            "single_schedule_change_pct": single,
            "best_single_schedule": best,
            "seconds": round(sum(f.seconds for _, f in outcome.oracles), 2)}


def _oracle_line(outcome: ScenarioOutcome) -> list[str]:
    summary = oracle_summary(outcome)
    if summary is None:
        return []
    chosen = ", ".join(f"{k}: {v:,}" for k, v in summary["chosen"].items())
    best = summary["best_single_schedule"]
    return ["", f"oracle's choices (departed flights): {chosen}",
            f"best single schedule for every flight: {best} "
            f"({summary['single_schedule_change_pct'][best]:+.2f}%)"]


def render_all(outcomes: Sequence[ScenarioOutcome]) -> str:
    """A table per scenario (just the table for a single run)."""
    parts = []
    for o in outcomes:
        head = [] if o.scenario is None else [
            f"== scenario {o.name} ({o.scenario.describe()}), seeds "
            f"{', '.join(map(str, o.seeds))}: {o.scenario.meaning}"]
        parts.append("\n".join([*head, render(o.results), *_oracle_line(o)]))
    return "\n\n".join(parts)


def as_json(settings: Settings, outcomes: Sequence[ScenarioOutcome]) -> dict[str, Any]:
    """The JSON report: ``runs`` for a single run, ``scenarios`` (each with its runs) else."""
    head: dict[str, Any] = {"flights": settings.flights, "days": settings.days,
                            "delay_minutes": settings.delay_minutes,
                            "policies": settings.policy_names}
    if len(outcomes) == 1 and outcomes[0].scenario is None:
        o = outcomes[0]
        body: dict[str, Any] = {"seed": settings.seed, "runs": [r.as_dict() for r in o.results]}
        if o.oracles:
            body["oracle"] = oracle_summary(o)
        return {**head, **body}
    return {**head, "seeds": settings.seed_list, "scenarios": [
        {**(o.scenario.as_dict() if o.scenario else {"name": o.name}), "seeds": o.seeds,
         "runs": [r.as_dict() for r in o.results], "by_seed": o.by_seed,
         "oracle": oracle_summary(o), "seconds": round(o.seconds, 2)} for o in outcomes]}


def _terminal_progress(label: str, done: int, total: int) -> None:
    print(f"\r{label}: {done:,}/{total:,}\x1b[K", end="", file=sys.stderr, flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``airline-evaluate``."""
    args = list(sys.argv[1:] if argv is None else argv)
    settings = config.load(Settings, args, prog="airline-evaluate", description=__doc__ or "")
    configure_logging(settings.log, component="airline-evaluate")
    try:
        producer = config.from_values(ProducerSettings, {}, os.environ)
    except ConfigError as e:
        print(f"airline-evaluate: configuration error: {e}", file=sys.stderr)
        return 2
    interactive = sys.stderr.isatty() and not uses_json(settings.log)
    started = time.monotonic()
    outcomes = evaluate_all(settings, producer, _terminal_progress if interactive else None)
    seconds = time.monotonic() - started
    if interactive:
        print(file=sys.stderr)
    log.info("evaluation done", seconds=round(seconds, 2), scenarios=len(outcomes))
    if settings.report:
        from airline_evaluator import report  # only when asked for: charts and templates

        command = shlex.join(["airline-evaluate", *args])
        paths = report.write(settings.report, settings, outcomes, command, seconds)
        log.info("report written", paths=[str(p) for p in paths])
    if settings.json_output:
        print(json.dumps(as_json(settings, outcomes), indent=2))
    else:
        print(render_all(outcomes))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
