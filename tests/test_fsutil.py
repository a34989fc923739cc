"""Tests for atomic writes, writes through folder handles (copies, never hardlinks) and the recent-writes registry."""

from __future__ import annotations

import errno
import hashlib
import os
from pathlib import Path

import pytest

from agent import dirfd, fsutil
from agent.clock import FakeClock
from agent.dirfd import SymlinkInPath, copy_at, open_path, open_real, write_at
from agent.fsutil import RecentWrites, atomic_write, is_temp_name, sha256_file


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


def _folder(path: Path) -> int:
    """A handle on a real folder."""
    return open_real(os.path.realpath(path))


def test_copy_at_copies_and_skips(tmp_path: Path) -> None:
    """Same filesystem: the published file is a copy (its own inode); a second call is a no-op."""
    src = tmp_path / "cache.jpg"
    src.write_bytes(b"\xff\xd8\xffimage")
    lib = tmp_path / "lib"
    lib.mkdir()
    fd = _folder(lib)
    try:
        assert copy_at(fd, "poster.jpg", src).wrote is True
        assert (lib / "poster.jpg").read_bytes() == src.read_bytes()
        assert (lib / "poster.jpg").stat().st_ino != src.stat().st_ino
        assert copy_at(fd, "poster.jpg", src).wrote is False
    finally:
        os.close(fd)
    assert _leftovers(lib) == []


def test_copy_at_identical_copy_not_rewritten(tmp_path: Path) -> None:
    """A separate file with identical bytes is left alone (no inode or mtime change)."""
    src = tmp_path / "cache.jpg"
    src.write_bytes(b"same bytes")
    dest = tmp_path / "poster.jpg"
    dest.write_bytes(b"same bytes")
    os.utime(dest, (500, 500))
    inode = dest.stat().st_ino
    fd = _folder(tmp_path)
    try:
        assert copy_at(fd, "poster.jpg", src).wrote is False
    finally:
        os.close(fd)
    assert dest.stat().st_ino == inode and dest.stat().st_mtime == 500


def test_copy_at_without_copy_file_range(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """When the in-kernel copy is refused (EXDEV) the bytes are copied by hand."""
    src = tmp_path / "cache.png"
    src.write_bytes(b"\x89PNG data" * 1000)
    dest = tmp_path / "clearlogo.png"
    dest.write_bytes(b"old logo")

    def no_fast_copy(*args: object, **kwargs: object) -> int:
        raise OSError(errno.EXDEV, "cross-device copy")

    monkeypatch.setattr(dirfd.os, "copy_file_range", no_fast_copy)
    fd = _folder(tmp_path)
    try:
        assert copy_at(fd, "clearlogo.png", src).wrote is True
    finally:
        os.close(fd)
    assert dest.read_bytes() == src.read_bytes()
    assert _leftovers(tmp_path) == []


def test_copy_at_other_error_raises(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An unexpected copy error is not hidden by a fallback, and no temp file stays."""
    src = tmp_path / "cache.png"
    src.write_bytes(b"x")

    def no_space(*args: object, **kwargs: object) -> int:
        raise OSError(errno.ENOSPC, "no space")

    monkeypatch.setattr(dirfd.os, "copy_file_range", no_space)
    fd = _folder(tmp_path)
    try:
        with pytest.raises(OSError, match="no space"):
            copy_at(fd, "poster.png", src)
    finally:
        os.close(fd)
    assert _leftovers(tmp_path) == [] and not (tmp_path / "poster.png").exists()


def test_write_at_skips_identical_and_replaces_symlink(tmp_path: Path) -> None:
    """Same bytes change nothing; a symlink at the name is replaced, its target untouched."""
    lib = tmp_path / "lib"
    lib.mkdir()
    (tmp_path / "secret").write_bytes(b"keep")
    (lib / "movie.nfo").symlink_to(tmp_path / "secret")
    fd = _folder(lib)
    try:
        assert write_at(fd, "movie.nfo", b"<movie/>").wrote is True
        os.utime(lib / "movie.nfo", (700, 700))
        assert write_at(fd, "movie.nfo", b"<movie/>").wrote is False
    finally:
        os.close(fd)
    assert (tmp_path / "secret").read_bytes() == b"keep"
    assert not (lib / "movie.nfo").is_symlink() and (lib / "movie.nfo").stat().st_mtime == 700


def test_write_at_keeps_the_previous_file(tmp_path: Path) -> None:
    """With keep, the old bytes stay under <name>-orig; the same old file is not kept twice."""
    (tmp_path / "a.nfo").write_bytes(b"release notes")
    fd = _folder(tmp_path)
    try:
        done = write_at(fd, "a.nfo", b"<movie/>", keep=True)
    finally:
        os.close(fd)
    assert done.kept == "a.nfo-orig" and (tmp_path / "a.nfo-orig").read_bytes() == b"release notes"
    assert (tmp_path / "a.nfo").read_bytes() == b"<movie/>"


def test_keep_original_copies_where_links_fail(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No hardlinks on this filesystem: the previous file is copied with its owner, mode and mtime."""
    old = tmp_path / "a.nfo"
    old.write_bytes(b"release notes")
    os.chown(old, 1000, 1000)
    os.chmod(old, 0o640)
    os.utime(old, (1_000_000, 1_000_000))

    def no_link(*args: object, **kwargs: object) -> None:
        raise OSError(errno.EPERM, "links not supported")

    monkeypatch.setattr(dirfd.os, "link", no_link)
    fd = _folder(tmp_path)
    try:
        assert write_at(fd, "a.nfo", b"<movie/>", keep=True).kept == "a.nfo-orig"
    finally:
        os.close(fd)
    kept = (tmp_path / "a.nfo-orig").stat()
    assert (tmp_path / "a.nfo-orig").read_bytes() == b"release notes"
    assert (kept.st_uid, kept.st_gid, kept.st_mode & 0o777, kept.st_mtime) == (1000, 1000, 0o640, 1_000_000)


def test_write_at_where_owner_and_mode_cannot_be_set(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A share that refuses chown/chmod (ENOTSUP) still gets the file; only its owner and mode are not kept."""
    old = tmp_path / "a.nfo"
    old.write_bytes(b"<movie>old</movie>")
    os.chown(old, 1000, 1000)
    os.chmod(old, 0o600)

    def refused(*args: object, **kwargs: object) -> None:
        raise OSError(errno.ENOTSUP, "operation not supported")

    monkeypatch.setattr(dirfd.os, "fchown", refused)
    monkeypatch.setattr(dirfd.os, "fchmod", refused)
    fd = _folder(tmp_path)
    try:
        assert write_at(fd, "a.nfo", b"<movie/>").wrote is True
    finally:
        os.close(fd)
    assert old.read_bytes() == b"<movie/>" and _leftovers(tmp_path) == []


def test_open_path_refuses_symlinks_and_creates(tmp_path: Path) -> None:
    """open_path never follows a symlink on the way and creates missing folders when asked."""
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real")
    base = _folder(tmp_path)
    try:
        with pytest.raises(SymlinkInPath) as caught:
            open_path(base, ["link"])
        assert caught.value.filename == "link"
        with pytest.raises(FileNotFoundError):
            open_path(base, ["real", "sub"])
        os.close(open_path(base, ["real", "sub", "deeper"], create=True))
    finally:
        os.close(base)
    assert (tmp_path / "real" / "sub" / "deeper").is_dir()
    with pytest.raises(SymlinkInPath):
        open_real(tmp_path / "link")


def test_sha256_file_streams(tmp_path: Path) -> None:
    """The streamed hash equals hashlib's over the whole content (several chunks)."""
    data = os.urandom(fsutil.CHUNK * 2 + 17)
    path = tmp_path / "big.bin"
    path.write_bytes(data)
    assert sha256_file(path) == hashlib.sha256(data).hexdigest()


def test_recent_writes_hold_while_the_file_is_as_the_agent_left_it(tmp_path: Path) -> None:
    """An expected write is the agent's own; once settled it stays its own however late the event comes, as long
    as the file is unchanged; a person's change afterwards (or a write that never settled) is news."""
    clock = FakeClock()
    recent = RecentWrites(clock, ttl=30)
    poster = tmp_path / "A" / "poster.jpg"
    poster.parent.mkdir()
    recent.expect(str(tmp_path / "A" / ".." / "A" / "poster.jpg"))
    assert recent.contains(poster)  # under way
    poster.write_bytes(b"agent")
    recent.settle(poster)
    clock.advance(3600)
    assert recent.contains(poster)  # an hour later: still exactly as the agent left it
    assert not recent.contains(tmp_path / "A" / "fanart.jpg")
    poster.write_bytes(b"a person's poster")
    assert not recent.contains(poster)
    assert not recent.contains(poster)  # and it stays news
    gone = tmp_path / "A" / "old.jpg"
    gone.write_bytes(b"x")
    recent.expect(gone)
    gone.unlink()
    recent.settle(gone)
    assert recent.contains(gone)  # the agent's delete
    gone.write_bytes(b"new")
    assert not recent.contains(gone)  # someone put a file there again
    recent.expect(tmp_path / "B" / "movie.nfo")
    clock.advance(31)
    assert not recent.contains(tmp_path / "B" / "movie.nfo")  # never settled (a crash mid-write)


def test_recent_writes_are_bounded(tmp_path: Path) -> None:
    """Only the newest max_entries paths are remembered."""
    recent = RecentWrites(FakeClock(), max_entries=3)
    for n in range(5):
        path = tmp_path / f"{n}.jpg"
        path.write_bytes(b"x")
        recent.expect(path)
        recent.settle(path)
    assert len(recent) == 3
    assert not recent.contains(tmp_path / "0.jpg") and recent.contains(tmp_path / "4.jpg")


def test_temp_names() -> None:
    """Temp names are short whatever the target, and the watcher recognises new and old ones."""
    name = fsutil.temp_name()
    assert is_temp_name(name) and len(name.encode()) <= 24
    assert len(fsutil.temp_path_for(Path("/m") / ("x" * 251 + ".nfo")).name.encode()) <= 24
    assert is_temp_name(".poster.jpg.metarr-tmp-abc123")
    assert not is_temp_name("poster.jpg")


def test_recent_writes_overlapping_writes_of_one_path(tmp_path: Path) -> None:
    """Two writes of one file overlap (two publishes of an item): the first one settling does not end the
    second one's grace; the second's rename is still the agent's own, and a person's change afterwards is not."""
    writes = RecentWrites()
    nfo = tmp_path / "movie.nfo"
    writes.expect(nfo)  # publish 1
    writes.expect(nfo)  # publish 2
    nfo.write_bytes(b"<movie>fields</movie>")
    writes.settle(nfo)  # publish 1 is done; publish 2 is still writing
    nfo.write_bytes(b"<movie>fields and artwork</movie>")  # publish 2's rename lands before it settles
    assert writes.contains(nfo)
    writes.settle(nfo)
    assert writes.contains(nfo)
    nfo.write_bytes(b"<movie>a person's edit, longer than ours</movie>")
    assert not writes.contains(nfo)
