"""``airline-evaluate``: judge the engine's promotion policies in closed loop, in process.

Simulates every flight to departure several times on the same demand draws: once as the
baseline (the engine decides, nobody acts on it) and once per policy with its decisions fed
back into demand, as in the cluster. Prints, per run, the departed flights' mean and 10th
percentile final load factor, the share inside the 75-90 % band, revenue, promotions, the
passengers who booked on a promotion and the discount they were given, with the change against
the baseline. Exit codes: 0 done, 2 configuration error.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from decimal import Decimal

from airline_core import config
from airline_core.errors import ConfigError
from airline_core.logging import configure_logging, get_logger, uses_json
from airline_producer.settings import Settings as ProducerSettings

from airline_evaluator import closed_loop
from airline_evaluator.outcomes import Ledger, PolicyResult
from airline_evaluator.settings import Settings

log = get_logger(__name__)
BASELINE = "baseline (no promotions)"


def evaluate(settings: Settings, producer: ProducerSettings,
             progress: Callable[[str, int, int], None] | None = None) -> list[PolicyResult]:
    """The baseline, then each policy in closed loop; one result each."""
    producer = producer.replace(flights=settings.flights, days=settings.days,
                                seed=settings.seed,
                                promotion_delay_minutes=settings.delay_minutes)
    runs = [(BASELINE, settings.policy_names[0], False),
            *((name, name, True) for name in settings.policy_names)]
    results = []
    baseline: Ledger | None = None
    for label, policy, apply in runs:
        started = time.monotonic()
        report = None if progress is None else (
            lambda done, total, label=label: progress(label, done, total))
        ledger = closed_loop.run(closed_loop.LoopConfig(producer, policy, apply), report)
        result = ledger.summary(label, baseline)
        baseline = baseline or ledger
        results.append(result)
        log.info("run evaluated", run=label, seconds=round(time.monotonic() - started, 2),
                 **result.as_dict())
    return results


def render(results: Sequence[PolicyResult]) -> str:
    """The comparison table (the first result is the baseline)."""
    base = results[0]
    head = (f"{'run':<26}{'departed':>9}{'mean LF':>9}{'p10 LF':>8}{'in band':>9}"
            f"{'revenue':>15}{'vs base':>9}{'promoted':>9}{'promos':>8}{'promo pax':>10}"
            f"{'discount':>12}")
    lines = [head, "-" * len(head)]
    for r in results:
        change = ((r.revenue - base.revenue) / base.revenue * 100 if base.revenue
                  else Decimal(0))
        lines.append(
            f"{r.name:<26}{r.departed:>9,}{r.mean_load_factor:>9.3f}{r.p10_load_factor:>8.3f}"
            f"{r.in_band_share:>9.1%}{r.revenue:>15,.2f}{change:>+8.2f}%{r.flights_promoted:>9,}"
            f"{r.promotions:>8,}{r.promo_passengers:>10,}{r.discount_given:>12,.2f}")
    lines += ["", "flights each policy promoted, with its decisions and without them (same "
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


def _terminal_progress(label: str, done: int, total: int) -> None:
    print(f"\r{label}: {done:,}/{total:,} flights closed", end="", file=sys.stderr, flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``airline-evaluate``."""
    settings = config.load(Settings, argv, prog="airline-evaluate", description=__doc__ or "")
    configure_logging(settings.log, component="airline-evaluate")
    try:
        producer = config.from_values(ProducerSettings, {}, os.environ)
    except ConfigError as e:
        print(f"airline-evaluate: configuration error: {e}", file=sys.stderr)
        return 2
    interactive = sys.stderr.isatty() and not uses_json(settings.log)
    results = evaluate(settings, producer, _terminal_progress if interactive else None)
    if interactive:
        print(file=sys.stderr)
    if settings.json_output:
        print(json.dumps({"flights": settings.flights, "days": settings.days,
                          "seed": settings.seed, "delay_minutes": settings.delay_minutes,
                          "runs": [r.as_dict() for r in results]}, indent=2))
    else:
        print(render(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
