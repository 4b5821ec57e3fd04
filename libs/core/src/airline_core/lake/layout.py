"""Names and paths in the raw lake, and their inverse (parsing a name back into its parts).

Layout (paths relative to ``LAKE_DIR``)::

    raw/<topic>/date=YYYY-MM-DD/<topic>+<partition>+<first>+<last>[+g<N>].jsonl
    raw/_manifests/<topic>/<topic>+<partition>+<first>+<last>[+g<N>].json
    raw/_source.json

``first``/``last`` are the first and last record offsets of the *roll* (zero-padded to 20
digits so names sort by offset); every file of one roll carries the roll's range, the date
directory tells which of its records it holds. ``+g<N>`` names the source generation: absent for
generation 0 (the first Kafka cluster the lake was fed from), present from generation 1 on (after
``--new-source``), so a fresh broker that restarts at offset 0 never collides with history.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Final

RAW: Final = "raw"
MANIFESTS: Final = "_manifests"
SOURCE_FILE: Final = "_source.json"
OFFSET_DIGITS: Final = 20
DATA_SUFFIX: Final = ".jsonl"
MANIFEST_SUFFIX: Final = ".json"
TMP_SUFFIX: Final = ".tmp"

_NAME: Final = re.compile(
    r"^(?P<topic>[A-Za-z0-9._-]+)\+(?P<partition>\d+)\+(?P<first>\d{20})\+(?P<last>\d{20})"
    r"(?:\+g(?P<generation>[1-9]\d*))?(?P<suffix>\.jsonl|\.json)$"
)


@dataclass(frozen=True, order=True)
class RollId:
    """Identifies one roll: a partition's offset range [first, last] in one source generation."""

    topic: str
    partition: int
    first: int
    last: int
    generation: int = 0

    def __post_init__(self) -> None:
        if self.partition < 0 or self.first < 0 or self.last < self.first or self.generation < 0:
            raise ValueError(f"invalid roll id {self!r}")

    @property
    def stem(self) -> str:
        """``<topic>+<partition>+<first>+<last>[+g<N>]`` (without suffix)."""
        base = (f"{self.topic}+{self.partition}+{self.first:0{OFFSET_DIGITS}d}"
                f"+{self.last:0{OFFSET_DIGITS}d}")
        return base if self.generation == 0 else f"{base}+g{self.generation}"

    @property
    def data_name(self) -> str:
        """File name of each of the roll's data files."""
        return self.stem + DATA_SUFFIX

    @property
    def manifest_name(self) -> str:
        """File name of the roll's manifest."""
        return self.stem + MANIFEST_SUFFIX


def parse_name(name: str) -> tuple[RollId, str] | None:
    """``(roll id, suffix)`` of a data or manifest file name, ``None`` for any other name."""
    match = _NAME.match(name)
    if match is None:
        return None
    roll = RollId(match["topic"], int(match["partition"]), int(match["first"]),
                  int(match["last"]), int(match["generation"] or 0))
    return roll, match["suffix"]


def date_dir_name(date: str) -> str:
    """``date=YYYY-MM-DD`` (Hive-style, so engines prune by date)."""
    return f"date={date}"


def data_relpath(roll: RollId, date: str) -> PurePosixPath:
    """Path of the roll's file for ``date``, relative to ``LAKE_DIR``."""
    return PurePosixPath(RAW, roll.topic, date_dir_name(date), roll.data_name)


def manifest_relpath(roll: RollId) -> PurePosixPath:
    """Path of the roll's manifest, relative to ``LAKE_DIR``."""
    return PurePosixPath(RAW, MANIFESTS, roll.topic, roll.manifest_name)


def topic_dir(lake_dir: Path, topic: str) -> Path:
    """``LAKE_DIR/raw/<topic>`` (holds the date directories, and the user's old day files)."""
    return lake_dir / RAW / topic


def manifest_dir(lake_dir: Path, topic: str) -> Path:
    """``LAKE_DIR/raw/_manifests/<topic>``."""
    return lake_dir / RAW / MANIFESTS / topic


def source_path(lake_dir: Path) -> Path:
    """``LAKE_DIR/raw/_source.json``."""
    return lake_dir / RAW / SOURCE_FILE


def tmp_name(final_name: str, token: str) -> str:
    """Hidden temporary name beside ``final_name`` (no reader's ``*.jsonl`` glob matches it)."""
    return f".{final_name}.{token}{TMP_SUFFIX}"


def tmp_belongs_to(name: str, topic: str, partition: int) -> bool:
    """Whether a temporary file name was left by a roll of ``topic``/``partition``."""
    return (name.startswith(f".{topic}+{partition}+") and name.endswith(TMP_SUFFIX))
