"""The source-incarnation rule: same source resumes, another is refused without --new-source."""

from pathlib import Path

import pytest
from airline_lake_writer import source
from airline_lake_writer.errors import SourceMismatchError

TOPICS = {"bookings": "t-b", "seat_map": "t-s"}


def test_a_new_lake_records_generation_0() -> None:
    decision = source.decide(None, "c1", TOPICS, new_source=False, highest_generation_seen=None)
    assert decision.generation == 0
    assert decision.write == source.SourceFile(1, source.Incarnation(0, "c1", TOPICS))


def test_the_same_source_resumes_without_writing() -> None:
    recorded = source.SourceFile(1, source.Incarnation(2, "c1", TOPICS))
    for flag in (False, True):  # --new-source against the same source is a no-op
        decision = source.decide(recorded, "c1", TOPICS, new_source=flag,
                                 highest_generation_seen=2)
        assert (decision.generation, decision.write) == (2, None)


def test_a_new_topic_is_added_to_the_record() -> None:
    recorded = source.SourceFile(1, source.Incarnation(0, "c1", {"bookings": "t-b"}))
    decision = source.decide(recorded, "c1", TOPICS, new_source=False, highest_generation_seen=0)
    assert decision.write is not None and decision.write.current.topic_ids == TOPICS


@pytest.mark.parametrize(("cluster", "topics", "mentions"), [
    ("c2", TOPICS, "cluster id c1 -> c2"),
    ("c1", {**TOPICS, "seat_map": "t-s2"}, "topic seat_map id t-s -> t-s2"),
])
def test_another_source_is_refused_naming_the_flag(cluster: str, topics: dict[str, str],
                                                   mentions: str) -> None:
    recorded = source.SourceFile(1, source.Incarnation(0, "c1", TOPICS))
    with pytest.raises(SourceMismatchError, match="--new-source") as caught:
        source.decide(recorded, cluster, topics, new_source=False, highest_generation_seen=0)
    assert mentions in str(caught.value)
    decision = source.decide(recorded, cluster, topics, new_source=True,
                             highest_generation_seen=0)
    assert decision.generation == 1
    assert decision.write == source.SourceFile(
        1, source.Incarnation(1, cluster, topics), [recorded.current])


def test_manifests_without_a_source_record_are_refused() -> None:
    with pytest.raises(SourceMismatchError, match="--new-source"):
        source.decide(None, "c1", TOPICS, new_source=False, highest_generation_seen=0)
    decision = source.decide(None, "c1", TOPICS, new_source=True, highest_generation_seen=4)
    assert decision.generation == 5


def test_round_trip_on_disk(tmp_path: Path) -> None:
    assert source.read_source(tmp_path) is None
    record = source.SourceFile(1, source.Incarnation(0, "c1", TOPICS))
    with source.source_lock(tmp_path):
        source.write_source(tmp_path, record)
    assert source.read_source(tmp_path) == record
    assert (tmp_path / "raw" / "_source.json").is_file()
