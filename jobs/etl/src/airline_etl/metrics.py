"""Run metrics, pushed to the Pushgateway at the end of a run (a batch job has no /metrics)."""

from __future__ import annotations

from typing import Final

from prometheus_client import CollectorRegistry, Counter, Gauge, push_to_gateway

REGISTRY: Final = CollectorRegistry()

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
                            registry=REGISTRY)
EXIT_CODE: Final = Gauge("airline_etl_exit_code", "exit code of the last run", registry=REGISTRY)
RUNS: Final = Counter("airline_etl_runs", "runs by outcome (in this process)", ["outcome"],
                      registry=REGISTRY)


def push(gateway: str) -> None:
    """Push every metric of the run under job ``airline-etl`` (replacing the previous push)."""
    push_to_gateway(gateway, job="airline-etl", registry=REGISTRY, timeout=10)
