"""`metarr-agent scan [LIBRARY] [--wait]`: queue a scan for the running agent, or run it here with a progress bar.

Without --wait the scan is queued in the database of the agent that holds data_dir's lock; with no
agent running it is refused (exit 1) and nothing is queued. The progress bar is drawn only on a terminal.
"""

from __future__ import annotations

import argparse
import asyncio
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
from agent.store import Database

EXIT_OK, EXIT_USER = 0, 1
BAR_WIDTH = 24


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

    def __call__(self, type_: str, data: dict[str, Any]) -> None:
        """Redraw the line for a scan:progress event; other events are ignored."""
        if type_ != "scan:progress":
            return
        seen, total = int(data.get("seen") or 0), data.get("total")
        if total:
            filled = int(BAR_WIDTH * min(1.0, seen / total))
            text = f"{data.get('library')}: [{'#' * filled}{'.' * (BAR_WIDTH - filled)}] {seen}/{total}"
        else:
            text = f"{data.get('library')}: {seen} seen"
        self.stream.write("\r" + text.ljust(60))
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

    db = Database(cfg.data_dir / "metarr.sqlite")
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


async def _run_here(cfg: Config, libs: list[LibraryConfig], stream: TextIO) -> list[tuple[str, Any]]:
    """Open the agent here (no server, no watchers), queue the scans and run the queue until idle."""
    line = ProgressLine(stream)
    events = Events()
    if _is_terminal(stream):  # a redrawn line is for a person; a pipe or a log file gets the summary only
        events.subscribe(line)
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
            await services.queue.run_until_idle()
            line.end()
            return [(name, await services.queue.get(job_id)) for name, job_id in jobs]
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


def summary(name: str, result: dict[str, Any]) -> str:
    """One line per library: added, updated, unchanged, missing (and NFO errors)."""
    text = (
        f"{name}: {result.get('added', 0)} added, {result.get('updated', 0)} updated, "
        f"{result.get('unchanged', 0)} unchanged, {result.get('missing', 0)} missing"
    )
    errors = result.get("errors") or []
    return text + (f", {len(errors)} NFO error(s)" if errors else "")


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
    for name, job in finished:
        if job.status == Status.COMPLETED:
            print(summary(name, job.result or {}))
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
