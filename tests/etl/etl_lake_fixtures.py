"""The ETL tests' own lake helpers: the engine's dead-letter envelopes for given positions, and
the positions a lake's manifests give its lines. Worlds of events and test lakes come from the
test kit (``airline_testkit.events``, ``airline_testkit.lake``)."""

from __future__ import annotations

import itertools
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from airline_core import events as ev
from airline_core.contract import Reason, Rejection
from airline_core.dead_letter import dead_letter_for
from airline_testkit.events import WORLD_T0
from airline_testkit.lake import write_roll

#: The ``component`` of the engine's dead letters.
ENGINE = "airline-engine"

T0 = WORLD_T0


@dataclass
class FakeMessage:
    """What ``dead_letter_for`` reads of a confluent-kafka ``Message``."""

    key_: bytes | None
    value_: bytes | None
    partition_: int
    offset_: int

    def key(self) -> bytes | None:
        return self.key_

    def value(self) -> bytes | None:
        return self.value_

    def partition(self) -> int:
        return self.partition_

    def offset(self) -> int:
        return self.offset_

    def headers(self) -> list[tuple[str, bytes | None]]:
        return []

    def timestamp(self) -> tuple[int, int]:
        return (1, int(T0.timestamp() * 1000))


def envelope(topic: str, partition: int, offset: int, value: bytes | None,
             code: Reason = Reason.KEY_MISMATCH, *, key: bytes | None = b"K",
             detail: str = "rejected by the engine", component: str = ENGINE) -> ev.DeadLetter:
    """The engine's dead letter for the record ``value`` at (topic, partition, offset)."""
    return dead_letter_for(FakeMessage(key, value, partition, offset), topic,
                           Rejection(code, detail), component)


def write_envelopes(lake_dir: Path, letters: Sequence[ev.DeadLetter], *, partition: int = 0,
                    first: int = 0, generation: int = 0) -> Path:
    """One roll of ``dead_letter`` holding ``letters`` (their generation is the roll's)."""
    return write_roll(lake_dir, "dead_letter", partition, first, [ev.encode(d) for d in letters],
                      generation=generation)


def positions_of(lake_dir: Path, topic: str) -> dict[bytes, list[tuple[int, int, int]]]:
    """Each line of ``topic``'s manifests → its (generation, partition, offset) positions,
    read back from the manifests the way a reader must (per file, ``offset_runs``)."""
    found: dict[bytes, list[tuple[int, int, int]]] = {}
    for path in sorted((lake_dir / "raw/_manifests" / topic).glob("*.json")):
        body = json.loads(path.read_text())
        for f in body["files"]:
            offsets = itertools.chain.from_iterable(
                range(a, b + 1) for a, b in f["offset_runs"])
            lines = (lake_dir / f["path"]).read_bytes().splitlines()
            for line, offset in zip(lines, offsets, strict=True):
                found.setdefault(line, []).append(
                    (body.get("generation", 0), body["partition"], offset))
    return found
