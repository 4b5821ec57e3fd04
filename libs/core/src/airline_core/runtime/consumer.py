"""The consumer settings every long-running service shares, turned into librdkafka config.

Static membership (``group.instance.id``) when the instance has a stable name, the session
timeout, partition-end events (how the loop knows an input is read to its end, even when the
end is a transaction marker), statistics for the lag metric, and the error callback the broker
watch listens on.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from confluent_kafka import KafkaError

from airline_core.config import ConsumerSettings


def consumer_config(settings: ConsumerSettings, instance_id: str, *,
                    error_cb: Callable[[KafkaError], None],
                    stats_cb: Callable[[str], None] | None = None) -> dict[str, Any]:
    """The librdkafka settings of a service's group consumer (``instance_id`` empty: none)."""
    config: dict[str, Any] = {
        "enable.partition.eof": True,
        "session.timeout.ms": settings.session_timeout_ms,
        "error_cb": error_cb,
    }
    if instance_id:
        config["group.instance.id"] = instance_id
    if settings.statistics_interval_ms and stats_cb is not None:
        config["statistics.interval.ms"] = settings.statistics_interval_ms
        config["stats_cb"] = stats_cb
    return config
