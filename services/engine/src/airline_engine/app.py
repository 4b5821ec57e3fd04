"""``airline-engine`` as a composition of the core stream runtime and the engine's parts.

The runtime (:mod:`airline_core.runtime`) supplies the consume loop, broker watch, lag from
statistics, the transactional checkpoint and the service lifecycle; the engine supplies its
processor (:mod:`.processor`: validation, the event-time merge, the core, the commit), its
partition tasks restored from the changelog (:mod:`.tasks`) and the live offers in Redis.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from airline_core.health import HealthServer
from airline_core.kafka import require_topics
from airline_core.lifecycle import StopSignal
from airline_core.runtime.broker import BrokerWatch
from airline_core.runtime.checkpoint import Outcome, TransactionalCheckpoint
from airline_core.runtime.loop import ConsumeLoop
from airline_core.runtime.service import run_service
from airline_core.topics import ENGINE_INPUTS, Topic, physical_name

from airline_engine import metrics
from airline_engine._log import logger
from airline_engine.core import core_config
from airline_engine.offers import LiveOffers
from airline_engine.processor import LOGICAL, EngineProcessor
from airline_engine.restore import ChangelogReader
from airline_engine.settings import Settings
from airline_engine.tasks import Tasks

log = logger(__name__)
PROG: Final = "airline-engine"
#: A poll that returns at once when records wait, and gives the loop a turn at least this often.
POLL_TIMEOUT_S: Final = 0.1


def transaction_timeout_ms(settings: Settings) -> int:
    """How long the broker lets a transaction of ours stay open: Kafka Streams' exactly-once
    default of 10 s, or three commit intervals if that is longer. Short, because an open
    transaction that nobody finishes (an abandoned producer, a stalled process) holds back
    every ``read_committed`` reader of our outputs and of the changelog until it times out."""
    return max(10_000, 3 * settings.commit_interval_ms)


class EngineService:
    """The running engine (one per process)."""

    def __init__(self, settings: Settings, stop: StopSignal,
                 health: HealthServer | None = None) -> None:
        self.settings = settings
        self.stop = stop
        self.health = health
        self.broker = BrokerWatch()
        self.processor: EngineProcessor | None = None

    def readiness(self) -> tuple[bool, str]:
        """503 while restoring state or while the broker is unreachable."""
        if self.broker.down:
            return False, "kafka unreachable"
        if self.processor is None or self.processor.tasks.restoring:
            return False, "restoring state"
        return True, f"ready: partitions {sorted(self.processor.tasks.by_partition)}"

    def run(self) -> int:
        """Run until stopped (SIGTERM or ``--stop-when-idle``); returns the exit status."""
        s = self.settings
        require_topics(s.kafka, (*ENGINE_INPUTS, Topic.ENGINE_STATE_CHANGELOG),
                       co_partitioned=True)
        require_topics(s.kafka, (Topic.INVENTORY_METRICS, Topic.PROMO_DECISIONS,
                                 Topic.DEAD_LETTER))
        client_id = f"{s.group_id}-{s.instance_id}"
        checkpoint = TransactionalCheckpoint(
            s.kafka, client_id, s.transactional_id, timeout_ms=transaction_timeout_ms(s),
            on_error=self.broker.on_error, name="engine", count=_count_transaction)
        reader = ChangelogReader(s.kafka, physical_name(Topic.ENGINE_STATE_CHANGELOG,
                                                        s.kafka.topic_prefix), client_id)
        offers = (LiveOffers(s.redis_url, s.redis_retry_seconds, background=True)
                  if s.redis_url else None)
        tasks = Tasks(reader, core_config(s), LOGICAL, s.idle_input_ms / 1000.0, offers)
        beat = self.health.beat if self.health else None
        processor = self.processor = EngineProcessor(s, checkpoint, tasks, self.broker,
                                                     offers, beat)
        log.info("engine started", transactional_id=s.transactional_id, policy=s.policy,
                 group_id=s.group_id, instance_id=s.instance_id,
                 metrics_port=self.health.port if self.health else None)
        loop = ConsumeLoop(processor, self.stop, batch_size=s.consumer.batch_size,
                           poll_timeout_s=POLL_TIMEOUT_S, idle_seconds=s.stop_when_idle,
                           broker=self.broker, health=self.health)
        try:
            loop.run()
            if checkpoint.open:
                processor.commit()  # a clean stop leaves nothing uncommitted
        except BaseException:
            processor.fail()  # no commit on the way out: the successor restores instead
            raise
        finally:
            processor.consumer.close()
            reader.close()
            if offers is not None:
                offers.close()
            tasks.drop_all()
            log.info("engine stopped", reason=self.stop.reason, processed=processor.processed,
                     restores=tasks.restores, restored_records=tasks.restored_records,
                     partitions={str(p): h for p, h in sorted(tasks.history.items())})
        return 0


def _count_transaction(outcome: Outcome) -> None:
    metrics.TRANSACTIONS.labels(str(outcome)).inc()


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``airline-engine``."""
    from airline_engine import cli

    return run_service(Settings, argv, prog=PROG, description=cli.__doc__ or "",
                       build=EngineService)
