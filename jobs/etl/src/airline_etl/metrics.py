"""Run metrics, pushed to the Pushgateway at the end of a run (a batch job has no /metrics)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Final

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    push_to_gateway,
    pushadd_to_gateway,
)
from prometheus_client.metrics_core import Metric

REGISTRY: Final = CollectorRegistry()
#: Only the last-success time: a failed run must not overwrite it (the staleness alert reads it).
SUCCESS_REGISTRY: Final = CollectorRegistry()

FILES: Final = Gauge("airline_etl_files", "lake files (manifests or old day files) loaded by the "
                     "last run", registry=REGISTRY)
EVENTS: Final = Gauge("airline_etl_events", "distinct new events loaded by the last run, by topic",
                      ["topic"], registry=REGISTRY)
ROWS: Final = Gauge("airline_etl_rows", "rows staged into each warehouse table by the last run",
                    ["table"], registry=REGISTRY)
REJECTS: Final = Gauge("airline_etl_rejects", "invalid lines found by the last run",
                       registry=REGISTRY)
DURATION: Final = Gauge("airline_etl_duration_seconds", "wall time of the last run",
                        registry=REGISTRY)
LAST_SUCCESS: Final = Gauge("airline_etl_last_success_timestamp_seconds",
                            "Unix time of the last run that ended with exit code 0",
                            registry=SUCCESS_REGISTRY)
EXIT_CODE: Final = Gauge("airline_etl_exit_code", "exit code of the last run", registry=REGISTRY)
RUNS: Final = Counter("airline_etl_runs", "runs by outcome (in this process)", ["outcome"],
                      registry=REGISTRY)


def push(gateway: str, succeeded: bool, namespace: str = "") -> None:
    """Push the run's metrics under job ``airline-etl`` (and ``namespace``, when given).

    A successful run replaces the job's whole group (PUT), its new last-success time included.
    A failed run only replaces the metrics it pushes (POST) and never pushes the last-success
    time, so the Pushgateway keeps the previous success's, and ``AirlineEtlStale`` measures
    the time since the last run that really succeeded."""
    grouping = {"namespace": namespace} if namespace else None
    if succeeded:
        push_to_gateway(gateway, job=JOB, registry=_Both(), grouping_key=grouping, timeout=10)
    else:
        pushadd_to_gateway(gateway, job=JOB, registry=REGISTRY, grouping_key=grouping,
                           timeout=10)


JOB: Final = "airline-etl"


class _Both(CollectorRegistry):
    """Both registries as one, for a single PUT."""

    def collect(self) -> Iterator[Metric]:
        yield from REGISTRY.collect()
        yield from SUCCESS_REGISTRY.collect()
