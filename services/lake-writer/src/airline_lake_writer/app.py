"""``airline-lake-writer`` as a composition of the core stream runtime and the lake's parts.

The runtime (:mod:`airline_core.runtime`) supplies the consume loop, the broker watch, lag
from statistics, the external-commit checkpoint and the service lifecycle; the lake writer
supplies its processor (:mod:`.processor`: rolls cut from each partition, landed durably, then
committed), the lake on disk (:mod:`.store`) and the source incarnation check (:mod:`.source`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from airline_core.health import HealthServer
from airline_core.kafka import require_topics
from airline_core.lifecycle import StopSignal
from airline_core.logging import get_logger
from airline_core.runtime.broker import BrokerWatch
from airline_core.runtime.loop import ConsumeLoop
from airline_core.runtime.service import run_service
from airline_core.topics import LAKE_TOPICS

from airline_lake_writer import source
from airline_lake_writer.processor import LakeWriter
from airline_lake_writer.settings import Settings
from airline_lake_writer.store import LakeStore

log = get_logger(__name__)
PROG: Final = "airline-lake-writer"
POLL_TIMEOUT_S: Final = 0.2


class LakeWriterService:
    """The running lake writer (one per process)."""

    def __init__(self, settings: Settings, stop: StopSignal,
                 health: HealthServer | None = None) -> None:
        self.settings = settings
        self.stop = stop
        self.health = health
        self.broker = BrokerWatch()
        self.writer: LakeWriter | None = None

    def readiness(self) -> tuple[bool, str]:
        """Not ready until the lake is checked and partitions are assigned (then the
        processor's own answer: broker reachable, storage writable)."""
        return self.writer.readiness() if self.writer else (False, "starting")

    def run(self) -> int:
        """Check the source, then consume until stopped; 0 when everything landed."""
        s = self.settings
        require_topics(s.kafka, LAKE_TOPICS)
        cluster_id, topic_ids = source.observe(s.kafka)
        generation = source.check(s.lake_dir, cluster_id, topic_ids, new_source=s.new_source)
        store = LakeStore(s.lake_dir, generation, cluster_id, topic_ids)
        writer = self.writer = LakeWriter(s, store, self.broker)
        log.info("lake writer started", lake_dir=str(s.lake_dir), generation=generation,
                 metrics_port=self.health.port if self.health else None, group_id=s.group_id)
        loop = ConsumeLoop(writer, self.stop, batch_size=s.consumer.batch_size,
                           poll_timeout_s=POLL_TIMEOUT_S, idle_seconds=s.stop_when_idle,
                           broker=self.broker, health=self.health)
        try:
            loop.run()
            log.info("stopping", reason=self.stop.reason)
            return writer.finish()
        finally:
            writer.close()


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``airline-lake-writer``: 0 when stopped cleanly, 1 on failure, 3 when
    the lake belongs to another Kafka source (see ``--new-source``)."""
    from airline_lake_writer import cli

    return run_service(Settings, argv, prog=PROG, description=cli.__doc__ or "",
                       build=LakeWriterService)
