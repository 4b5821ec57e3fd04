"""The event-time merge: same order whatever the fetch interleaving; commit positions."""

from __future__ import annotations

import random

from airline_engine.merge import PartitionMerger
from hypothesis import given, settings
from hypothesis import strategies as st


def test_an_empty_input_holds_the_merge_until_caught_up() -> None:
    merger = PartitionMerger(2)
    merger.push(1, 0, 10.0, "b10")
    assert list(merger.release()) == []  # input 0 could still bring something earlier
    merger.push(0, 0, 5.0, "a5")
    assert [p.item for p in merger.release()] == ["a5"]  # b10 waits: input 0 last seen at 5
    merger.mark_end(0)
    assert [p.item for p in merger.release()] == ["b10"]


def test_ties_go_to_the_lower_rank() -> None:
    merger = PartitionMerger(2)
    merger.push(1, 0, 10.0, "booking")
    merger.push(0, 0, 10.0, "scheduled")
    assert [p.item for p in merger.release()] == ["scheduled"]
    merger.mark_end(0)
    assert [p.item for p in merger.release()] == ["booking"]


def test_positions_are_the_oldest_unprocessed_record() -> None:
    merger = PartitionMerger(2)
    merger.push(0, 7, 1.0, "a")
    merger.push(0, 8, 3.0, "b")
    merger.push(1, 4, 2.0, "c")
    assert [p.item for p in merger.release()] == ["a", "c"]
    assert merger.positions() == {0: 8, 1: 5}
    merger.mark_end(1, 9)  # caught up; transaction markers moved the end past the last record
    assert [p.item for p in merger.release()] == ["b"]
    assert merger.positions() == {0: 9, 1: 9}
    assert merger.caught_up() is False  # input 0 not yet known to be at its end
    merger.mark_end(0)
    assert merger.caught_up()


def test_late_records_keep_their_place_in_their_input() -> None:
    merger = PartitionMerger(2)
    merger.push(0, 0, 10.0, "a10")
    merger.push(0, 1, 4.0, "a4-late")  # sorts as 10: right after its predecessor
    merger.push(1, 0, 6.0, "b6")
    merger.mark_end(0)
    merger.mark_end(1)
    assert [p.item for p in merger.release()] == ["b6", "a10", "a4-late"]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.lists(st.integers(0, 50), max_size=12), min_size=4, max_size=4),
       st.integers(0, 10_000))
def test_order_does_not_depend_on_fetch_interleaving(times: list[list[int]], seed: int) -> None:
    streams = [sorted(ts) for ts in times]
    expected = sorted((t, rank, off) for rank, ts in enumerate(streams)
                      for off, t in enumerate(ts))
    rng = random.Random(seed)
    merger = PartitionMerger(4)
    cursors = [0, 0, 0, 0]
    released: list[tuple[int, int, int]] = []
    while any(c < len(s) for c, s in zip(cursors, streams, strict=True)):
        rank = rng.choice([r for r in range(4) if cursors[r] < len(streams[r])])
        for _ in range(rng.randint(1, 3)):
            if cursors[rank] < len(streams[rank]):
                off = cursors[rank]
                merger.push(rank, off, float(streams[rank][off]), None)
                cursors[rank] += 1
        for r in range(4):
            if cursors[r] == len(streams[r]) and rng.random() < 0.5:
                merger.mark_end(r)  # caught up now (more may follow in a real stream)
        released += [(int(p.key_s), p.rank, p.offset) for p in merger.release()]
    for r in range(4):
        merger.mark_end(r)
    released += [(int(p.key_s), p.rank, p.offset) for p in merger.release()]
    assert released == expected


def test_a_caught_up_input_holds_back_for_the_grace_only() -> None:
    now = [100.0]
    merger = PartitionMerger(2, idle_grace_s=0.5, clock=lambda: now[0])
    merger.push(1, 0, 10.0, "b10")
    merger.mark_end(0)
    assert list(merger.release()) == []  # input 0 may show an earlier record any moment
    now[0] += 0.4
    merger.push(0, 0, 8.0, "a8")  # ... and it does (same transaction, another partition)
    merger.mark_end(0)
    assert [p.item for p in merger.release()] == ["a8"]
    assert list(merger.release()) == []  # input 0 caught up again only 0 s ago
    now[0] += 0.5
    assert [p.item for p in merger.release()] == ["b10"]


def test_a_quiet_input_is_not_passed_while_the_local_queue_holds_more() -> None:
    """A burst fetched in one response sits in the client's queue partition by partition: a
    record of a long-quiet input may be waiting behind the batch just handed over. While the
    fetch filled a whole batch (not drained), the head waits; once drained, or after
    HOLD_S, it passes."""
    from airline_engine.merge import HOLD_S

    now = [100.0]
    merger = PartitionMerger(2, idle_grace_s=0.5, clock=lambda: now[0])
    merger.mark_end(1)  # the seat snapshots' input: caught up long ago
    now[0] += 60.0
    merger.push(0, 0, 10.0, "departed@10")  # the burst's first partition
    assert list(merger.release(drained=False)) == []  # input 1's part may still be queued
    merger.push(1, 0, 8.0, "snapshot@8")  # ... it was: the next turn hands it over
    assert [p.item for p in merger.release(drained=False)] == ["snapshot@8"]
    merger.mark_end(1)
    assert list(merger.release(drained=True)) == []  # input 1 caught up only 0 s ago
    now[0] += 0.5
    assert [p.item for p in merger.release(drained=True)] == ["departed@10"]
    # A backlog that never drains: a head still passes after HOLD_S.
    merger.mark_end(0)
    merger.push(1, 1, 20.0, "snapshot@20")
    now[0] += HOLD_S - 0.01
    assert list(merger.release(drained=False)) == []
    now[0] += 0.02
    assert [p.item for p in merger.release(drained=False)] == ["snapshot@20"]


def test_a_quiet_input_with_records_written_past_its_end_holds_the_head() -> None:
    """A producer writes a transaction's records to every partition, then commits, and the
    commit markers land partition by partition: a fetch can show one input's records while
    another's, already written, still wait for their marker. However long that input has been
    caught up, its high watermark (past the offset it was caught up at) shows them coming; the
    head waits for them, or for HOLD_S at most (a transaction left open)."""
    from airline_engine.merge import HOLD_S

    now = [100.0]
    high = {0: 5}
    merger = PartitionMerger(2, idle_grace_s=0.5, clock=lambda: now[0])
    merger.mark_end(0, 5)  # the lifecycle input: caught up long ago at offset 5
    now[0] += 60.0
    high[0] = 7  # its part of the transaction is written, its marker not yet
    merger.push(1, 0, 10.0, "snapshot@10")
    now[0] += 1.0
    assert list(merger.release(True, high.__getitem__)) == []
    merger.push(0, 5, 8.0, "scheduled@8")  # the marker landed: the next fetch brings it
    merger.mark_end(0, 7)
    assert [p.item for p in merger.release(True, high.__getitem__)] == ["scheduled@8"]
    now[0] += 0.5
    assert [p.item for p in merger.release(True, high.__getitem__)] == ["snapshot@10"]
    # A transaction left open: the head passes after HOLD_S since it arrived.
    high[0] = 9
    merger.push(1, 1, 20.0, "snapshot@20")
    now[0] += HOLD_S - 0.01
    assert list(merger.release(True, high.__getitem__)) == []
    now[0] += 0.02
    assert [p.item for p in merger.release(True, high.__getitem__)] == ["snapshot@20"]
    # No watermark known (negative): the grace alone decides, as without one.
    merger.push(1, 2, 30.0, "snapshot@30")
    assert [p.item for p in merger.release(True, lambda rank: -1)] == ["snapshot@30"]


def test_a_short_grace_does_not_shorten_the_hold() -> None:
    """The grace sets how soon a quiet input stops holding the merge back (latency); the hold,
    how long a transaction's markers may take to land. At a 100 ms grace a head still waits
    the whole hold for written records it has not seen committed, and a quiet input with
    nothing coming is passed after the grace alone."""
    from airline_engine.merge import HOLD_S

    now = [100.0]
    high = {0: 5}
    merger = PartitionMerger(2, idle_grace_s=0.1, clock=lambda: now[0])
    merger.mark_end(0, 5)
    now[0] += 0.1
    merger.push(1, 0, 10.0, "snapshot@10")
    assert [p.item for p in merger.release(True, high.__getitem__)] == ["snapshot@10"]
    high[0] = 7  # a transaction's records written to input 0, its marker not landed yet
    merger.push(1, 1, 20.0, "snapshot@20")
    now[0] += 2.0  # twenty graces: far past any multiple of the grace a hold once was
    assert list(merger.release(True, high.__getitem__)) == []
    now[0] += HOLD_S - 2.0 + 0.01
    assert [p.item for p in merger.release(True, high.__getitem__)] == ["snapshot@20"]
