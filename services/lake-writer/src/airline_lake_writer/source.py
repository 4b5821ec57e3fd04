"""The source incarnation: which Kafka cluster and topic incarnations the lake's offsets belong to.

Offsets mean nothing without their source. A fresh broker (new KRaft cluster id) or a deleted
and recreated topic (new topic id) restarts at offset 0; resuming at the lake's ``last + 1``
would silently skip its first records. So ``raw/_source.json`` records the cluster id and the
topic ids, and the writer refuses to start against anything else unless told ``--new-source``.
With it, the lake keeps its files (they are history) and starts a new *generation*: every new
file and manifest name carries ``+g<N>``, so the new offsets never collide with the old ones.
"""

from __future__ import annotations

import contextlib
import fcntl
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import msgspec
from airline_core.config import KafkaSettings
from airline_core.kafka import make_admin
from airline_core.lake import manifest as mf
from airline_core.lake.layout import source_path
from airline_core.logging import get_logger
from airline_core.topics import LAKE_TOPICS, logical_topic, physical_name
from confluent_kafka import KafkaException, TopicCollection

from airline_lake_writer.durable import ensure_dir, write_durable
from airline_lake_writer.errors import CorruptLakeError, LakeWriterError, SourceMismatchError

log = get_logger(__name__)

FORMAT_VERSION: Final = 1


class Incarnation(msgspec.Struct, frozen=True):
    """One source generation: the cluster and the topic ids (by logical topic name)."""

    generation: int
    cluster_id: str
    topic_ids: dict[str, str]


class SourceFile(msgspec.Struct, frozen=True):
    """Content of ``raw/_source.json``: the current generation and every earlier one."""

    format_version: int
    current: Incarnation
    history: list[Incarnation] = []


@dataclass(frozen=True)
class Decision:
    """What to do at start: the generation to write in, and the file to write (if changed)."""

    generation: int
    write: SourceFile | None
    note: str


def differences(recorded: Incarnation, cluster_id: str, topic_ids: Mapping[str, str]
                ) -> list[str]:
    """Human-readable differences between the recorded and the observed source."""
    found = []
    if recorded.cluster_id != cluster_id:
        found.append(f"cluster id {recorded.cluster_id} -> {cluster_id}")
    for topic, topic_id in sorted(topic_ids.items()):
        old = recorded.topic_ids.get(topic)
        if old is not None and old != topic_id:
            found.append(f"topic {topic} id {old} -> {topic_id}")
    return found


def decide(recorded: SourceFile | None, cluster_id: str, topic_ids: Mapping[str, str], *,
           new_source: bool, highest_generation_seen: int | None) -> Decision:
    """Apply the incarnation rule (pure: no I/O).

    ``highest_generation_seen`` is the highest generation among existing manifests (``None``
    when the lake has none); it guards a lake whose ``_source.json`` was lost.
    """
    observed = dict(topic_ids)
    if recorded is None:
        if highest_generation_seen is None:
            return Decision(0, SourceFile(FORMAT_VERSION, Incarnation(0, cluster_id, observed)),
                            "new lake: recorded the source")
        if not new_source:
            raise SourceMismatchError(
                "the lake has manifests but no raw/_source.json, so it cannot tell which Kafka "
                "cluster its offsets belong to; refusing to resume. If this broker is a new "
                "source, start once with --new-source (LAKE_NEW_SOURCE=true)")
        generation = highest_generation_seen + 1
        return Decision(generation,
                        SourceFile(FORMAT_VERSION, Incarnation(generation, cluster_id, observed)),
                        "no source record: started a new generation")
    current = recorded.current
    diffs = differences(current, cluster_id, observed)
    if not diffs:
        if set(observed) <= set(current.topic_ids):
            return Decision(current.generation, None, "same source")
        merged = Incarnation(current.generation, cluster_id, {**current.topic_ids, **observed})
        return Decision(current.generation,
                        SourceFile(FORMAT_VERSION, merged, list(recorded.history)),
                        "same source: recorded new topics")
    if not new_source:
        raise SourceMismatchError(
            f"the lake's offsets belong to another Kafka source ({'; '.join(diffs)}); resuming "
            "would skip or duplicate records. Refusing to start: if this is a new source on "
            "purpose, start with --new-source (LAKE_NEW_SOURCE=true) to begin generation "
            f"{current.generation + 1} beside the existing files")
    generation = max(current.generation, highest_generation_seen or 0) + 1
    return Decision(
        generation,
        SourceFile(FORMAT_VERSION, Incarnation(generation, cluster_id, observed),
                   [*recorded.history, current]),
        f"new source ({'; '.join(diffs)}): started generation {generation}")


# --------------------------------------------------------------------------- file I/O
def read_source(lake_dir: Path) -> SourceFile | None:
    """The recorded source, ``None`` when the lake has none yet."""
    path = source_path(lake_dir)
    try:
        return msgspec.json.decode(path.read_bytes(), type=SourceFile)
    except FileNotFoundError:
        return None
    except msgspec.MsgspecError as e:
        raise CorruptLakeError(f"{path} is not a valid source record: {e}") from e


def write_source(lake_dir: Path, source: SourceFile) -> None:
    """Write ``raw/_source.json`` durably."""
    write_durable(source_path(lake_dir), msgspec.json.format(msgspec.json.encode(source)) + b"\n",
                  crash_name="lake.source_before_rename")


@contextlib.contextmanager
def source_lock(lake_dir: Path) -> Iterator[None]:
    """Serialise the check-and-write of ``_source.json`` between instances sharing the lake."""
    path = source_path(lake_dir).with_name(".source.lock")
    ensure_dir(path.parent)
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def observe(kafka: KafkaSettings, timeout: float = 15.0) -> tuple[str, dict[str, str]]:
    """The broker's cluster id and the topic id of every lake topic (by logical name)."""
    admin = make_admin(kafka, "airline-lake-writer-admin")
    prefix = kafka.topic_prefix
    try:
        cluster = admin.describe_cluster(request_timeout=timeout).result(timeout)
        names = [physical_name(t, prefix) for t in LAKE_TOPICS]
        futures = admin.describe_topics(TopicCollection(names), request_timeout=timeout)
        topic_ids = {str(logical_topic(name, prefix)): str(future.result(timeout).topic_id)
                     for name, future in futures.items()}
    except KafkaException as e:
        raise LakeWriterError(f"cannot describe the Kafka source: {e}") from e
    return str(cluster.cluster_id), topic_ids


def check(lake_dir: Path, cluster_id: str, topic_ids: dict[str, str], *, new_source: bool
          ) -> int:
    """Apply the incarnation rule to the lake (under a lock); return the generation to use."""
    with source_lock(lake_dir):
        seen = [i.generation for t in LAKE_TOPICS for i in mf.manifest_ids(lake_dir, str(t))]
        decision = decide(read_source(lake_dir), cluster_id, topic_ids, new_source=new_source,
                          highest_generation_seen=max(seen, default=None))
        if decision.write is not None:
            write_source(lake_dir, decision.write)
    log.info("source checked", cluster_id=cluster_id, generation=decision.generation,
             note=decision.note)
    return decision.generation
