"""The folder watcher on real folders: debounce, settle, ignore, moves, deletes, polling, overflow."""

from __future__ import annotations

import asyncio
import errno
import os
import shutil
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from watchdog.observers.inotify_c import InotifyConstants, InotifyEvent

from agent.errors import UserError
from agent.library import watcher as watcher_module
from agent.library.watcher import LibraryWatcher

QUIET = 0.2


class Recorder:
    """Collects on_change and on_overflow calls and lets a test wait for them with a deadline."""

    def __init__(self) -> None:
        self.changes: list[tuple[str, Path, float]] = []
        self.overflows: list[str] = []
        self._changed = asyncio.Event()

    async def on_change(self, library: str, folder: Path) -> None:
        """Record one reported folder."""
        self.changes.append((library, folder, time.monotonic()))
        self._changed.set()

    async def on_overflow(self, library: str) -> None:
        """Record one overflow."""
        self.overflows.append(library)
        self._changed.set()

    def folders(self) -> list[Path]:
        """Reported folders in order."""
        return [folder for _, folder, _ in self.changes]

    async def wait_for(self, predicate: Callable[[], bool], timeout: float = 10.0) -> None:
        """Wait until predicate() holds, failing after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while not predicate():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(
                    f"timed out; changes so far: {self.changes}, overflows: {self.overflows}"
                )
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), min(remaining, 0.2))
            except TimeoutError:
                pass

    async def sentinel(self, root: Path) -> None:
        """Change a separate folder and wait for it: every earlier change has been reported by then."""
        folder = root / f"zz-sentinel-{len(self.changes)}"
        folder.mkdir()
        await self.wait_for(lambda: folder in self.folders())


@pytest.fixture
def recorder() -> Recorder:
    """A fresh recorder."""
    return Recorder()


@pytest.fixture
async def make_watcher(recorder: Recorder) -> AsyncIterator[Callable[..., LibraryWatcher]]:
    """Build watchers on the test loop with the recorder's callbacks; every one is stopped afterwards."""
    made: list[LibraryWatcher] = []

    def factory(root: Path, **kwargs: object) -> LibraryWatcher:
        """One watcher for library "m" at root."""
        kwargs.setdefault("quiet_period", QUIET)
        w = LibraryWatcher(
            {"m": root},
            recorder.on_change,
            asyncio.get_running_loop(),
            on_overflow=recorder.on_overflow,
            **kwargs,  # type: ignore[arg-type]
        )
        made.append(w)
        return w

    yield factory
    for w in made:
        await w.stop()


async def test_new_movie_folder_reported_once(tmp_path: Path, recorder: Recorder, make_watcher) -> None:
    """A new folder with a few files is one change for that folder."""
    w = make_watcher(tmp_path)
    await w.start()
    assert w.count == 1 and w.modes == {"m": "inotify"}
    movie = tmp_path / "New (2020)"
    (movie / "sub").mkdir(parents=True)
    (movie / "New (2020).mkv").write_bytes(b"video")
    (movie / "New (2020).nfo").write_text("<movie/>")
    (movie / "sub" / "deep.txt").write_text("x")
    await recorder.wait_for(lambda: movie in recorder.folders())
    await recorder.sentinel(tmp_path)
    assert recorder.folders().count(movie) == 1
    assert all(lib == "m" for lib, _, _ in recorder.changes)


async def test_slow_copy_reported_once_after_it_settles(
    tmp_path: Path, recorder: Recorder, make_watcher
) -> None:
    """Chunks written over about a second make one report, after the last chunk."""
    movie = tmp_path / "Slow (2001)"
    movie.mkdir()
    w = make_watcher(tmp_path, quiet_period=0.3)
    await w.start()
    last_write = 0.0
    with open(movie / "Slow (2001).mkv", "wb") as f:
        for _ in range(10):
            f.write(os.urandom(64 * 1024))
            f.flush()
            last_write = time.monotonic()
            await asyncio.sleep(0.1)
    await recorder.wait_for(lambda: movie in recorder.folders())
    await recorder.sentinel(tmp_path)
    reports = [t for _, folder, t in recorder.changes if folder == movie]
    assert len(reports) == 1
    assert reports[0] >= last_write + 0.3


async def test_ignored_and_junk_paths_are_not_reported(
    tmp_path: Path, recorder: Recorder, make_watcher
) -> None:
    """Paths the ignore callback claims, partial downloads and NAS litter produce nothing."""
    movie = tmp_path / "Quiet (2002)"
    movie.mkdir()
    ours = {movie / "poster.jpg", movie / "Quiet (2002).nfo"}
    seen: list[Path] = []

    def ignore(path: Path) -> bool:
        """Ignore what the agent itself wrote."""
        seen.append(path)
        return path in ours

    w = make_watcher(tmp_path, ignore=ignore)
    await w.start()
    for path in ours:
        path.write_bytes(b"ours")
    (movie / "Quiet (2002).mkv.part").write_bytes(b"downloading")
    (movie / ".DS_Store").write_bytes(b"")
    (tmp_path / "@eaDir" / "x").mkdir(parents=True)
    await recorder.sentinel(tmp_path)
    assert movie not in recorder.folders()
    assert movie / "poster.jpg" in seen
    assert not any(p.name.endswith(".part") for p in seen)


async def test_moves_and_deletes(tmp_path: Path, recorder: Recorder, make_watcher) -> None:
    """Renamed folders report old and new names; moved files both folders; deletes their folder."""
    for name in ("Old (2000)", "From (2001)", "To (2002)", "Del (2003)", "Gone (2004)"):
        (tmp_path / name).mkdir()
    (tmp_path / "From (2001)" / "f.mkv").write_bytes(b"x")
    (tmp_path / "Del (2003)" / "d.mkv").write_bytes(b"x")
    (tmp_path / "Gone (2004)" / "g.mkv").write_bytes(b"x")
    w = make_watcher(tmp_path)
    await w.start()
    (tmp_path / "Old (2000)").rename(tmp_path / "Renamed (2000)")
    (tmp_path / "From (2001)" / "f.mkv").rename(tmp_path / "To (2002)" / "f.mkv")
    (tmp_path / "Del (2003)" / "d.mkv").unlink()
    shutil.rmtree(tmp_path / "Gone (2004)")
    expected = {tmp_path / n for n in ("Old (2000)", "Renamed (2000)", "From (2001)", "To (2002)")}
    expected |= {tmp_path / "Del (2003)", tmp_path / "Gone (2004)"}
    await recorder.wait_for(lambda: expected <= set(recorder.folders()))
    await recorder.sentinel(tmp_path)
    assert sorted(recorder.folders()[:-1]) == sorted(expected)


async def test_nested_changes_report_the_top_level_folder(
    tmp_path: Path, recorder: Recorder, make_watcher
) -> None:
    """A new episode deep in a season folder reports the show folder; a loose file reports the root."""
    season = tmp_path / "Show (2010)" / "Season 01"
    season.mkdir(parents=True)
    w = make_watcher(tmp_path)
    await w.start()
    (season / "Show S01E01.mkv").write_bytes(b"x")
    (tmp_path / "Loose (2000).mkv").write_bytes(b"x")
    await recorder.wait_for(lambda: {tmp_path / "Show (2010)", tmp_path} <= set(recorder.folders()))
    assert season not in recorder.folders()


async def test_poll_mode(tmp_path: Path, recorder: Recorder, make_watcher) -> None:
    """Polling finds a new file too."""
    w = make_watcher(tmp_path, mode="poll", poll_interval=0.1)
    await w.start()
    assert w.modes == {"m": "poll"} and w.count == 1
    movie = tmp_path / "Polled (2005)"
    movie.mkdir()
    (movie / "p.mkv").write_bytes(b"x")
    await recorder.wait_for(lambda: movie in recorder.folders())


async def test_auto_falls_back_to_polling(
    tmp_path: Path, recorder: Recorder, make_watcher, monkeypatch: pytest.MonkeyPatch
) -> None:
    """When inotify cannot start (out of watches), auto mode polls and still reports changes."""

    class NoInotify:
        """Stands in for an inotify reader whose creation fails like the kernel does."""

        def __init__(self, *_: object) -> None:
            raise OSError(errno.ENOSPC, "inotify watch limit reached")

    monkeypatch.setattr(watcher_module, "_InotifyFD", NoInotify)
    w = make_watcher(tmp_path, poll_interval=0.1)
    await w.start()
    assert w.modes == {"m": "poll"}
    (tmp_path / "Fallback (2006)").mkdir()
    await recorder.wait_for(lambda: tmp_path / "Fallback (2006)" in recorder.folders())


async def test_queue_overflow_asks_for_a_rescan(tmp_path: Path, recorder: Recorder, make_watcher) -> None:
    """An IN_Q_OVERFLOW from the kernel reaches on_overflow, and watching goes on afterwards."""
    w = make_watcher(tmp_path)
    await w.start()
    _, fd = w._observers["m"]
    assert fd is not None
    # Fed through watchdog's own handler, exactly as its reader thread would after reading the kernel's event.
    await asyncio.to_thread(fd.handle_event, InotifyEvent(-1, InotifyConstants.IN_Q_OVERFLOW, 0, b""))
    await recorder.wait_for(lambda: recorder.overflows == ["m"])
    (tmp_path / "After (2007)").mkdir()
    await recorder.wait_for(lambda: tmp_path / "After (2007)" in recorder.folders())


async def test_stop_is_idempotent_and_missing_roots_are_skipped(
    tmp_path: Path, recorder: Recorder, make_watcher
) -> None:
    """A missing root is not watched (no crash); stop twice is fine; nothing is reported after stop."""
    missing = make_watcher(tmp_path / "not-there")
    await missing.start()
    assert missing.count == 0
    w = make_watcher(tmp_path)
    await w.start()
    await w.stop()
    await w.stop()
    assert w.count == 0
    with pytest.raises(UserError, match="watch mode"):
        LibraryWatcher({"m": tmp_path}, recorder.on_change, asyncio.get_running_loop(), mode="off")  # type: ignore[arg-type]


async def test_ten_thousand_folders(tmp_path: Path, recorder: Recorder, make_watcher) -> None:
    """10,000 folders are watched quickly without overflowing, and a new file is still reported promptly."""
    for i in range(10_000):
        os.makedirs(tmp_path / f"Movie {i:05d} (2000)")
    w = make_watcher(tmp_path)
    started = time.monotonic()
    await w.start()
    assert time.monotonic() - started < 8.0
    assert w.modes == {"m": "inotify"} and w.watch_count >= 10_001
    target = tmp_path / "Movie 05000 (2000)"
    written = time.monotonic()
    (target / "new.mkv").write_bytes(b"x")
    await recorder.wait_for(lambda: target in recorder.folders(), timeout=10.0)
    assert recorder.changes[0][2] - written < 2 * QUIET + 1.5
    assert recorder.overflows == []
