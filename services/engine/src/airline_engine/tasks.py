"""The engine's partitions: one task (core, merge, committed positions) per input partition.

Partition *p* of every input and of the changelog holds the same flights, so a task is built
from changelog partition *p* when the group assigns input partition *p*, and dropped when it is
revoked or lost. Its merge starts at the restored event-time watermarks and it skips records
below the restored offsets (already reflected in the state).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from airline_engine import metrics
from airline_engine.core import CoreConfig, EngineCore
from airline_engine.merge import PartitionMerger
from airline_engine.offers import LiveOffers, offer_of
from airline_engine.restore import ChangelogReader


@dataclass(eq=False)
class PartitionTask:
    """Everything the engine holds for one input partition."""

    partition: int
    core: EngineCore
    merger: PartitionMerger
    #: rank -> offset below which inputs are already reflected in the restored state.
    skip_below: dict[int, int]
    #: Logical topic -> offset the last committed changelog records carry.
    offsets: dict[str, int]
    #: Logical topic -> event-time watermark the last committed changelog records carry.
    watermarks: dict[str, float] = field(default_factory=dict)
    committed: dict[int, int] = field(default_factory=dict)
    first_read: dict[str, int] = field(default_factory=dict)
    start_offsets: dict[str, int] = field(default_factory=dict)
    restored_records: int = 0


class Tasks:
    """The tasks of the assigned partitions, restored from the changelog on demand."""

    def __init__(self, reader: ChangelogReader, core_config: CoreConfig, inputs: list[str],
                 idle_input_s: float, offers: LiveOffers | None) -> None:
        self._reader = reader
        self._core_config = core_config
        self._logical = inputs
        self._idle_input_s = idle_input_s
        self._offers = offers
        self.by_partition: dict[int, PartitionTask] = {}
        self.restoring = True
        self.restores = 0
        self.restored_records = 0
        #: What each partition's tasks saw, for the stop log line (a test reads it).
        self.history: dict[int, dict[str, Any]] = {}

    def restore(self, partitions: list[int], progress: Callable[[], Any] | None = None) -> None:
        """(Re)build the tasks of ``partitions`` from the changelog (the caller sets
        :attr:`restoring` around everything that belongs to the restore)."""
        restored = self._reader.restore(partitions, progress=progress)
        self.restores += 1
        rank = {t: i for i, t in enumerate(self._logical)}
        for p in partitions:
            r = restored[p]
            core = EngineCore(self._core_config)
            for flight in r.flights.values():
                core.restore(flight)
            if r.response is not None:
                core.restore_response(r.response)
            skip = {rank[t]: o for t, o in r.offsets.items() if t in rank}
            marks = {rank[t]: w for t, w in r.watermarks.items() if t in rank}
            merger = PartitionMerger(len(self._logical), self._idle_input_s, watermarks=marks)
            self.by_partition[p] = PartitionTask(p, core, merger, skip, dict(r.offsets),
                                                 dict(r.watermarks), restored_records=r.records)
            self.restored_records += r.records
            if self._offers is not None:
                self._offers.publish([offer_of(f) for f in r.flights.values() if f.scheduled])
        metrics.FLIGHTS.set(self.flights())

    def drop(self, partitions: list[int]) -> None:
        """Forget the tasks of revoked or lost partitions (their next owner restores them)."""
        for p in partitions:
            task = self.by_partition.pop(p, None)
            if task is not None:
                self.remember(task)

    def drop_all(self) -> None:
        """Forget every task."""
        self.drop(sorted(self.by_partition))

    def remember(self, task: PartitionTask) -> None:
        """Keep what ``task`` saw for the stop log line."""
        self.history[task.partition] = {
            "start_offsets": task.start_offsets, "first_read": task.first_read,
            "restored_records": task.restored_records}

    def flights(self) -> int:
        """Flights in the state of the assigned partitions."""
        return sum(len(t.core.flights) for t in self.by_partition.values())

    def positions_moved(self) -> bool:
        """Some input position is past what was last committed."""
        return any(t.merger.positions() != t.committed for t in self.by_partition.values())

    def caught_up(self) -> bool:
        """Every merge drained and at the end of its inputs, nothing left to commit."""
        return (bool(self.by_partition) and not self.restoring
                and all(t.merger.caught_up() for t in self.by_partition.values())
                and not self.positions_moved())
