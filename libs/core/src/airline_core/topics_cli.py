"""``airline-topics``: create, list, describe, delete the registry's topics, and export them as
the Helm chart's ``topics`` values (the chart renders ``KafkaTopic`` resources from those)."""

from __future__ import annotations

import dataclasses
import json
import sys
from collections.abc import Sequence

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient, NewTopic

from airline_core import config
from airline_core.config import KafkaSettings, LogSettings, group, positive, setting
from airline_core.errors import AirlineError, ConfigError
from airline_core.kafka import ConnectionDiagnosis, make_admin, partition_counts
from airline_core.logging import configure_logging, get_logger
from airline_core.topics import DEFAULT_PARTITIONS, REGISTRY, physical_name

log = get_logger(__name__)
ACTIONS = ("create", "list", "describe", "delete", "export-values")


@dataclasses.dataclass(frozen=True)
class TopicsSettings:
    """Settings of ``airline-topics``."""

    kafka: KafkaSettings = group(KafkaSettings)
    log: LogSettings = group(LogSettings)
    partitions: int = setting("TOPIC_PARTITIONS", DEFAULT_PARTITIONS, "partitions of every topic",
                              check=positive)
    replication_factor: int = setting(
        "TOPIC_REPLICATION_FACTOR", 1, "replicas of every topic (1 on one broker)", check=positive)


def export_values(settings: TopicsSettings) -> dict[str, object]:
    """The chart's ``topics`` values: one entry per registry topic."""
    return {
        "partitions": settings.partitions,
        "replicas": settings.replication_factor,
        "items": [
            {"name": spec.name, "description": spec.description, "config": dict(spec.configs)}
            for spec in REGISTRY
        ],
    }


def _admin(settings: TopicsSettings) -> tuple[AdminClient, ConnectionDiagnosis]:
    """An admin client, and what explains its connection failures."""
    diagnosis = ConnectionDiagnosis(settings.kafka)
    return make_admin(settings.kafka, diagnosis=diagnosis), diagnosis


def create(settings: TopicsSettings) -> int:
    """Create every missing topic; existing topics must already have the right partition count."""
    admin, diagnosis = _admin(settings)
    names = [physical_name(s.topic, settings.kafka.topic_prefix) for s in REGISTRY]
    existing = partition_counts(admin, names, diagnosis=diagnosis)
    wanted = [
        NewTopic(name, num_partitions=settings.partitions,
                 replication_factor=settings.replication_factor, config=dict(spec.configs))
        for spec, name in zip(REGISTRY, names, strict=True) if existing[name] is None
    ]
    for name, count in existing.items():
        if count is not None and count != settings.partitions:
            raise AirlineError(f"topic {name} exists with {count} partitions, "
                               f"expected {settings.partitions}")
    for name, future in (admin.create_topics(wanted).items() if wanted else []):
        try:
            future.result()
        except KafkaException as e:
            raise AirlineError(f"cannot create topic {name}: {e}") from e
        log.info("topic created", topic=name, partitions=settings.partitions)
    log.info("topics ready", created=len(wanted), existing=len(names) - len(wanted))
    return 0


def delete(settings: TopicsSettings) -> int:
    """Delete every registry topic (local development only)."""
    admin, diagnosis = _admin(settings)
    names = [physical_name(s.topic, settings.kafka.topic_prefix) for s in REGISTRY]
    present = [n for n, c in partition_counts(admin, names, diagnosis=diagnosis).items()
               if c is not None]
    for name, future in (admin.delete_topics(present).items() if present else []):
        future.result()
        log.info("topic deleted", topic=name)
    return 0


def describe(settings: TopicsSettings) -> int:
    """Print each registry topic with its partition count on the broker (or 'missing')."""
    admin, diagnosis = _admin(settings)
    names = {physical_name(s.topic, settings.kafka.topic_prefix): s for s in REGISTRY}
    for name, count in partition_counts(admin, names, diagnosis=diagnosis).items():
        configs = ", ".join(f"{k}={v}" for k, v in names[name].configs.items())
        print(f"{name:32} {'missing' if count is None else f'{count} partitions':14} {configs}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``airline-topics``."""
    parser = config.parser_for(TopicsSettings, "airline-topics", __doc__ or "")
    parser.add_argument("action", choices=ACTIONS, help="what to do")
    args = vars(parser.parse_args(argv))
    action = args.pop("action")
    try:
        settings = config.from_values(TopicsSettings, args)
    except ConfigError as e:
        print(f"airline-topics: configuration error: {e}", file=sys.stderr)
        return 2
    configure_logging(settings.log, component="airline-topics")
    try:
        if action == "list":
            for spec in REGISTRY:
                print(physical_name(spec.topic, settings.kafka.topic_prefix))
            return 0
        if action == "export-values":
            json.dump(export_values(settings), sys.stdout, indent=2)
            print()
            return 0
        return {"create": create, "delete": delete, "describe": describe}[action](settings)
    except ConfigError as e:
        log.error("configuration error", error=str(e))
        return 2
    except AirlineError as e:
        log.error("failed", error=str(e))
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
