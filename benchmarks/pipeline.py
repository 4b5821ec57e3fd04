"""``python -m benchmarks.pipeline``: the whole pipeline at once, as ``make demo`` runs it.

The producer at full speed while the engine and the lake writer consume it live, then the ETL:
each component is its own process through its console script (:mod:`airline_devstack.pipeline`,
the code ``make demo`` and the end-to-end test run), on the run's broker and warehouse. The
rate is the events produced (every lake topic, the engine's outputs included) over the wall
time from the first process start to the warehouse loaded, so it counts process starts, the
idle second each consumer waits before it stops, and the final passes: what a user waits for.
There is no peer: nothing else runs this pipeline. Each round simulates a different seed into
fresh topics and a fresh lake (the same seed would be deduplicated by the shared warehouse),
and is reconciled (Kafka = lake = warehouse for every topic) so a fast wrong run cannot count.
"""

from __future__ import annotations

from collections.abc import Sequence

from airline_devstack.kafka_broker import probe_cluster_id
from airline_devstack.pipeline import PipelineSpec, run_bounded
from airline_devstack.reconcile import reconcile, reject_counts

from benchmarks.harness import Bench, Result, alternate, standalone

SEED = 500


def run(bench: Bench) -> list[Result]:
    """Bounded pipeline runs, one per round; events/s end to end."""
    assert bench.bootstrap and bench.database_url, "the pipeline needs a broker and Postgres"
    flights = bench.scale(300, 20)
    days = bench.scale(4, 2)
    cluster_id = probe_cluster_id(bench.bootstrap) or ""
    events: list[int] = []
    seconds: list[float] = []

    def one_round(r: int) -> float:
        work = bench.scratch(f"pipeline-{r}")
        spec = PipelineSpec(bootstrap=bench.bootstrap or "", database_url=bench.database_url or "",
                            lake_dir=work / "lake", log_dir=work / "logs", seed=SEED + r,
                            flights=flights, days=days, topic_prefix=bench.topic_prefix("pipe"),
                            idle_seconds=1.0, inject_malformed=False)
        rejects_before = reject_counts(spec.database_url)
        outcome = run_bounded(spec)
        if not outcome.ok:
            raise RuntimeError(f"pipeline round {r} failed: {outcome.exit_codes}; logs in "
                               f"{spec.log_dir}")
        counts = reconcile(spec.bootstrap, spec.topic_prefix, spec.lake_dir, cluster_id,
                           spec.database_url, rejects_before)
        disagree = [c.topic for c in counts if not c.agrees]
        if disagree:
            raise RuntimeError(f"pipeline round {r}: Kafka, lake and warehouse disagree on "
                               f"{disagree}; logs in {spec.log_dir}")
        produced = sum(c.kafka_records for c in counts)
        events.append(produced)
        seconds.append(outcome.seconds)
        return produced / outcome.seconds

    values = alternate(bench.rounds, {"pipeline": one_round})["pipeline"]
    return [Result("pipeline", "producer → engine + lake writer → ETL", "events/s", values,
                   notes=f"{flights} flights x {days} days, processes and idle stops included",
                   extra={"events": events, "seconds": [round(s, 1) for s in seconds]})]


def main(argv: Sequence[str] | None = None) -> int:
    return standalone("pipeline", run, kafka=True, postgres=True, argv=argv, doc=__doc__)


if __name__ == "__main__":
    raise SystemExit(main())
