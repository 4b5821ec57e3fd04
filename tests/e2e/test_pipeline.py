"""End to end: producer, engine, lake writer and ETL as separate processes on the real broker
and Postgres; per topic, distinct event ids in Kafka = lake lines = warehouse rows."""

from collections.abc import Callable
from pathlib import Path

import pytest
from airline_devstack.kafka_broker import ExternalKafka, KafkaBroker
from airline_devstack.pipeline import PipelineSpec, run_bounded
from airline_devstack.reconcile import reconcile

pytestmark = [pytest.mark.kafka, pytest.mark.postgres, pytest.mark.slow]


def test_pipeline_reconciles_kafka_lake_and_warehouse(
    kafka_broker: KafkaBroker | ExternalKafka,
    isolated_database_url: str,
    unique_name: Callable[[str], str],
    tmp_path: Path,
) -> None:
    spec = PipelineSpec(
        bootstrap=kafka_broker.bootstrap, database_url=isolated_database_url,
        lake_dir=tmp_path / "lake", log_dir=tmp_path / "logs", seed=7, flights=16, days=1,
        topic_prefix=unique_name("e2e") + "-", idle_seconds=3.0)
    outcome = run_bounded(spec, timeout=300)
    logs = {p.name: p.read_text()[-2000:] for p in spec.log_dir.glob("*.log")}
    assert outcome.ok, (outcome.exit_codes, logs)

    counts = reconcile(spec.bootstrap, spec.topic_prefix, spec.lake_dir, kafka_broker.cluster_id,
                       isolated_database_url)
    by_topic = {c.topic: c for c in counts}
    assert all(c.agrees for c in counts), ([c for c in counts if not c.agrees], logs)
    for topic in ("flight_lifecycle", "bookings", "seat_inventory", "seat_map",
                  "inventory_metrics"):
        assert by_topic[topic].event_ids > 0, topic
    # The one malformed booking the pipeline injects: kept in the lake, rejected by the ETL,
    # and dead-lettered by the engine (which the warehouse loads like any event).
    assert by_topic["bookings"].kafka_records == by_topic["bookings"].event_ids + 1
    assert by_topic["bookings"].rejects == 1
    assert by_topic["dead_letter"].warehouse_rows >= 1
