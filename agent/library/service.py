"""The library service: one folder watcher per watched library, each change queued as a folder scan."""

from __future__ import annotations

import asyncio
import logging
import os
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from agent.fsutil import recent_writes
from agent.library.scan import enqueue_scan
from agent.library.watcher import LibraryWatcher, OnChange, OnOverflow
from agent.queue.model import Priority

if TYPE_CHECKING:
    from agent.service import Agent

log = logging.getLogger(__name__)

_WATCHERS: weakref.WeakKeyDictionary[Agent, list[LibraryWatcher]] = weakref.WeakKeyDictionary()


def _ignore(agent: Agent) -> Callable[[Path], bool]:
    """The publisher's recent-writes registry as the watcher's ignore callback."""
    registry = agent.services.get("recent_writes") or recent_writes
    return registry.contains


def _on_change(agent: Agent, root: Path) -> OnChange:
    """A settled folder change becomes a low-priority scan of that folder (the root: the whole library)."""

    top = os.path.abspath(root)

    async def changed(library: str, folder: Path) -> None:
        local = os.fspath(folder)  # the watcher reports absolute folders under its absolute root
        target = None if local == top else local
        job = await enqueue_scan(agent.queue, library, target, source="watcher", priority=Priority.LOW)
        log.info("library %s: %s changed, scan job %d", library, target or "root", job.id)

    return changed


def _on_overflow(agent: Agent) -> OnOverflow:
    """Lost inotify events mean a full (incremental) scan of the library."""

    async def overflowed(library: str) -> None:
        job = await enqueue_scan(agent.queue, library, None, source="watcher", priority=Priority.LOW)
        log.info("library %s: rescanning after lost folder events, job %d", library, job.id)

    return overflowed


async def start(agent: Agent) -> None:
    """Start a watcher for every library whose `watch` is not off; each counts in /api/health."""
    loop = asyncio.get_running_loop()
    started: list[LibraryWatcher] = []
    for lib in agent.cfg.libraries:
        if lib.watch == "off":
            continue
        watcher = LibraryWatcher(
            {lib.name: lib.path},
            _on_change(agent, lib.path),
            loop,
            quiet_period=agent.cfg.watcher.quiet_seconds,
            mode="poll" if lib.watch == "poll" else "auto",
            on_overflow=_on_overflow(agent),
            ignore=_ignore(agent),
            poll_interval=agent.cfg.watcher.poll_interval,
        )
        await watcher.start()
        started.append(watcher)
        agent.watchers.append(watcher)
    _WATCHERS[agent] = started


async def stop(agent: Agent) -> None:
    """Stop this service's watchers and take them out of the health count."""
    for watcher in _WATCHERS.pop(agent, []):
        await watcher.stop()
        if watcher in agent.watchers:
            agent.watchers.remove(watcher)
