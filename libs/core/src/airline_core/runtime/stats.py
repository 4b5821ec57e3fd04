"""Consumer lag from librdkafka statistics (``statistics.interval.ms``), one way for everyone.

Lag = the partition's last stable offset (what a ``read_committed`` reader can reach) minus
the next offset handed to the application. librdkafka's own ``consumer_lag`` counts from the
offset the *consumer* committed, which a transactional engine never does (its offsets are
committed by its producer's transactions), so it is not used.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

from airline_core.logging import get_logger

log = get_logger(__name__)


def partition_lags(payload: str) -> Iterator[tuple[str, int, int]]:
    """(broker topic name, partition, lag) of every assigned partition in a statistics JSON."""
    try:
        stats = json.loads(payload)
        for name, topic in stats.get("topics", {}).items():
            for part, info in topic.get("partitions", {}).items():
                end, position = info.get("ls_offset", -1), info.get("app_offset", -1)
                if int(part) >= 0 and end >= 0 and position >= 0:
                    yield name, int(part), max(end - position, 0)
    except (ValueError, TypeError, AttributeError) as e:
        log.warning("unreadable librdkafka statistics", error=str(e))
