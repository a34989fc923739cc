"""Watch library folders (inotify or polling); report each changed movie or show folder once settled."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Literal

from watchdog.events import (
    DirCreatedEvent,
    DirDeletedEvent,
    DirModifiedEvent,
    DirMovedEvent,
    FileClosedEvent,
    FileCreatedEvent,
    FileDeletedEvent,
    FileModifiedEvent,
    FileMovedEvent,
    FileSystemEvent,
    FileSystemEventHandler,
)
from watchdog.observers.api import BaseObserver
from watchdog.observers.inotify import InotifyEmitter
from watchdog.observers.inotify_c import InotifyEvent, InotifyFD
from watchdog.observers.polling import PollingObserver

from agent.config import Config
from agent.errors import UserError
from agent.fsutil import RecentWrites
from agent.library.naming import is_junk
from agent.library.scan import enqueue_scan
from agent.queue import Queue
from agent.queue.model import Priority

log = logging.getLogger(__name__)

# Without open/close-nowrite events: watchdog's own directory walks would otherwise flood the inotify
# queue on trees of more than ~4,100 folders, overflow, rescan and overflow again forever.
EVENT_FILTER: Final[list[type[FileSystemEvent]]] = [
    FileCreatedEvent,
    FileModifiedEvent,
    FileDeletedEvent,
    FileMovedEvent,
    FileClosedEvent,
    DirCreatedEvent,
    DirDeletedEvent,
    DirMovedEvent,
    DirModifiedEvent,
]
MAX_TRACKED_PATHS: Final = 512  # changed files whose sizes are compared before a folder counts as settled
OBSERVER_TIMEOUT: Final = 0.5  # seconds a watchdog thread blocks between checks of its stop flag

OnChange = Callable[[str, Path], Awaitable[None]]
OnOverflow = Callable[[str], Awaitable[None]]
WatchMode = Literal["auto", "poll"]


class _InotifyFD(InotifyFD):
    """watchdog's inotify reader that also reports queue overflows and running out of watches."""

    def __init__(self, on_overflow: Callable[[], None]) -> None:
        super().__init__()
        self._on_overflow = on_overflow
        self.out_of_watches = False

    def handle_event(self, event: InotifyEvent) -> None:
        """Tell the watcher about an IN_Q_OVERFLOW before watchdog rebuilds its watches."""
        if event.is_queue_overflow:
            try:
                self._on_overflow()
            except RuntimeError:
                log.warning("inotify queue overflowed while the event loop was closed")
        super().handle_event(event)

    def add_callback(self, path: bytes, mask: Any, callback: Any, id_: Any) -> Any:
        """Add a watch; remember ENOSPC, which watchdog swallows for folders below the root."""
        try:
            return super().add_callback(path, mask, callback, id_)
        except OSError as exc:
            if exc.errno == errno.ENOSPC:
                self.out_of_watches = True
            raise

    def watch_count(self) -> int:
        """How many inotify watches this reader holds."""
        return len(self._watch_for_wd)


class _Handler(FileSystemEventHandler):
    """Runs on a watchdog thread: maps each event to the top-level folder it touches and hands it over."""

    def __init__(self, watcher: LibraryWatcher, library: str, root: str) -> None:
        self._watcher = watcher
        self._library = library
        self._root = root

    def on_any_event(self, event: FileSystemEvent) -> None:
        """Forward create/modify/move/delete events outside junk to the event loop."""
        if event.event_type in ("opened", "closed_no_write") or (
            event.is_directory and event.event_type == "modified"
        ):
            return
        for raw in (event.src_path, event.dest_path):
            if not raw:
                continue
            path = os.fsdecode(raw)
            folder = self._top_folder(path, event.is_directory)
            if folder is None or self._watcher._is_own(path):
                continue
            try:
                self._watcher._loop.call_soon_threadsafe(self._watcher._note, self._library, folder, path)
            except RuntimeError:
                return  # the event loop is closed: the agent is shutting down

    def _top_folder(self, path: str, is_directory: bool) -> str | None:
        """The folder directly under the root that holds `path`; the root for loose files; None for junk."""
        rel = os.path.relpath(path, self._root)
        if rel == "." or rel.startswith(".." + os.sep) or rel == "..":
            return None
        parts = rel.split(os.sep)
        if any(is_junk(part) for part in parts):
            return None
        if len(parts) == 1 and not is_directory:
            return self._root
        return os.path.join(self._root, parts[0])


@dataclass
class _Pending:
    """Changes waiting for a folder to go quiet."""

    last: float
    paths: set[str] = field(default_factory=set)
    task: asyncio.Task[None] | None = None


def _snapshot(paths: list[str]) -> dict[str, tuple[int, int] | None]:
    """(size, mtime_ns) of each path, None for one that is gone."""
    found: dict[str, tuple[int, int] | None] = {}
    for path in paths:
        try:
            st = os.stat(path)
        except OSError:
            found[path] = None
        else:
            found[path] = (st.st_size, st.st_mtime_ns)
    return found


class LibraryWatcher:
    """Watches library roots and calls `on_change(library, folder)` once per settled changed folder.

    `ignore(path)` is called on the watchdog thread for every changed path (e.g. files the agent
    wrote; it may stat the path, so never on the loop); `on_overflow(library)` is awaited when inotify
    lost events, so the caller rescans that library.
    """

    def __init__(
        self,
        roots: dict[str, Path],
        on_change: OnChange,
        loop: asyncio.AbstractEventLoop,
        quiet_period: float = 5.0,
        settle_checks: int = 2,
        mode: WatchMode = "auto",
        on_overflow: OnOverflow | None = None,
        ignore: Callable[[Path], bool] | None = None,
        poll_interval: float = 30.0,
    ) -> None:
        if mode not in ("auto", "poll"):
            raise UserError(f"watch mode must be 'auto' or 'poll', not {mode!r}")
        if quiet_period <= 0 or settle_checks < 1 or poll_interval <= 0:
            raise UserError("quiet_period and poll_interval must be > 0 and settle_checks >= 1")
        self._roots = {name: Path(os.path.abspath(root)) for name, root in roots.items()}
        self._on_change = on_change
        self._on_overflow = on_overflow
        self._ignore = ignore
        self._loop = loop
        self._quiet = quiet_period
        self._settle_checks = settle_checks
        self._mode = mode
        self._poll_interval = poll_interval
        self._observers: dict[str, tuple[BaseObserver, _InotifyFD | None]] = {}
        self._pending: dict[tuple[str, str], _Pending] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._running = False

    @property
    def count(self) -> int:
        """How many libraries are being watched right now (for /api/health)."""
        return len(self._observers)

    @property
    def watch_count(self) -> int:
        """inotify watches held, plus one per library that is polled."""
        return sum(fd.watch_count() if fd is not None else 1 for _, fd in self._observers.values())

    @property
    def modes(self) -> dict[str, str]:
        """How each watched library is watched: "inotify" or "poll"."""
        return {name: "poll" if fd is None else "inotify" for name, (_, fd) in self._observers.items()}

    async def start(self) -> None:
        """Start one observer per library (in a worker thread: adding watches walks the whole tree)."""
        if self._running:
            return
        self._running = True
        for name, root in self._roots.items():
            if not root.is_dir():
                log.warning("not watching library %s: %s is not a folder", name, root)
                continue
            try:
                started = await asyncio.to_thread(self._start_one, name, root)
            except OSError as exc:
                log.warning("not watching library %s: %s", name, exc)
                continue
            if not self._running:  # stop() was called meanwhile
                await asyncio.to_thread(_stop_observer, *started)
                return
            self._observers[name] = started

    def _start_one(self, name: str, root: Path) -> tuple[BaseObserver, _InotifyFD | None]:
        """Start inotify for one library, falling back to polling when inotify is unavailable or full."""
        handler = _Handler(self, name, str(root))
        if self._mode == "auto":
            fd: _InotifyFD | None = None
            observer: BaseObserver | None = None
            try:
                fd = _InotifyFD(lambda: self._loop.call_soon_threadsafe(self._overflowed, name))
                fd.start()
                observer = BaseObserver(InotifyEmitter, timeout=OBSERVER_TIMEOUT, inotify_fd=fd)
                observer.schedule(handler, str(root), recursive=True, event_filter=EVENT_FILTER)
                observer.start()
                if not fd.out_of_watches:
                    return observer, fd
                problem: str = "the inotify watch limit (fs.inotify.max_user_watches) was reached"
            except OSError as exc:
                problem = str(exc)
            _stop_observer(observer, fd)
            log.warning(
                "library %s: inotify failed (%s); polling every %gs", name, problem, self._poll_interval
            )
        poller = PollingObserver(timeout=self._poll_interval)
        poller.schedule(handler, str(root), recursive=True, event_filter=EVENT_FILTER)
        poller.start()
        return poller, None

    async def stop(self) -> None:
        """Stop every observer and drop changes not reported yet; calling it twice is harmless."""
        self._running = False
        observers, self._observers = list(self._observers.values()), {}
        for observer, fd in observers:
            await asyncio.to_thread(_stop_observer, observer, fd)
        tasks = [p.task for p in self._pending.values() if p.task is not None] + list(self._tasks)
        self._pending.clear()
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    def _is_own(self, path: str) -> bool:
        """On a watchdog thread: True if `ignore` says the change is the agent's own (it may stat the path)."""
        if self._ignore is None:
            return False
        try:
            return self._ignore(Path(path))
        except Exception:
            log.exception("ignore callback failed for %s", path)
            return False

    def _note(self, library: str, folder: str, path: str) -> None:
        """On the loop: merge a changed path into its folder's pending change; restart the quiet wait."""
        if not self._running:
            return
        key = (library, folder)
        pending = self._pending.get(key)
        if pending is None:
            pending = self._pending[key] = _Pending(last=self._loop.time())
            pending.task = self._loop.create_task(self._settle(key, pending))
        pending.last = self._loop.time()
        if len(pending.paths) < MAX_TRACKED_PATHS:
            pending.paths.add(path)

    async def _settle(self, key: tuple[str, str], pending: _Pending) -> None:
        """Wait for a quiet period, then until file sizes stop moving, then report the folder once."""
        while True:
            delay = pending.last + self._quiet - self._loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
                continue
            if await self._sizes_settled(pending):
                break
        if self._pending.get(key) is pending:
            del self._pending[key]
        library, folder = key
        try:
            await self._on_change(library, Path(folder))
        except Exception:
            log.exception("handling a change in %s (library %s) failed", folder, library)

    async def _sizes_settled(self, pending: _Pending) -> bool:
        """True when `settle_checks` stats a quiet period apart agree; False when new events came in."""
        mark = pending.last
        before = await asyncio.to_thread(_snapshot, sorted(pending.paths))
        agreeing = 1
        while agreeing < self._settle_checks:
            await asyncio.sleep(self._quiet)
            if pending.last != mark:
                return False
            now = await asyncio.to_thread(_snapshot, sorted(pending.paths))
            agreeing = agreeing + 1 if now == before else 1
            before = now
        return pending.last == mark

    def _overflowed(self, library: str) -> None:
        """On the loop: inotify dropped events for a library, so ask for a rescan of it."""
        if not self._running:
            return
        log.warning("library %s: inotify queue overflowed; asking for a rescan", library)
        task = self._loop.create_task(self._report_overflow(library))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _report_overflow(self, library: str) -> None:
        """Await on_overflow, or without one report the library root as changed."""
        try:
            if self._on_overflow is not None:
                await self._on_overflow(library)
            else:
                await self._on_change(library, self._roots[library])
        except Exception:
            log.exception("handling an inotify overflow for library %s failed", library)


def _stop_observer(observer: BaseObserver | None, fd: _InotifyFD | None) -> None:
    """Stop and join an observer and its inotify reader, whichever of them started."""
    if observer is not None:
        observer.stop()
        with contextlib.suppress(RuntimeError):
            observer.join()
    if fd is not None:
        fd.stop()
        with contextlib.suppress(RuntimeError):
            fd.join()


class LibraryWatchers:
    """One folder watcher per watched library; each settled change is queued as a low-priority folder scan.

    The agent's own writes (RecentWrites) are ignored, so publishing never triggers a rescan.
    """

    def __init__(self, cfg: Config, queue: Queue, recent_writes: RecentWrites) -> None:
        self.cfg, self.queue, self.recent_writes = cfg, queue, recent_writes
        self.running: list[LibraryWatcher] = []

    @property
    def count(self) -> int:
        """How many libraries are watched right now (for /api/health)."""
        return sum(w.count for w in self.running)

    def _on_change(self, root: Path) -> OnChange:
        """A settled folder change becomes a scan of that folder (the root: the whole library)."""
        top = os.path.abspath(root)

        async def changed(library: str, folder: Path) -> None:
            local = os.fspath(folder)  # the watcher reports absolute folders under its absolute root
            target = None if local == top else local
            job = await enqueue_scan(self.queue, library, target, source="watcher", priority=Priority.LOW)
            log.info("library %s: %s changed, scan job %d", library, target or "root", job.id)

        return changed

    async def _overflowed(self, library: str) -> None:
        """Lost inotify events mean a full (incremental) scan of the library."""
        job = await enqueue_scan(self.queue, library, None, source="watcher", priority=Priority.LOW)
        log.info("library %s: rescanning after lost folder events, job %d", library, job.id)

    async def start(self) -> None:
        """Start a watcher for every library whose `watch` is not off."""
        await self.stop()
        loop = asyncio.get_running_loop()
        for lib in self.cfg.libraries:
            if lib.watch == "off":
                continue
            watcher = LibraryWatcher(
                {lib.name: lib.path},
                self._on_change(lib.path),
                loop,
                quiet_period=self.cfg.watcher.quiet_seconds,
                mode="poll" if lib.watch == "poll" else "auto",
                on_overflow=self._overflowed,
                ignore=self.recent_writes.contains,
                poll_interval=self.cfg.watcher.poll_interval,
            )
            await watcher.start()
            self.running.append(watcher)

    async def stop(self) -> None:
        """Stop every watcher."""
        while self.running:
            await self.running.pop().stop()
