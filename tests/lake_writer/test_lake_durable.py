"""Durable writes: atomic replace, no temporary files left behind, typed storage errors."""

import errno
import os
from pathlib import Path

import pytest
from airline_lake_writer import durable
from airline_lake_writer.errors import LakeStorageError


def test_write_creates_directories_and_replaces_atomically(tmp_path: Path) -> None:
    target = tmp_path / "a" / "b" / "file.jsonl"
    durable.write_durable(target, b"one\n", crash_name="test.none")
    durable.write_durable(target, b"two\n", crash_name="test.none")
    assert target.read_bytes() == b"two\n"
    assert os.listdir(target.parent) == ["file.jsonl"]


def test_disk_full_raises_a_storage_error_and_cleans_up(tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    def full(fd: int, data: object) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(durable.os, "write", full)
    with pytest.raises(LakeStorageError) as caught:
        durable.write_durable(tmp_path / "f.jsonl", b"x\n", crash_name="test.none")
    assert caught.value.reason == "ENOSPC"
    assert os.listdir(tmp_path) == []


def test_permission_error_is_a_storage_error(tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    def denied(*args: object, **kwargs: object) -> int:
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(durable.os, "open", denied)
    with pytest.raises(LakeStorageError) as caught:
        durable.write_durable(tmp_path / "f.jsonl", b"x\n", crash_name="test.none")
    assert caught.value.reason == "EACCES"


def test_delete_is_idempotent(tmp_path: Path) -> None:
    path = tmp_path / "x"
    path.write_bytes(b"1")
    durable.delete_durable([path, tmp_path / "missing"])
    assert not path.exists()
    assert durable.is_tmp(".bookings+0+1.jsonl.123.tmp") and not durable.is_tmp("a.jsonl")
