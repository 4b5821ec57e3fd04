"""Reconcile one pipeline run: what Kafka holds = what the lake stored = what the warehouse loaded.

Per lake topic it counts the committed Kafka records and their distinct valid event ids, the lake
lines of this broker incarnation (from the manifests, counting the lines of the files they list),
and the warehouse ledger rows for exactly those event ids plus the rejects. The three agree when
records = lake lines and event ids = warehouse rows and records - event ids = rejects.
"""

from __future__ import annotations

import contextlib
import io
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg2
from airline_core.errors import InvalidEventError
from airline_core.events import decode_header
from airline_core.kafka import is_partition_eof
from airline_core.topics import LAKE_TOPICS, Topic, physical_name
from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition


@dataclass(frozen=True)
class TopicCounts:
    """The counts of one topic at each stage."""

    topic: str
    kafka_records: int
    event_ids: int
    lake_lines: int
    warehouse_rows: int
    rejects: int

    @property
    def agrees(self) -> bool:
        """Every stage holds every record once."""
        return (self.kafka_records == self.lake_lines
                and self.event_ids == self.warehouse_rows
                and self.kafka_records - self.event_ids == self.rejects)


def read_topic_ids(bootstrap: str, topic: str, timeout: float = 60.0,
                   kafka_config: Mapping[str, Any] | None = None) -> tuple[int, set[str]]:
    """(records, distinct valid event ids) committed in ``topic``, read from the beginning
    (connecting with ``kafka_config``, e.g. a secured broker's admin, if given)."""
    consumer = Consumer({**(kafka_config or {}), "bootstrap.servers": bootstrap,
                         "group.id": "airline-reconcile",
                         "enable.auto.commit": False, "isolation.level": "read_committed",
                         "allow.auto.create.topics": False})
    try:
        metadata = consumer.list_topics(topic, timeout=10).topics[topic]
        ends: dict[int, int] = {}
        for partition in metadata.partitions:
            _, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=10)
            ends[partition] = high
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in ends])
        records, ids = 0, set()
        pending = {p for p, end in ends.items() if end > 0}
        deadline = time.monotonic() + timeout
        while pending and time.monotonic() < deadline:
            for message in consumer.consume(1000, timeout=0.5):
                if is_partition_eof(message):
                    continue
                if message.error() is not None:
                    raise RuntimeError(f"reading {topic}: {message.error()}")
                records += 1
                with contextlib.suppress(InvalidEventError):  # counted as a record, not an id
                    ids.add(decode_header(message.value()).event_id)
            for position in consumer.position([TopicPartition(topic, p) for p in pending]):
                if position.offset >= ends[position.partition]:
                    pending.discard(position.partition)
        if pending:
            raise RuntimeError(f"could not read {topic} to its end within {timeout:.0f}s")
        return records, ids
    finally:
        consumer.close()


def lake_lines(lake_dir: Path, topic: str, cluster_id: str) -> int:
    """Lines of the lake files of ``topic`` whose manifests name this broker incarnation."""
    total = 0
    manifest_dir = lake_dir / "raw" / "_manifests" / topic
    for manifest_path in sorted(manifest_dir.glob("*.json")):
        manifest = json.loads(manifest_path.read_text())
        if manifest["source"]["cluster_id"] != cluster_id:
            continue
        for entry in manifest["files"]:
            with (lake_dir / entry["path"]).open("rb") as data:
                total += sum(1 for _ in data)
    return total


def warehouse_counts(database_url: str, ids_by_topic: dict[str, set[str]]
                     ) -> tuple[dict[str, int], dict[str, int]]:
    """Ledger rows holding exactly these event ids, and rejects, per topic."""
    with psycopg2.connect(database_url) as conn, conn.cursor() as cur:
        cur.execute("CREATE TEMP TABLE run_ids (topic text, event_id text) ON COMMIT DROP")
        buffer = io.StringIO("".join(f"{topic}\t{event_id}\n" for topic, ids in
                                     ids_by_topic.items() for event_id in ids))
        cur.copy_expert("COPY run_ids FROM STDIN", buffer)
        cur.execute("SELECT r.topic, count(*) FROM run_ids r JOIN etl_event_ledger l "
                    "ON l.event_id = r.event_id AND l.topic = r.topic GROUP BY r.topic")
        rows = {topic: int(count) for topic, count in cur.fetchall()}
        cur.execute("SELECT topic, count(*) FROM etl_rejects GROUP BY topic")
        rejects = {topic: int(count) for topic, count in cur.fetchall()}
    return rows, rejects


def reconcile(bootstrap: str, topic_prefix: str, lake_dir: Path, cluster_id: str,
              database_url: str, rejects_before: dict[str, int] | None = None,
              kafka_config: Mapping[str, Any] | None = None) -> list[TopicCounts]:
    """Counts of every lake topic at every stage, for this broker incarnation.

    ``rejects_before`` (rejects per topic before this run's ETL) makes the reject count this
    run's own when the warehouse already held earlier runs.
    """
    kafka: dict[str, tuple[int, set[str]]] = {
        str(t): read_topic_ids(bootstrap, physical_name(t, topic_prefix), kafka_config=kafka_config)
        for t in LAKE_TOPICS}
    rows, rejects = warehouse_counts(database_url, {t: ids for t, (_, ids) in kafka.items()})
    before = rejects_before or {}
    return [
        TopicCounts(topic=topic, kafka_records=records, event_ids=len(ids),
                    lake_lines=lake_lines(lake_dir, topic, cluster_id),
                    warehouse_rows=rows.get(topic, 0),
                    rejects=rejects.get(topic, 0) - before.get(topic, 0))
        for topic, (records, ids) in kafka.items()
    ]


def reject_counts(database_url: str) -> dict[str, int]:
    """Rejects per topic now (0 rows when the warehouse has no tables yet)."""
    with psycopg2.connect(database_url) as conn, conn.cursor() as cur:
        cur.execute("SELECT to_regclass('etl_rejects') IS NOT NULL")
        if not cur.fetchall()[0][0]:
            return {}
        cur.execute("SELECT topic, count(*) FROM etl_rejects GROUP BY topic")
        return {topic: int(count) for topic, count in cur.fetchall()}


def format_table(counts: list[TopicCounts]) -> str:
    """The summary table printed by the demo."""
    header = (f"{'topic':20} {'kafka records':>14} {'event ids':>10} {'lake lines':>11} "
              f"{'warehouse rows':>15} {'rejects':>8}  agree")
    lines = [header, "-" * len(header)]
    for c in counts:
        lines.append(f"{c.topic:20} {c.kafka_records:>14,} {c.event_ids:>10,} "
                     f"{c.lake_lines:>11,} {c.warehouse_rows:>15,} {c.rejects:>8,}  "
                     f"{'yes' if c.agrees else 'NO'}")
    return "\n".join(lines)


__all__ = ["Topic", "TopicCounts", "format_table", "reconcile", "reject_counts"]
