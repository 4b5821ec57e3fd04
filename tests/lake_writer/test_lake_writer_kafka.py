"""The writer against the real broker: a normal run, unstorable and aborted records, and the
source-incarnation rule, storage errors."""

import json
import signal
import time
import urllib.error
import urllib.request
from collections import Counter
from pathlib import Path

import pytest
from airline_core import config
from airline_core.kafka import make_consumer
from airline_core.lake import manifest as mf
from airline_core.topics import LAKE_TOPICS, Topic, physical_name
from confluent_kafka import TopicPartition
from lake_writer_support import (
    Source,
    assert_exactly_once,
    log_events,
    read_lake,
    read_topics,
    run_writer,
    start_writer,
)

pytestmark = pytest.mark.kafka


def test_normal_run_lands_every_record_exactly_once(source: Source, tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    source.produce(700, seed=1)
    source.produce(140, seed=2, transactional=True)
    source.produce(70, seed=3, transactional=True, abort=True)  # must never land
    source.produce(7, seed=4, extra_values=((Topic.BOOKINGS, b"not json at all"),
                                            (Topic.SEAT_MAP, None),
                                            (Topic.DEAD_LETTER, b'{"a":\n1}')))
    done = run_writer(source.env(lake), "--stop-when-idle", "1")
    assert done.returncode == 0, done.stderr[-3000:]
    topics = read_topics(source)
    assert len(topics) == source.produced + 1  # + the dead_letter envelope of the null value
    content = assert_exactly_once(lake, topics)
    assert len(content.diverted) == 2
    # Layout: dated by event time (junk by its Kafka timestamp: today), zero-padded offsets.
    dates = {p.name for p in (lake / "raw" / "bookings").iterdir()}
    assert {"date=2025-11-27", "date=2025-11-28", "date=2025-11-29", "date=2025-11-30",
            "date=2025-12-01"} <= dates
    assert len(dates) == 6
    source_doc = json.loads((lake / "raw" / "_source.json").read_text())
    assert source_doc["current"]["generation"] == 0
    assert set(source_doc["current"]["topic_ids"]) == {str(t) for t in Topic} - {
        "engine_state_changelog"}
    # The null value went to dead_letter and its manifest says so.
    seat_map = [mf.read(p) for p in (lake / "raw/_manifests/seat_map").iterdir()]
    diverted = [d for m in seat_map for d in m.diverted]
    assert len(diverted) == 1 and diverted[0].dead_letter_event_id
    assert any(e.get("event") == "roll landed" for e in log_events(done.stderr))

    # A second run with nothing new lands nothing and duplicates nothing.
    again = run_writer(source.env(lake), "--stop-when-idle", "1")
    assert again.returncode == 0, again.stderr[-3000:]
    assert not any(e.get("event") == "roll landed" for e in log_events(again.stderr))
    assert_exactly_once(lake, read_topics(source))


def test_another_source_is_refused_without_new_source(source: Source, tmp_path: Path,
                                                      kafka_bootstrap: str) -> None:
    lake = tmp_path / "lake"
    source.produce(70, seed=5)
    assert run_writer(source.env(lake), "--stop-when-idle", "1").returncode == 0
    before = sorted(p.relative_to(lake) for p in lake.rglob("*") if p.is_file())
    # The same lake against other topics (new topic ids, offsets restarting at 0).
    from lake_writer_support import make_source
    other = make_source(kafka_bootstrap, source.prefix + "x-")
    other.produce(35, seed=6)
    refused = run_writer(other.env(lake, KAFKA_GROUP_ID=f"{source.prefix}lake"),
                         "--stop-when-idle", "1")
    assert refused.returncode == 3
    assert "--new-source" in refused.stderr
    assert sorted(p.relative_to(lake) for p in lake.rglob("*") if p.is_file()) == before

    accepted = run_writer(other.env(lake), "--stop-when-idle", "1", "--new-source")
    assert accepted.returncode == 0, accepted.stderr[-3000:]
    source_doc = json.loads((lake / "raw" / "_source.json").read_text())
    assert source_doc["current"]["generation"] == 1 and len(source_doc["history"]) == 1
    # History is kept, the new generation is complete and named apart (+g1).
    assert_exactly_once(lake, read_topics(source), generation=0)
    assert_exactly_once(lake, read_topics(other), generation=1)
    new_files = [p for p in lake.rglob("*.jsonl") if p.name.endswith("+g1.jsonl")]
    assert new_files
    # --new-source against the source now recorded is a no-op.
    again = run_writer(other.env(lake), "--stop-when-idle", "1", "--new-source")
    assert again.returncode == 0
    assert json.loads((lake / "raw" / "_source.json").read_text()) == source_doc


def http_get(port: int, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def committed(src: Source) -> list[int]:
    kafka = config.from_values(config.KafkaSettings, {
        "KAFKA_BOOTSTRAP_SERVERS": src.bootstrap}, environ={})
    consumer = make_consumer(kafka, "lake-test-offsets", f"{src.prefix}lake")
    try:
        tps = [TopicPartition(physical_name(t, src.prefix), p) for t in LAKE_TOPICS
               for p in range(3)]
        return [tp.offset for tp in consumer.committed(tps, timeout=10) if tp.offset >= 0]
    finally:
        consumer.close()


def test_storage_errors_block_retry_and_never_commit_past_the_disk(source: Source,
                                                                   tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    (lake / "raw").mkdir(parents=True)
    (lake / "raw" / "_manifests").write_text("not a directory")  # every manifest write fails
    source.produce(140, seed=7)
    log = tmp_path / "writer.log"
    writer = start_writer(source.env(lake, LAKE_RETRY_MAX_SECONDS="1"), log=log)
    try:
        deadline = time.monotonic() + 60
        while not any(str(e.get("event")).startswith("cannot land roll")
                      for e in log_events(log.read_text())):
            assert time.monotonic() < deadline, f"no storage error logged:\n{log.read_text()}"
            assert writer.poll() is None, log.read_text()
            time.sleep(0.2)
        port = next(int(str(e["metrics_port"])) for e in log_events(log.read_text())
                    if e.get("event") == "lake writer started")
        status, reason = http_get(port, "/readyz")
        assert (status, reason.strip()) == (503, "storage blocked: ENOTDIR")
        metrics = http_get(port, "/metrics")[1]
        assert 'lake_storage_errors_total{reason="ENOTDIR"}' in metrics
        assert "lake_storage_blocked 1.0" in metrics
        assert committed(source) == []  # data files may exist, but no manifest: no commit
        (lake / "raw" / "_manifests").unlink()  # the operator frees the disk
        while landed(lake) < source.produced:
            assert time.monotonic() < deadline + 60, "did not recover after the fix"
            time.sleep(0.2)
        assert http_get(port, "/readyz")[0] == 200
    finally:
        writer.send_signal(signal.SIGTERM)
        assert writer.wait(60) == 0, log.read_text()[-3000:]
    assert_exactly_once(lake, read_topics(source))
    assert len(committed(source)) == 21


def landed(lake: Path) -> int:
    return mf.audit(lake, [str(t) for t in LAKE_TOPICS], check_hashes=False).records


@pytest.mark.slow
def test_a_fresh_broker_is_not_silently_skipped(source: Source, tmp_path: Path) -> None:
    """The dangerous case: a new cluster whose offsets restart at 0, below the lake's resume
    offsets, under the same topic names. Without --new-source the writer must refuse."""
    from airline_devstack.kafka_broker import KafkaBroker
    from airline_testkit.net import free_port
    from lake_writer_support import make_source

    lake = tmp_path / "lake"
    source.produce(350, seed=8)
    assert run_writer(source.env(lake), "--stop-when-idle", "1").returncode == 0
    fresh = KafkaBroker(tmp_path / "fresh-kafka", free_port(), die_with_parent=True)
    fresh.start()
    try:
        again = make_source(fresh.bootstrap, source.prefix)
        again.produce(70, seed=9)
        refused = run_writer(again.env(lake), "--stop-when-idle", "1")
        assert refused.returncode == 3, refused.stderr[-3000:]
        assert "cluster id" in refused.stderr and "--new-source" in refused.stderr
        accepted = run_writer(again.env(lake), "--stop-when-idle", "1", "--new-source")
        assert accepted.returncode == 0, accepted.stderr[-3000:]
        assert_exactly_once(lake, read_topics(again), generation=1)
    finally:
        fresh.stop()
    assert_exactly_once(lake, read_topics(source), generation=0)
    doc = json.loads((lake / "raw" / "_source.json").read_text())
    assert doc["current"]["cluster_id"] == fresh.cluster_id != doc["history"][0]["cluster_id"]


def test_records_expired_before_landing_are_reported(source: Source, tmp_path: Path) -> None:
    """Down longer than retention: the lake cannot have what Kafka deleted, but it must say so."""
    from airline_core.kafka import make_admin

    lake = tmp_path / "lake"
    source.produce(70, seed=11)
    assert run_writer(source.env(lake), "--stop-when-idle", "1").returncode == 0
    source.produce(210, seed=12)
    kafka = config.from_values(config.KafkaSettings, {
        "KAFKA_BOOTSTRAP_SERVERS": source.bootstrap}, environ={})
    bookings_0 = TopicPartition(physical_name(Topic.BOOKINGS, source.prefix), 0)
    consumer = make_consumer(kafka, "lake-test-offsets", f"{source.prefix}probe")
    _, high = consumer.get_watermark_offsets(bookings_0, timeout=10)
    consumer.close()
    resume = 1 + max(int(p.name.split("+")[3].split(".")[0])
                     for p in (lake / "raw/_manifests/bookings").glob("bookings+0+*.json"))
    assert high - resume >= 3
    deleted = TopicPartition(bookings_0.topic, 0, resume + 2)
    admin = make_admin(kafka)  # keep a reference: the request dies with the client
    for future in admin.delete_records([deleted]).values():
        future.result(timeout=30)
    done = run_writer(source.env(lake), "--stop-when-idle", "1")
    assert done.returncode == 0, done.stderr[-3000:]
    errors = [e for e in log_events(done.stderr)
              if e.get("event") == "records expired from Kafka before they landed"]
    assert [(e["topic"], e["partition"], e["lake_resume_offset"], e["log_start_offset"])
            for e in errors] == [("bookings", 0, resume, resume + 2)]
    # Everything Kafka still has landed exactly once (the lake also keeps what retention
    # deleted after it landed); the two records deleted before landing could not.
    topics = read_topics(source)
    landed_coords = Counter(coord for coord, _ in read_lake(lake).lines)
    assert max(landed_coords.values()) == 1
    assert set(topics) <= set(landed_coords)
    assert {("bookings", 0, resume), ("bookings", 0, resume + 1)} & set(landed_coords) == set()
