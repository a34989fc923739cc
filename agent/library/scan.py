"""The library scan: a worker thread walks a batch, the writer thread stores it, in turn.

Movies live in movies.py, series in series.py, what they share in scanner.py; this module queues
scans and runs one end to end, and re-exports the request and report types.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import gc
import logging
import os
import sqlite3
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from agent.clock import Clock
from agent.errors import PathError
from agent.events import Emit
from agent.health import LIBRARY_ROOT_MISSING, HealthWarnings
from agent.library.movies import MovieScanner
from agent.library.naming import is_junk
from agent.library.scanner import Scanner, ScanReport, ScanRequest
from agent.library.series import SeriesScanner
from agent.library.walk_movies import discover_movies
from agent.library.walk_series import discover_series
from agent.queue import Queue
from agent.queue.model import Job, Priority
from agent.store import Database, libraries

__all__ = [
    "BATCH",
    "ScanParts",
    "ScanReport",
    "ScanRequest",
    "check_root",
    "enqueue_scan",
    "root_state",
    "run_scan",
    "scan_keys",
    "walk_batches",
]

log = logging.getLogger(__name__)

BATCH: Final = 2000  # items per database write: fewer commits and thread hops (250 cost 0.36 s of COMMITs)
PROGRESS_EVERY: Final = 0.1  # seconds between scan:progress events

Progress = Callable[[int, int | None], Awaitable[None]]


@dataclass(frozen=True, kw_only=True)
class ScanParts:
    """What a scan works with: the store, the queue its enrich jobs join, clock, health warnings, events."""

    db: Database
    queue: Queue
    clock: Clock
    warnings: HealthWarnings
    emit: Emit
    missing_grace_days: float


def scan_keys(library: str, folder: str | None) -> dict[str, str]:
    """The dedupe and lock keys of a scan job (contracts: scan)."""
    return {"dedupe_key": f"scan:{library}:{folder or ''}", "lock_key": f"scan:{library}"}


async def enqueue_scan(
    queue: Queue,
    library: str,
    folder: str | None = None,
    *,
    source: str = "user",
    priority: int = Priority.LOW,
    **extra: Any,
) -> Job:
    """Queue a scan of a library (or one folder of it) with the contract's keys."""
    payload: dict[str, Any] = {"library": library, "source": source, **extra}
    if folder:
        payload["folder"] = folder
    return await queue.enqueue("scan", payload, priority=priority, **scan_keys(library, folder))


def walk_batches(
    candidates: Iterator[Any], prepare: Callable[[Any], Any], size: int, weight: Callable[[Any], int]
) -> tuple[list[Any], int, bool]:
    """Walk until a batch of `size` items is full (runs in a worker thread).

    Returns (prepared candidates for the writer, candidates walked, whether the walk is finished).
    `prepare` returns None for an unchanged item it already counted: the writer never sees those.
    """
    batch: list[Any] = []
    total = walked = 0
    for cand in candidates:
        walked += 1
        prepared = prepare(cand)
        if prepared is not None:
            batch.append(prepared)
        total += weight(cand)
        if total >= size:
            return batch, walked, False
    return batch, walked, True


_frozen = {"scans": 0}  # scans running with the heap frozen (the event loop runs them, so no lock)


@contextmanager
def heap_frozen() -> Iterator[None]:
    """While scans run, the cyclic GC leaves older objects alone (gc.freeze); the last one unfreezes.

    A scan allocates hundreds of thousands of short-lived objects, and every full collection would
    walk the whole server heap again: about half of the scan's GC time in bench/scan_bench.py. Frozen
    objects are only exempt from collection until the last running scan ends.
    """
    _frozen["scans"] += 1
    gc.freeze()
    try:
        yield
    finally:
        _frozen["scans"] -= 1
        if not _frozen["scans"]:
            gc.unfreeze()


async def run_scan(
    parts: ScanParts, req: ScanRequest, job_id: int | None = None, progress: Progress | None = None
) -> ScanReport:
    """Scan one library (or one folder of it): walk in a thread, write rows and enrich jobs in batches."""
    with heap_frozen():
        return await _run_scan(parts, req, job_id, progress)


async def _run_scan(parts: ScanParts, req: ScanRequest, job_id: int | None, progress: Progress | None) -> ScanReport:
    """run_scan's body."""
    now = parts.clock.now()
    grace = parts.missing_grace_days * 86400
    req.library_id = await parts.db.write(libraries.library_id, req.library, req.kind, str(req.root), now)
    await check_root(parts, req)
    scanner: Scanner
    if req.kind == "movies":
        movies = MovieScanner(req, now, grace, parts.queue.max_retries)
        scanner = movies
        ordinary = req.file is None and not movies.forced  # a webhook or upgrade scan looks at every movie
        candidates: Iterator[Any] = discover_movies(
            req.root, req.folder, movies.known if req.file is None else None, movies.stored if ordinary else None
        )
    else:
        shows = SeriesScanner(req, now, grace, parts.queue.max_retries)
        scanner = shows
        candidates = discover_series(req.root, req.folder, shows.known if req.file is None else None)
    scanner.fetch = _walk_reader(parts, asyncio.get_running_loop())
    total = await parts.db.read(scanner.load)
    gc.freeze()  # the library's rows stay for the whole scan: no collection needs to walk them
    last = 0.0
    done = False
    while not done:
        # Walk and writes take turns: overlapping them (a walk thread beside the writer thread) was
        # measured slower, as each stat() hands the GIL to the other thread and waits to get it back.
        batch, walked, done = await asyncio.to_thread(
            walk_batches, candidates, scanner.prepare, BATCH, scanner.weight
        )
        if batch:
            created = await parts.db.write(scanner.apply, batch)
            _announce(parts, created)
        scanner.report.seen += walked
        if time.monotonic() - last >= PROGRESS_EVERY:
            last = time.monotonic()
            await _progress(parts, req, scanner.report.seen, total, progress)
    await check_root(parts, req)  # unmounted during the walk: what it did not see is not gone
    created = await parts.db.write(scanner.finish, job_id)
    _announce(parts, created)
    _announce(parts, await parts.db.write(scanner.retry_artwork), "artwork")
    report = scanner.report
    report.errors.extend(scanner.check_file())
    await _progress(parts, req, report.seen, max(total or 0, report.seen), progress)
    if req.folder is not None or report.added + report.updated < 50:
        for entity, ids in (
            ("movie", report.movies),
            ("series", report.series),
            ("episode", report.episodes),
        ):
            for item_id in ids:
                parts.emit(f"{entity}:updated", {"id": item_id})
    return report


def root_state(root: Path) -> str | None:
    """Why a library root cannot be walked: "missing" (no folder there, or unreadable), "empty", or None.

    An unmounted mount point is usually an empty folder; OS litter (`.DS_Store`, `lost+found`)
    does not count as content. Blocking: run it in a thread.
    """
    try:
        with os.scandir(root) as entries:
            return None if any(not is_junk(e.name) for e in entries) else "empty"
    except OSError:
        return "missing"


async def check_root(parts: ScanParts, req: ScanRequest) -> None:
    """Refuse to scan a library whose root is gone, or empty while the store holds its items.

    A missing folder and a folder that lost its mount both look like a library whose every item
    was deleted; judging them so would mark everything missing and, after missing_grace_days,
    delete the records and their locks. The refusal is a PathError and a /api/health warning,
    cleared by the next scan that finds the root in place.
    """
    state = await asyncio.to_thread(root_state, req.root)
    held = await parts.db.read(libraries.items_held, req.library_id) if state == "empty" else 0
    if state == "missing" or held:
        reason = (
            "there is no readable folder at that path: mount it, or correct the library's path in the config"
            if state == "missing"
            else f"the folder is empty while the store holds {held} item(s) of library {req.library}: an unmounted"
            " drive? If the library really is empty now, remove it from the config"
        )
        message = f"library root {req.root} is missing or empty; nothing was marked missing ({reason})"
        parts.warnings.raise_warning(LIBRARY_ROOT_MISSING, message, subject=req.library)
        raise PathError(message, detail={"library": req.library, "root": str(req.root), "state": state})
    parts.warnings.clear(LIBRARY_ROOT_MISSING, subject=req.library)


def _walk_reader(
    parts: ScanParts, loop: asyncio.AbstractEventLoop
) -> Callable[[Callable[[sqlite3.Connection], Any]], Any]:
    """A blocking read for the walk thread, run by the event loop's reader (never beside the scan's writes).

    If the agent stops while the walk thread waits, the wait ends with an error instead of holding
    the thread (and the process's exit) forever.
    """

    def fetch(read: Callable[[sqlite3.Connection], Any]) -> Any:
        """Run `read` on the database's reader and wait for its result."""
        coro = parts.db.read(read)
        future = asyncio.run_coroutine_threadsafe(coro, loop)
        while True:
            try:
                return future.result(timeout=1.0)
            except concurrent.futures.TimeoutError:
                if loop.is_closed() or not loop.is_running():
                    future.cancel()
                    coro.close()  # the loop will not run it
                    raise RuntimeError("the agent stopped while the scan was reading") from None

    return fetch


async def _progress(
    parts: ScanParts, req: ScanRequest, seen: int, total: int | None, progress: Progress | None
) -> None:
    """Emit scan:progress and pass the figures to the job's progress reporter."""
    data: dict[str, Any] = {"library": req.library, "seen": seen}
    if total and total >= seen:
        data["total"] = total
    parts.emit("scan:progress", data)
    if progress is not None:
        await progress(seen, data.get("total"))


def _announce(parts: ScanParts, job_ids: list[int], type_: str = "enrich") -> None:
    """Tell /ws about jobs a batch queued."""
    for job_id in job_ids:
        parts.queue.emit("job:queued", {"job_id": job_id, "type": type_})

