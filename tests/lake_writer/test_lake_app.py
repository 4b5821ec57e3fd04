"""The Kafka shell's rules, with a stand-in consumer: storage errors block and retry without
committing past the disk, revocation drops what was not landed, assignment resumes from the lake."""

import errno
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from airline_core import config
from airline_lake_writer import processor, store
from airline_lake_writer.errors import LakeStorageError
from airline_lake_writer.metrics import STORAGE_ERRORS
from airline_lake_writer.settings import Settings
from airline_lake_writer.store import LakeStore
from confluent_kafka import OFFSET_BEGINNING, TopicPartition

PREFIX = "t-"


class FakeMessage:
    def __init__(self, topic: str, partition: int, offset: int, value: bytes | None) -> None:
        self._t, self._p, self._o, self._v = topic, partition, offset, value

    def topic(self) -> str:
        return self._t

    def partition(self) -> int:
        return self._p

    def offset(self) -> int:
        return self._o

    def value(self) -> bytes | None:
        return self._v

    def key(self) -> bytes:
        return b"BA1"

    def headers(self) -> None:
        return None

    def timestamp(self) -> tuple[int, int]:
        return (1, 1_700_000_000_000)

    def error(self) -> None:
        return None


class FakeConsumer:
    def __init__(self) -> None:
        self.assigned: list[TopicPartition] = []
        self.commits: list[tuple[str, int, int]] = []
        self.paused = False

    def subscribe(self, topics: list[str], **callbacks: Any) -> None:
        self.topics = topics

    def assign(self, partitions: list[TopicPartition]) -> None:
        self.assigned = list(partitions)

    def assignment(self) -> list[TopicPartition]:
        return self.assigned

    def commit(self, offsets: list[TopicPartition], asynchronous: bool) -> None:
        assert asynchronous is False
        self.commits += [(tp.topic, tp.partition, tp.offset) for tp in offsets]

    def pause(self, partitions: list[TopicPartition]) -> None:
        self.paused = True

    def resume(self, partitions: list[TopicPartition]) -> None:
        self.paused = False


@pytest.fixture
def writer(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[processor.LakeWriter]:
    fake = FakeConsumer()
    monkeypatch.setattr(processor.kafka_util, "make_consumer", lambda *a, **k: fake)
    settings = config.from_values(Settings, {
        "KAFKA_TOPIC_PREFIX": PREFIX, "LAKE_DIR": str(tmp_path), "LAKE_ROLL_MAX_RECORDS": "3",
        "LAKE_IDLE_FLUSH_SECONDS": "1000"}, environ={})
    yield processor.LakeWriter(settings, LakeStore(tmp_path, 0, "c", {}))


def feed(w: processor.LakeWriter, partition: int, offsets: range) -> None:
    messages: Any = [FakeMessage(f"{PREFIX}bookings", partition, o, b'{"o":%d}' % o)
                     for o in offsets]
    w.on_records(messages, 0.0)


def manifests(tmp_path: Path) -> list[str]:
    directory = tmp_path / "raw/_manifests/bookings"
    return sorted(p.name for p in directory.iterdir()) if directory.exists() else []


def failing(times: int, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    real = store.write_durable
    calls = [0]

    def write(path: Path, content: bytes, *, crash_name: str) -> None:
        calls[0] += 1
        if calls[0] <= times:
            raise LakeStorageError(f"cannot write {path}: disk full", "ENOSPC")
        real(path, content, crash_name=crash_name)

    monkeypatch.setattr(store, "write_durable", write)
    return calls


def test_assignment_resumes_from_the_lake(writer: processor.LakeWriter, tmp_path: Path) -> None:
    consumer: Any = writer.consumer
    writer.on_assign(consumer, [TopicPartition(f"{PREFIX}bookings", 0)])
    assert consumer.assigned[0].offset == OFFSET_BEGINNING
    feed(writer, 0, range(0, 7))
    assert manifests(tmp_path) == ["bookings+0+00000000000000000000+00000000000000000002.json",
                                   "bookings+0+00000000000000000003+00000000000000000005.json"]
    assert consumer.commits == [(f"{PREFIX}bookings", 0, 3), (f"{PREFIX}bookings", 0, 6)]
    writer.on_revoke(consumer, consumer.assigned)  # offset 6 was buffered, never landed
    writer.on_assign(consumer, [TopicPartition(f"{PREFIX}bookings", 0)])
    assert consumer.assigned[0].offset == 6


def test_disk_full_blocks_retries_and_never_commits_past_the_disk(
        writer: processor.LakeWriter, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    consumer: Any = writer.consumer
    writer.on_assign(consumer, [TopicPartition(f"{PREFIX}bookings", 0)])
    before = STORAGE_ERRORS.labels("ENOSPC")._value.get()
    failing(2, monkeypatch)
    feed(writer, 0, range(0, 3))
    assert (consumer.commits, manifests(tmp_path), consumer.paused) == ([], [], True)
    assert writer.readiness() == (False, "storage blocked: ENOSPC")
    writer.retry_at = 0.0
    writer._drain()  # the second failure: backoff grows, still nothing committed
    assert consumer.commits == [] and len(writer.pending) == 1 and writer.backoff == 2.0
    writer.retry_at = 0.0
    writer._drain()
    assert consumer.commits == [(f"{PREFIX}bookings", 0, 3)]
    assert len(manifests(tmp_path)) == 1 and not consumer.paused
    assert writer.readiness() == (True, "ok")
    assert STORAGE_ERRORS.labels("ENOSPC")._value.get() - before == 2


def test_rolls_land_in_order_after_a_failure(writer: processor.LakeWriter, tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    consumer: Any = writer.consumer
    writer.on_assign(consumer, [TopicPartition(f"{PREFIX}bookings", 0)])
    failing(1, monkeypatch)
    feed(writer, 0, range(0, 6))  # second roll queues behind the failed first one
    assert consumer.commits == [] and len(writer.pending) == 2
    writer.retry_at = 0.0
    writer._drain()
    assert [o for _, _, o in consumer.commits] == [3, 6]


def test_revocation_drops_rolls_that_did_not_land(writer: processor.LakeWriter, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    consumer: Any = writer.consumer
    writer.on_assign(consumer, [TopicPartition(f"{PREFIX}bookings", 0)])
    failing(1, monkeypatch)
    feed(writer, 0, range(0, 4))
    writer.on_revoke(consumer, consumer.assigned)
    assert not writer.pending and not writer.buffers and not consumer.paused
    assert consumer.commits == [] and manifests(tmp_path) == []


def test_orphans_and_temporary_files_are_deleted_on_assignment(
        writer: processor.LakeWriter, tmp_path: Path) -> None:
    consumer: Any = writer.consumer
    writer.on_assign(consumer, [TopicPartition(f"{PREFIX}bookings", 0)])
    feed(writer, 0, range(0, 3))
    orphan = (tmp_path / "raw/bookings/date=2023-11-14"
              / "bookings+0+00000000000000000003+00000000000000000005.jsonl")
    orphan.write_bytes(b"{}\n")
    temp = orphan.with_name(".bookings+0+00000000000000000006+x.jsonl.9.tmp")
    temp.write_bytes(b"{")
    writer.on_revoke(consumer, consumer.assigned)
    writer.on_assign(consumer, [TopicPartition(f"{PREFIX}bookings", 0)])
    assert consumer.assigned[0].offset == 3
    assert not orphan.exists() and not temp.exists()


def test_storage_error_reason_is_the_errno_name() -> None:
    from airline_lake_writer.durable import storage_reason
    assert storage_reason(OSError(errno.EROFS, "read-only")) == "EROFS"
