"""Deterministic merge of one partition's four inputs by (event time, topic rank, offset).

Each input keeps its records in a FIFO queue (offset order). The merge releases the smallest
head among the non-empty queues, and only when no *empty* input could still deliver something
that sorts before it: an empty input holds the merge back unless its last seen time (with its
rank as tie-break) is past the head, or it has been caught up with the broker (end of
partition) for ``idle_grace_s``; without the grace a caught-up input that is about to receive
an earlier record would let a later one of another input jump ahead. So the interleaving
depends on the data, not on fetch timing (for data already written, always; live, as long as
the rules below see what is coming), and the committed offset of an input is simply its queue
head: everything below it was processed, nothing above it was.

A caught-up input is passed by only when nothing says more of it is on the way:

* the client has handed over everything it holds: a fetch that fills a whole batch leaves
  records in the client's local queue, and a quiet input's next records may be among them (a
  burst fetched in one response lands in the queue partition by partition);
* its partition's high watermark, as the client's last fetch saw it, is not past the offset at
  which the input was caught up. A producer flushes a transaction's records to every partition
  before it commits, and the commit markers then land partition by partition: a fetch can see
  one input's records committed while another's, already written, still wait for their marker
  (``read_committed`` stops at the last stable offset). However long the quiet input has been
  caught up, its high watermark shows them coming.

Either way a head waits at most ``HOLD_S`` since it arrived, which bounds what a long
backlog, or a transaction left open by a producer that died, keeps waiting. The hold is its own
time, not a multiple of the grace: the grace decides how soon a quiet input stops holding the
merge back (latency), the hold how long the markers of a transaction may take to land
(correctness), and a short grace must not shorten the hold.

Merge keys use each input's running maximum event time, so a late (out-of-order) record sorts
right after its predecessor instead of jumping the queue, which keeps every queue sorted.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterator
from typing import Any, NamedTuple

NEVER = float("-inf")
#: How long a head waits, while more of a caught-up input is on the way (in the client's local
#: queue, or written but not yet committed), before it passes that input anyway: well past the
#: time a transaction's markers take to land (the real-broker test stretches it to 2 s).
HOLD_S = 5.0


class Pending(NamedTuple):
    """A record waiting in an input queue. ``item`` is what the shell wants back."""

    key_s: float
    rank: int
    offset: int
    item: Any
    arrived_s: float = 0.0  # monotonic time it was queued (never reached when sorting)


class _Input:
    __slots__ = ("at_end", "end_offset", "end_since", "last_s", "next_offset", "queue", "rank",
                 "released_s")

    def __init__(self, rank: int, last_s: float = NEVER) -> None:
        self.rank = rank
        self.queue: deque[Pending] = deque()
        self.last_s = last_s
        self.released_s = last_s
        self.at_end = False
        self.end_since = 0.0
        self.end_offset: int | None = None  # where it was caught up (None: not known)
        self.next_offset: int | None = None


class PartitionMerger:
    """The merge of one input partition (``inputs`` = number of input topics, rank = index).

    ``clock`` (monotonic seconds) only decides *when* a caught-up input stops holding the
    merge back, never the order of what is released.
    """

    def __init__(self, inputs: int, idle_grace_s: float = 0.0,
                 clock: Callable[[], float] = time.monotonic,
                 watermarks: dict[int, float] | None = None) -> None:
        start = watermarks or {}
        self._inputs = [_Input(rank, start.get(rank, NEVER)) for rank in range(inputs)]
        self._grace = idle_grace_s
        self._clock = clock

    def watermark(self, rank: int) -> float:
        """The running maximum event time of input ``rank`` (``NEVER`` before its first)."""
        return self._inputs[rank].last_s

    def watermarks(self) -> dict[int, float]:
        """Per input rank, the running maximum over the records *released* so far: what a
        merge restored at the committed positions starts from, so a replay keys every record
        exactly as the uninterrupted run did."""
        return {inp.rank: inp.released_s for inp in self._inputs if inp.released_s > NEVER}

    def push(self, rank: int, offset: int, event_s: float | None, item: Any) -> None:
        """Queue a record read from input ``rank``; ``event_s`` None for a rejected one (it
        keeps its predecessor's key, so it never moves the order of the others)."""
        inp = self._inputs[rank]
        if event_s is not None and event_s > inp.last_s:
            inp.last_s = event_s
        inp.queue.append(Pending(inp.last_s, rank, offset, item, self._clock()))
        inp.at_end = False
        inp.next_offset = offset + 1

    def skipped(self, rank: int, offset: int) -> None:
        """A record below the restored offsets was consumed and dropped (already reflected)."""
        inp = self._inputs[rank]
        if not inp.queue:
            inp.next_offset = offset + 1

    def mark_end(self, rank: int, offset: int | None = None) -> None:
        """Input ``rank`` is caught up with the broker (nothing more to fetch right now)."""
        inp = self._inputs[rank]
        if not inp.at_end:
            inp.at_end = True
            inp.end_since = self._clock()
        inp.end_offset = offset
        if offset is not None and not inp.queue and (inp.next_offset or 0) < offset:
            inp.next_offset = offset

    def release(self, drained: bool = True,
                high_watermark: Callable[[int], int] | None = None) -> Iterator[Pending]:
        """Yield every record that can be processed now, in merge order. ``drained``: the
        client's local queue is empty (the last fetch returned less than a batch).
        ``high_watermark(rank)``: that input partition's high watermark as the client's last
        fetch saw it (negative when not known)."""
        inputs = self._inputs
        now = self._clock()
        idle_before = now - self._grace
        patient_before = now - HOLD_S
        coming: dict[int, bool] = {}  # rank -> written records past its end (asked once)
        while True:
            best: Pending | None = None
            for inp in inputs:
                if inp.queue:
                    head = inp.queue[0]
                    if best is None or head < best:
                        best = head
            if best is None:
                return
            for inp in inputs:
                if inp.queue or (inp.last_s, inp.rank) > (best.key_s, best.rank):
                    continue
                if not inp.at_end or inp.end_since > idle_before:
                    return
                if best.arrived_s > patient_before and (
                        not drained or _more_coming(inp, high_watermark, coming)):
                    return  # the quiet input's next records may sort before the head
            released = inputs[best.rank]
            released.queue.popleft()
            if best.key_s > released.released_s:
                released.released_s = best.key_s
            yield best

    def positions(self) -> dict[int, int]:
        """Offset to commit per input rank: the oldest record not processed yet."""
        result: dict[int, int] = {}
        for inp in self._inputs:
            if inp.queue:
                result[inp.rank] = inp.queue[0].offset
            elif inp.next_offset is not None:
                result[inp.rank] = inp.next_offset
        return result

    def buffered(self) -> int:
        """Records waiting in the queues."""
        return sum(len(inp.queue) for inp in self._inputs)

    def caught_up(self) -> bool:
        """Every input at the end of its partition and nothing waiting."""
        return all(inp.at_end and not inp.queue for inp in self._inputs)

    def waiting(self) -> bool:
        """Records are queued (a later :meth:`release` may free them once the grace passed)."""
        return any(inp.queue for inp in self._inputs)


def _more_coming(inp: _Input, high_watermark: Callable[[int], int] | None,
                 asked: dict[int, bool]) -> bool:
    """The broker holds records of ``inp`` past where it was caught up (written, maybe not
    committed yet); ``asked`` keeps each answer for one release."""
    if high_watermark is None or inp.end_offset is None:
        return False
    known = asked.get(inp.rank)
    if known is None:
        known = asked[inp.rank] = high_watermark(inp.rank) > inp.end_offset
    return known
