"""Durable file writes: temporary name, write, fsync, rename, fsync the directory.

After :func:`write_durable` returns, the file exists under its final name with its full
content even if the machine loses power; before that, readers see either nothing or (when
overwriting) the previous complete file, never a torn one. The directory fsync makes the
rename itself durable (POSIX keeps names in the directory, not in the file).
"""

from __future__ import annotations

import contextlib
import errno
import os
import time
from pathlib import Path

from airline_core.crash import crash_point
from airline_core.lake.layout import TMP_SUFFIX, tmp_name

from airline_lake_writer.errors import LakeStorageError
from airline_lake_writer.metrics import FSYNC_SECONDS


def _fsync(fd: int) -> None:
    started = time.perf_counter()
    os.fsync(fd)
    FSYNC_SECONDS.observe(time.perf_counter() - started)


def fsync_dir(directory: Path) -> None:
    """Make the directory's entries (creations, renames, deletions) durable."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        _fsync(fd)
    finally:
        os.close(fd)


def ensure_dir(directory: Path) -> None:
    """Create ``directory`` and make each newly created level durable in its parent."""
    missing: list[Path] = []
    current = directory
    while not current.exists():
        missing.append(current)
        current = current.parent
    for path in reversed(missing):
        with contextlib.suppress(FileExistsError):
            path.mkdir()
        fsync_dir(path.parent)


def storage_reason(error: OSError) -> str:
    """A metric label for an OS error: its errno name (``ENOSPC``, ``EACCES``...)."""
    return errno.errorcode.get(error.errno or 0, "OSERROR")


def write_durable(path: Path, content: bytes, *, crash_name: str) -> None:
    """Write ``content`` to ``path`` durably and atomically (replacing any previous file).

    ``crash_name`` is the crash point passed between the fsynced temporary file and the rename.
    Raises :class:`LakeStorageError` on any OS error, after removing the temporary file.
    """
    tmp = path.with_name(tmp_name(path.name, str(os.getpid())))
    try:
        ensure_dir(path.parent)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            view = memoryview(content)
            while view:
                written = os.write(fd, view)
                view = view[written:]
            _fsync(fd)
        finally:
            os.close(fd)
        crash_point(crash_name)
        os.replace(tmp, path)
        fsync_dir(path.parent)
    except OSError as e:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise LakeStorageError(f"cannot write {path}: {e}", storage_reason(e)) from e


def delete_durable(paths: list[Path]) -> None:
    """Delete files (missing ones are fine) and fsync each parent directory once."""
    parents: set[Path] = set()
    try:
        for path in paths:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
            parents.add(path.parent)
        for parent in parents:
            if parent.exists():
                fsync_dir(parent)
    except OSError as e:
        raise LakeStorageError(f"cannot delete files in {sorted(parents)}: {e}",
                               storage_reason(e)) from e


def is_tmp(name: str) -> bool:
    """Whether ``name`` is a temporary file left by :func:`write_durable`."""
    return name.startswith(".") and name.endswith(TMP_SUFFIX)
