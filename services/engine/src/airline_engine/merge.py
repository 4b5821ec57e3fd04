"""Deterministic merge of one partition's four inputs by (event time, topic rank, offset).

Each input keeps its records in a FIFO queue (offset order). The merge releases the smallest
head among the non-empty queues, and only when no *empty* input could still deliver something
that sorts before it: an empty input holds the merge back unless its last seen time (with its
rank as tie-break) is past the head, or it is caught up with the broker (end of partition).
So the interleaving depends on the data, never on fetch timing, and the committed offset of an
input is simply its queue head: everything below it was processed, nothing above it was.

Merge keys use each input's running maximum event time, so a late (out-of-order) record sorts
right after its predecessor instead of jumping the queue, which keeps every queue sorted.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from typing import Any, NamedTuple

NEVER = float("-inf")


class Pending(NamedTuple):
    """A record waiting in an input queue. ``item`` is what the shell wants back."""

    key_s: float
    rank: int
    offset: int
    item: Any


class _Input:
    __slots__ = ("at_end", "last_s", "next_offset", "queue", "rank")

    def __init__(self, rank: int) -> None:
        self.rank = rank
        self.queue: deque[Pending] = deque()
        self.last_s = NEVER
        self.at_end = False
        self.next_offset: int | None = None


class PartitionMerger:
    """The merge of one input partition (``inputs`` = number of input topics, rank = index)."""

    def __init__(self, inputs: int) -> None:
        self._inputs = [_Input(rank) for rank in range(inputs)]

    def push(self, rank: int, offset: int, event_s: float | None, item: Any) -> None:
        """Queue a record read from input ``rank``; ``event_s`` None for undecodable ones."""
        inp = self._inputs[rank]
        if event_s is not None and event_s > inp.last_s:
            inp.last_s = event_s
        inp.queue.append(Pending(inp.last_s, rank, offset, item))
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
        inp.at_end = True
        if offset is not None and not inp.queue and (inp.next_offset or 0) < offset:
            inp.next_offset = offset

    def release(self) -> Iterator[Pending]:
        """Yield every record that can be processed now, in merge order."""
        inputs = self._inputs
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
                if not inp.queue and not inp.at_end and (inp.last_s, inp.rank) <= (best.key_s,
                                                                                  best.rank):
                    return
            inputs[best.rank].queue.popleft()
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
