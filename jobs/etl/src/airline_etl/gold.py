"""Gold parquet: each run writes a complete new folder ``gold/runs/<run_id>/`` (the user's
``fact_*.parquet`` names inside); ``gold/CURRENT`` names the current run and is switched by an
atomic rename only after the warehouse commit. Readers resolve CURRENT, then read that folder,
so they never see a half-written run, and gold never runs ahead of the warehouse.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Final

import polars as pl

GOLD: Final = "gold"
RUNS: Final = "runs"
POINTER: Final = "CURRENT"


def gold_dir(lake_dir: Path) -> Path:
    """``LAKE_DIR/gold``."""
    return lake_dir / GOLD


def run_dir(lake_dir: Path, run_id: str) -> Path:
    """``LAKE_DIR/gold/runs/<run_id>``."""
    return gold_dir(lake_dir) / RUNS / run_id


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def seal(folder: Path) -> None:
    """Make a finished run folder durable before the warehouse commit refers to it."""
    for child in folder.iterdir():
        with child.open("rb") as f:
            os.fsync(f.fileno())
    _fsync_dir(folder)


def current_run(lake_dir: Path) -> str | None:
    """The run id CURRENT names, or None before the first run."""
    try:
        text = (gold_dir(lake_dir) / POINTER).read_text().strip()
    except FileNotFoundError:
        return None
    return text or None


def current_dir(lake_dir: Path) -> Path | None:
    """The folder CURRENT names (what a reader of gold should read), or None."""
    run = current_run(lake_dir)
    return None if run is None else run_dir(lake_dir, run)


def switch(lake_dir: Path, run_id: str) -> None:
    """Point CURRENT at ``run_id``: write a temp file, fsync, rename over CURRENT (atomic).

    The temp name is unique per call (a uuid, not the pid: every container is PID 1, so two
    pods sharing the lake would otherwise write the same temp file).
    """
    base = gold_dir(lake_dir)
    base.mkdir(parents=True, exist_ok=True)
    tmp = base / f".{POINTER}.{uuid.uuid4().hex}.tmp"
    try:
        with tmp.open("w") as f:
            f.write(run_id + "\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, base / POINTER)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(base)


def prune(lake_dir: Path, keep: Iterable[str]) -> list[str]:
    """Delete run folders not in ``keep`` and not CURRENT (left by old or crashed runs)."""
    runs = gold_dir(lake_dir) / RUNS
    if not runs.is_dir():
        return []
    keep_set = set(keep) | {current_run(lake_dir) or ""}
    removed = []
    for folder in runs.iterdir():
        if folder.is_dir() and folder.name not in keep_set:
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder.name)
    return removed


def read_current(lake_dir: Path, table: str) -> pl.DataFrame:
    """A table of the current gold run (for tests and tools)."""
    folder = current_dir(lake_dir)
    if folder is None:
        raise FileNotFoundError(f"no gold run yet under {gold_dir(lake_dir)}")
    return pl.read_parquet(folder / f"{table}.parquet")
