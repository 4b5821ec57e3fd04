"""``airline-lake-writer``: land every record of every lake topic in the raw lake, exactly once.

Files are immutable and named by topic, partition and offsets; a roll's manifest is written
after its files are durable and offsets are committed only after that. On start the writer
resumes at the lake's own record of progress, and refuses a Kafka source other than the one the
lake recorded unless started with --new-source.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from airline_core import config
from airline_core.errors import AirlineError
from airline_core.health import HealthServer
from airline_core.kafka import require_topics
from airline_core.lifecycle import StopSignal
from airline_core.logging import configure_logging, get_logger
from airline_core.topics import LAKE_TOPICS

from airline_lake_writer.app import LakeWriter, check_source, observe_source
from airline_lake_writer.errors import SourceMismatchError
from airline_lake_writer.settings import Settings
from airline_lake_writer.store import LakeStore

PROG = "airline-lake-writer"
log = get_logger(__name__)


def load_settings(argv: Sequence[str] | None) -> Settings:
    """Parse flags and environment (``--new-source`` also works without a value)."""
    return config.load(Settings, argv, prog=PROG, description=__doc__ or "")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``airline-lake-writer``; exit 0 when stopped cleanly, 1 on failure, 3 when
    the lake belongs to another Kafka source (see ``--new-source``)."""
    settings = load_settings(argv)
    configure_logging(settings.log, component=PROG)
    stop = StopSignal().install()
    writer: LakeWriter | None = None

    def readiness() -> tuple[bool, str]:
        return writer.readiness() if writer else (False, "starting")

    health = HealthServer(settings.metrics_port, readiness).start()
    try:
        require_topics(settings.kafka, LAKE_TOPICS)
        cluster_id, topic_ids = observe_source(settings)
        generation = check_source(settings, cluster_id, topic_ids)
        store = LakeStore(settings.lake_dir, generation, cluster_id, topic_ids)
        writer = LakeWriter(settings, store, stop)
        writer.health = health
        log.info("lake writer started", lake_dir=str(settings.lake_dir), generation=generation,
                 metrics_port=health.port, group_id=settings.group_id)
        return writer.run()
    except SourceMismatchError as e:
        log.error("refusing to start", error=str(e))
        print(f"{PROG}: {e}", file=sys.stderr)
        return 3
    except AirlineError as e:
        log.error("failed", error=str(e))
        return 1
    finally:
        health.stop()


if __name__ == "__main__":
    raise SystemExit(main())
