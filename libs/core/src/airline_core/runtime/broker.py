"""Whether the broker is reachable, as one consumer process sees it.

librdkafka reports an outage through the error callback (all brokers down, transport
errors) and recovers silently; a record or an end-of-partition event proves it is back, and
on idle inputs, where neither comes, a metadata request now and then does. Readiness says
"kafka unreachable" while it is down, and a transactional component does not try to commit
into an outage (librdkafka can block past its own timeouts while the coordinator is away).
"""

from __future__ import annotations

import time
from typing import Any

from confluent_kafka import KafkaError, KafkaException

from airline_core.logging import get_logger

log = get_logger(__name__)
_DOWN_CODES = frozenset({KafkaError._ALL_BROKERS_DOWN, KafkaError._TRANSPORT})


class BrokerWatch:
    """Tracks reachability; ``on_error`` is the clients' ``error_cb``."""

    def __init__(self, probe_every_s: float = 2.0) -> None:
        self.down = False
        self._probe_every_s = probe_every_s
        self._next_probe = 0.0

    def on_error(self, error: KafkaError) -> None:
        """librdkafka's error callback: an outage marks the broker down."""
        if error.code() in _DOWN_CODES:
            self.down = True
        log.warning("kafka client error", error=str(error))

    def seen(self) -> None:
        """A record or end-of-partition arrived: the broker answers."""
        self.down = False

    def probe(self, client: Any) -> None:
        """While down, ask ``client`` for metadata at most every ``probe_every_s`` seconds."""
        if not self.down:
            return
        now = time.monotonic()
        if now < self._next_probe:
            return
        self._next_probe = now + self._probe_every_s
        try:
            client.list_topics(timeout=1.0)
        except KafkaException:
            return
        self.down = False
