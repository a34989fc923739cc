"""Tests for atomic writes, hardlink-or-copy publishing and the recent-writes registry."""

from __future__ import annotations

import errno
import hashlib
import os
from pathlib import Path

import pytest

from agent import fsutil
from agent.clock import FakeClock
from agent.fsutil import RecentWrites, atomic_link_or_copy, atomic_write, is_temp_name, sha256_file


def _leftovers(folder: Path) -> list[str]:
    """Temp files the agent left in a folder."""
    return [p.name for p in folder.iterdir() if is_temp_name(p.name)]


def test_atomic_write_creates_and_skips_identical(tmp_path: Path) -> None:
    """A new file is written; the same bytes again change nothing, not even the mtime."""
    target = tmp_path / "movie.nfo"
    assert atomic_write(target, b"<movie/>") is True
    assert target.read_bytes() == b"<movie/>"
    os.utime(target, (1000, 1000))
    assert atomic_write(target, b"<movie/>") is False
    assert target.stat().st_mtime == 1000
    assert atomic_write(target, b"<movie>x</movie>") is True
    assert target.read_bytes() == b"<movie>x</movie>"
    assert _leftovers(tmp_path) == []


def test_atomic_write_replaces_symlink_without_following(tmp_path: Path) -> None:
    """A symlink at the target is replaced by a file; the file it pointed to is untouched."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    outside = elsewhere / "secret.txt"
    outside.write_bytes(b"keep")
    folder = tmp_path / "lib"
    folder.mkdir()
    (folder / "poster.jpg").symlink_to(outside)
    assert atomic_write(folder / "poster.jpg", b"new") is True
    assert outside.read_bytes() == b"keep"
    assert not (folder / "poster.jpg").is_symlink()


def test_atomic_write_failure_removes_temp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """If the rename fails the temp file is removed, the old file is intact and the error surfaces."""
    target = tmp_path / "a.nfo"
    target.write_bytes(b"old")

    def boom(src: object, dst: object) -> None:
        raise OSError(errno.EIO, "disk on fire")

    monkeypatch.setattr(fsutil.os, "replace", boom)
    with pytest.raises(OSError, match="disk on fire"):
        atomic_write(target, b"new")
    assert target.read_bytes() == b"old"
    assert _leftovers(tmp_path) == []


def test_link_or_copy_hardlinks_and_skips(tmp_path: Path) -> None:
    """Same filesystem: the published file shares the cache inode; a second call is a no-op."""
    src = tmp_path / "cache.jpg"
    src.write_bytes(b"\xff\xd8\xffimage")
    dest = tmp_path / "lib" / "poster.jpg"
    dest.parent.mkdir()
    assert atomic_link_or_copy(src, dest) is True
    assert dest.stat().st_ino == src.stat().st_ino
    assert atomic_link_or_copy(src, dest) is False
    assert _leftovers(dest.parent) == []


def test_link_or_copy_identical_copy_not_rewritten(tmp_path: Path) -> None:
    """A separate file with identical bytes is left alone (no inode or mtime change)."""
    src = tmp_path / "cache.jpg"
    src.write_bytes(b"same bytes")
    dest = tmp_path / "poster.jpg"
    dest.write_bytes(b"same bytes")
    os.utime(dest, (500, 500))
    inode = dest.stat().st_ino
    assert atomic_link_or_copy(src, dest) is False
    assert dest.stat().st_ino == inode and dest.stat().st_mtime == 500


def test_link_or_copy_falls_back_to_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """When hardlinks fail with EXDEV the file is copied instead."""
    src = tmp_path / "cache.png"
    src.write_bytes(b"\x89PNG data")
    dest = tmp_path / "clearlogo.png"
    dest.write_bytes(b"old logo")

    def no_link(*args: object, **kwargs: object) -> None:
        raise OSError(errno.EXDEV, "cross-device link")

    monkeypatch.setattr(fsutil.os, "link", no_link)
    assert atomic_link_or_copy(src, dest) is True
    assert dest.read_bytes() == b"\x89PNG data"
    assert dest.stat().st_ino != src.stat().st_ino
    assert _leftovers(tmp_path) == []


def test_link_or_copy_other_error_raises(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An unexpected link error is not hidden by a copy."""
    src = tmp_path / "cache.png"
    src.write_bytes(b"x")

    def no_space(*args: object, **kwargs: object) -> None:
        raise OSError(errno.ENOSPC, "no space")

    monkeypatch.setattr(fsutil.os, "link", no_space)
    with pytest.raises(OSError, match="no space"):
        atomic_link_or_copy(src, tmp_path / "poster.png")
    assert _leftovers(tmp_path) == []


def test_sha256_file_streams(tmp_path: Path) -> None:
    """The streamed hash equals hashlib's over the whole content (several chunks)."""
    data = os.urandom(fsutil.CHUNK * 2 + 17)
    path = tmp_path / "big.bin"
    path.write_bytes(data)
    assert sha256_file(path) == hashlib.sha256(data).hexdigest()


def test_recent_writes_expire() -> None:
    """Entries are found by normalised path and disappear after the ttl."""
    clock = FakeClock()
    recent = RecentWrites(clock, ttl=30)
    recent.add("/media/Movies/A/../A/poster.jpg")
    assert recent.contains("/media/Movies/A/poster.jpg")
    assert not recent.contains("/media/Movies/A/fanart.jpg")
    clock.advance(29)
    assert recent.contains(Path("/media/Movies/A/poster.jpg"))
    clock.advance(2)
    assert not recent.contains("/media/Movies/A/poster.jpg")
    assert len(recent) == 0


def test_temp_names() -> None:
    """The watcher can recognise the agent's temp names."""
    assert is_temp_name(".poster.jpg.metarr-tmp-abc123")
    assert not is_temp_name("poster.jpg")
