"""Settings of ``airline-evaluate`` (environment variables, each also a command line option).

The demand model's knobs are the producer's own (``PRODUCER_TARGET_LOAD_FACTOR``,
``PRODUCER_ELASTICITY_LEISURE``, ...: see ``airline-producer --help``), read from the
environment, so a policy can be evaluated under other demand assumptions without new flags;
``EVALUATE_SCENARIOS`` runs several named sets of them (see :mod:`airline_evaluator.scenarios`)."""

from __future__ import annotations

import dataclasses
import os

from airline_core.config import LogSettings, group, non_negative, positive, setting
from airline_core.topics import DEFAULT_PARTITIONS

from airline_evaluator.scenarios import SCENARIOS

#: The engine policies the evaluator knows, the default (first) one first.
POLICIES = ("revenue", "pace", "iteration2")


def _names(value: str) -> list[str]:
    return [p.strip() for p in value.split(",") if p.strip()]


def _policies(value: str) -> str | None:
    names = _names(value)
    unknown = sorted(set(names) - set(POLICIES))
    if not names:
        return "must name at least one policy"
    return f"has unknown policies {unknown} (known: {', '.join(POLICIES)})" if unknown else None


def _scenarios(value: str) -> str | None:
    unknown = sorted(set(_names(value)) - set(SCENARIOS))
    return (f"has unknown scenarios {unknown} (known: {', '.join(SCENARIOS)})" if unknown
            else None)


def _seeds(value: str) -> str | None:
    try:
        seeds = [int(s) for s in _names(value)]
    except ValueError:
        return "must be comma-separated whole numbers, e.g. 7,11,13"
    return "must be 0 or more" if any(s < 0 for s in seeds) else None


@dataclasses.dataclass(frozen=True)
class Settings:
    """How big the simulated world is and which policies to compare."""

    log: LogSettings = group(LogSettings)
    flights: int = setting("EVALUATE_FLIGHTS", 1000, "flights to simulate to departure",
                           check=positive)
    days: int = setting("EVALUATE_DAYS", 10, "departure days the flights spread over",
                        check=positive)
    seed: int = setting("EVALUATE_SEED", 42, "seed of the demand draws (the same for every "
                        "policy: each is compared with the baseline on the same customers)",
                        check=non_negative)
    policies: str = setting("EVALUATE_POLICIES", ",".join(POLICIES),
                            "comma-separated engine policies to evaluate in closed loop",
                            check=_policies)
    delay_minutes: float = setting(
        "EVALUATE_DELAY_MINUTES", 5.0,
        "simulated minutes between a decision and its effect on demand (as "
        "PRODUCER_PROMOTION_DELAY_MINUTES in the cluster)", check=non_negative)
    partitions: int = setting(
        "EVALUATE_PARTITIONS", DEFAULT_PARTITIONS,
        "partitions of the engine's topics (as TOPIC_PARTITIONS): flights are split over one "
        "engine core each, as on Kafka, since each partition learns its own price response",
        check=positive)
    json_output: bool = setting("EVALUATE_JSON", False,
                                "print one JSON object (for reports) instead of the table",
                                flag="--json")
    oracle: bool = setting(
        "EVALUATE_ORACLE", False,
        "also run the hindsight oracle: per flight the best of no promotion or 5/10/15/25/35 % "
        "off the target bucket from 42/28/21/14/7/3/1 days out, on the same demand draws (35 "
        "more simulations, in parallel)")
    workers: int = setting("EVALUATE_WORKERS", 0,
                           "processes the oracle's simulations run in (0: one per CPU)",
                           check=non_negative)
    report: str = setting(
        "EVALUATE_REPORT", "",
        "directory to write report.md and report.html (with SVG charts) into; empty: none")
    scenarios: str = setting(
        "EVALUATE_SCENARIOS", "",
        f"comma-separated named demand scenarios ({', '.join(SCENARIOS)}) to run, each with "
        "every seed of EVALUATE_SEEDS; empty: the producer's settings as the environment gives "
        "them", check=_scenarios)
    seeds: str = setting(
        "EVALUATE_SEEDS", "",
        "comma-separated seeds (e.g. 7,11,13) to run every scenario with, pooled per scenario; "
        "empty: EVALUATE_SEED alone", check=_seeds)

    @property
    def policy_names(self) -> list[str]:
        """The policies, in the order given."""
        return _names(self.policies)

    @property
    def scenario_names(self) -> list[str]:
        """The scenarios given (``default`` if only seeds were), empty for a single run."""
        names = _names(self.scenarios)
        return names or (["default"] if self.seeds.strip() else [])

    @property
    def seed_list(self) -> list[int]:
        """The seeds to run: EVALUATE_SEEDS, else EVALUATE_SEED."""
        return [int(s) for s in _names(self.seeds)] or [self.seed]

    @property
    def worker_count(self) -> int:
        """Processes for the oracle: ``workers``, else the CPU count."""
        return self.workers or os.cpu_count() or 1
