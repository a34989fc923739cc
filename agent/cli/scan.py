"""`metarr-agent scan [LIBRARY] [--wait]`: queue a scan for the running agent, or run it here with a progress bar.

Without --wait the scan is queued in the database of the agent that holds data_dir's lock; with no
agent running it is refused (exit 1) and nothing is queued. The progress bar is drawn only on a terminal.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

from agent.config import Config, LibraryConfig, default_config_path, load_config
from agent.errors import UserError
from agent.events import Events
from agent.library.scan import scan_keys
from agent.process import DataDirLock, lock_holder
from agent.queue import Queue
from agent.queue.model import Priority, Status
from agent.root import open_agent
from agent.store import Database, api, open_database

EXIT_OK, EXIT_USER = 0, 1
BAR_WIDTH = 24
PUBLISHED_EVERY = 0.5  # seconds between looks at items published of items found while the queue runs


def pick_libraries(cfg: Config, name: str | None) -> list[LibraryConfig]:
    """The named library, or every library; an unknown name is a UserError listing the known ones."""
    if not cfg.libraries:
        raise UserError("no libraries are configured (add one under `libraries:` in the config)")
    if name is None:
        return list(cfg.libraries)
    lib = cfg.library(name)
    if lib is None:
        raise UserError(f"unknown library {name!r} (libraries: {', '.join(lb.name for lb in cfg.libraries)})")
    return [lib]


class ProgressLine:
    """One updating stderr line fed by scan:progress events."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.shown = False
        self.scanned: dict[str, str] = {}  # library -> its walk's bar
        self.published: dict[str, str] = {}  # library -> "412 of 1000 published"

    def __call__(self, type_: str, data: dict[str, Any]) -> None:
        """Redraw the line for a scan:progress event; other events are ignored."""
        if type_ != "scan:progress":
            return
        seen, total = int(data.get("seen") or 0), data.get("total")
        if total:
            filled = int(BAR_WIDTH * min(1.0, seen / total))
            text = f"[{'#' * filled}{'.' * (BAR_WIDTH - filled)}] {seen}/{total}"
        else:
            text = f"{seen} seen"
        self.scanned[str(data.get("library"))] = text
        self.draw(str(data.get("library")))

    def progress(self, library: str, found: int, published: int) -> None:
        """Redraw the line with a library's items published of items found."""
        text = f"{published} of {found} published"
        if self.published.get(library) != text:
            self.published[library] = text
            self.draw(library)

    def draw(self, library: str) -> None:
        """Write one library's line over the last one."""
        parts = [p for p in (self.scanned.get(library), self.published.get(library)) if p]
        self.stream.write("\r" + f"{library}: {' · '.join(parts)}".ljust(72))
        self.stream.flush()
        self.shown = True

    def end(self) -> None:
        """Finish the line."""
        if self.shown:
            self.stream.write("\n")
            self.stream.flush()
            self.shown = False


def _is_terminal(stream: TextIO) -> bool:
    """Whether the stream is a terminal (progress frames are drawn only there)."""
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # a closed or unusual stream
        return False


async def _enqueue_only(cfg: Config, libs: list[LibraryConfig]) -> list[tuple[str, int]]:
    """Put scan jobs in the database for the running agent to pick up (its idle poll finds them)."""

    db = open_database(cfg.store_target)
    await db.open()
    try:
        queue = Queue(db, max_retries=cfg.jobs.max_retries)
        out = []
        for lib in libs:
            job = await queue.enqueue(
                "scan",
                {"library": lib.name, "source": "cli"},
                priority=Priority.HIGH,
                **scan_keys(lib.name, None),
            )
            out.append((lib.name, job.id))
        return out
    finally:
        await db.close()


async def _published(db: Database, names: set[str]) -> dict[str, dict[str, int]]:
    """Items found and items published (with an NFO the agent wrote) of the named libraries."""
    return {r["name"]: api.library_progress(r) for r in await db.read(api.libraries) if r["name"] in names}


async def _run_here(cfg: Config, libs: list[LibraryConfig], stream: TextIO
                    ) -> list[tuple[str, Any, dict[str, int]]]:
    """Open the agent here (no server, no watchers), queue the scans and run the queue until idle.

    Returns per library its scan job and {found, published} once the queue is idle.
    """
    line = ProgressLine(stream)
    events = Events()
    terminal = _is_terminal(stream)  # a redrawn line is for a person; a pipe or a log file gets the summary only
    if terminal:
        events.subscribe(line)
    names = {lib.name for lib in libs}
    try:
        async with open_agent(cfg, events=events, start_workers=False, background=False) as services:
            jobs = []
            for lib in libs:
                job = await services.queue.enqueue(
                    "scan",
                    {"library": lib.name, "source": "cli"},
                    priority=Priority.HIGH,
                    **scan_keys(lib.name, None),
                )
                jobs.append((lib.name, job.id))

            async def watch() -> None:
                """Draw items published of items found while lookups and publishes run."""
                while True:
                    await asyncio.sleep(PUBLISHED_EVERY)
                    for name, figures in (await _published(services.db, names)).items():
                        line.progress(name, figures["found"], figures["published"])

            watcher = asyncio.create_task(watch()) if terminal else None
            try:
                await services.queue.run_until_idle()
            finally:
                if watcher is not None:
                    watcher.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await watcher
            line.end()
            published = await _published(services.db, names)
            empty = {"found": 0, "published": 0}
            return [(name, await services.queue.get(job_id), published.get(name, empty)) for name, job_id in jobs]
    finally:
        line.end()


def not_running(cfg: Config, config_arg: str | None, library: str | None) -> str:
    """Why a scan without --wait is refused when no agent runs on the config's data_dir, and what to do.

    Nothing is queued then: a job in the database of a stopped agent would only run whenever that
    agent next starts, while the user, told "queued", waits for a scan that is not happening.
    """
    config = f" --config {config_arg}" if config_arg else ""
    lib = f" {library}" if library else ""
    return (f"the agent is not running (no agent holds {cfg.data_dir / 'agent.lock'}); nothing was queued\n"
            f"start it with `metarr-agent serve{config}` (from a clone: `make run`) and run this again, "
            f"or scan here without it: `metarr-agent scan{lib} --wait{config}`")


def summary(name: str, result: dict[str, Any], progress: dict[str, int] | None = None) -> str:
    """One line per library: added, updated, unchanged, missing (and NFO errors; items published of found)."""
    text = (
        f"{name}: {result.get('added', 0)} added, {result.get('updated', 0)} updated, "
        f"{result.get('unchanged', 0)} unchanged, {result.get('missing', 0)} missing"
    )
    errors = result.get("errors") or []
    text += f", {len(errors)} NFO error(s)" if errors else ""
    if progress is not None:
        text += f"; {progress['published']} of {progress['found']} items published"
    return text


def cmd_scan(args: argparse.Namespace) -> int:
    """Queue a scan for the running agent (refused when none runs), or with --wait run it here and summarise."""
    cfg = load_config(Path(args.config) if args.config else default_config_path())
    libs = pick_libraries(cfg, args.library)
    if not args.wait:
        holder = lock_holder(cfg.data_dir)
        if holder is None:
            raise UserError(not_running(cfg, args.config, args.library))
        who = f"PID {holder}" if holder else "the running agent"
        for name, job_id in asyncio.run(_enqueue_only(cfg, libs)):
            print(f"queued scan of {name}: job {job_id} (the agent, {who}, runs it; "
                  f"follow it with `metarr-agent jobs --id {job_id}` or on the dashboard)")
        return EXIT_OK
    with DataDirLock(cfg.data_dir, "run `scan --wait` here (without --wait the running agent does the scan)"):
        finished = asyncio.run(_run_here(cfg, libs, sys.stderr))
    failed = []
    for name, job, progress in finished:
        if job.status == Status.COMPLETED:
            print(summary(name, job.result or {}, progress))
            for error in (job.result or {}).get("errors") or []:
                print(f"  {error}")
        else:
            failed.append(f"{name}: scan job {job.id} {job.status.value}: {job.error or 'not finished'}")
    if failed:
        raise UserError("; ".join(failed))
    return EXIT_OK


def add_commands(add: Callable[..., argparse.ArgumentParser]) -> None:
    """Register `scan` with the main parser."""
    p = add("scan", cmd_scan, "queue a scan for the running agent (exit 1 if none runs); "
                              "with --wait, run it here with a progress bar and print a summary")
    p.add_argument("library", nargs="?", metavar="LIBRARY", help="library name (default: every library)")
    p.add_argument("--wait", action="store_true", help="run the scan here and print a summary")
