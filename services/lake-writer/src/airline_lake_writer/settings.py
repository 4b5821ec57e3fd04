"""Settings of ``airline-lake-writer`` (loaded once at start into a frozen object)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from airline_core.config import (
    ConsumerSettings,
    KafkaSettings,
    LogSettings,
    group,
    lake_dir,
    metrics_port,
    positive,
    setting,
    stop_when_idle,
)


@dataclasses.dataclass(frozen=True)
class Settings:
    """Everything the lake writer reads from flags and the environment."""

    kafka: KafkaSettings = group(KafkaSettings)
    consumer: ConsumerSettings = group(ConsumerSettings)
    log: LogSettings = group(LogSettings)
    metrics_port: int = metrics_port(8003)
    group_id: str = setting(
        "KAFKA_GROUP_ID", "airline-lake-writer",
        "consumer group; instances sharing it (and LAKE_DIR) split the partitions")
    lake_dir: Path = lake_dir()
    roll_max_records: int = setting(
        "LAKE_ROLL_MAX_RECORDS", 20000, "a partition's buffer becomes a roll at this many "
        "records", check=positive)
    roll_max_bytes: int = setting(
        "LAKE_ROLL_MAX_BYTES", 32 * 1024 * 1024, "... or at this many bytes (values plus "
        "newlines)", check=positive)
    idle_flush_seconds: float = setting(
        "LAKE_IDLE_FLUSH_SECONDS", 30.0, "a partition's buffer is rolled when nothing arrived "
        "on it for this long (so quiet partitions still land)", check=positive)
    new_source: bool = setting(
        "LAKE_NEW_SOURCE", False, "accept a Kafka cluster or topic incarnation other than the "
        "one recorded in raw/_source.json, starting a new generation (+g<N> names) beside the "
        "existing files (true/false)")
    retry_max_seconds: float = setting(
        "LAKE_RETRY_MAX_SECONDS", 60.0, "longest backoff between attempts to write a roll after "
        "a storage error (disk full, permission denied)", check=positive)
    stop_when_idle: float = stop_when_idle()

