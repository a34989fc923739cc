"""The composition root: `open_agent` builds every part of the agent from the config, in one place, and
closes them in reverse order. Read top to bottom, it is the answer to "what is the agent made of?"."""

from __future__ import annotations

import contextlib
import logging
import os
import secrets as pysecrets
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp

from agent import __version__
from agent.cache import AssetCache
from agent.clock import Clock
from agent.config import Config
from agent.config_owner import mirror_config
from agent.events import Events
from agent.fleet import EventRelay
from agent.fsutil import RecentWrites
from agent.health import HealthWarnings
from agent.jobs import register_all
from agent.library.watcher import LibraryWatchers
from agent.players.links import PlayerLinks
from agent.players.registry import build_registry
from agent.probe import OFF, ffprobe_status, find_ffprobe
from agent.providers.configured import build_providers
from agent.publish import Publisher
from agent.queue import Queue
from agent.schedule import Maintenance
from agent.services import Services
from agent.store import Database, agents, open_database
from agent.store.owners import ANYWHERE
from agent.streams import StreamProber

log = logging.getLogger("agent")
DATABASE_DISK_FULL = "database_disk_full"  # the /api/health warning code while writes fail for a full disk
HTTP_TIMEOUT = aiohttp.ClientTimeout(total=30, connect=10)


def api_key_file(cfg: Config) -> Path:
    """Where a generated key is kept."""
    return cfg.data_dir / "api_key"


def resolve_api_key(cfg: Config) -> tuple[str, bool]:
    """The key from config, else from data_dir/api_key, else a new one saved with mode 0600; (key, generated)."""
    if cfg.server.api_key:
        return cfg.server.api_key, False
    path = api_key_file(cfg)
    if path.exists():
        key = path.read_text(encoding="utf-8").strip()
        if key:
            return key, False
    cfg.data_dir.mkdir(parents=True, exist_ok=True)
    key = pysecrets.token_hex(16)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(key + "\n")
    os.chmod(path, 0o600)
    return key, True


def _full_disk_warning(warnings: HealthWarnings, db: Database) -> None:
    """Raise (message) or clear (None) the database_disk_full warning while writes fail for a full disk."""

    def on_full(message: str | None) -> None:
        if message is None:
            warnings.clear(DATABASE_DISK_FULL, str(db.path))
        else:
            warnings.raise_warning(DATABASE_DISK_FULL, message, str(db.path))

    db.on_full = on_full


@contextlib.asynccontextmanager
async def open_agent(cfg: Config, clock: Clock | None = None, *, api_key: str | None = None,
                     events: Events | None = None, start_workers: bool = True,
                     background: bool = True) -> AsyncIterator[Services]:
    """Build, open and start the agent; yield its Services; stop and close everything in reverse.

    `start_workers=False` leaves the queue to `run_until_idle()` (tests, CLI); `background=False`
    starts no watchers, player links or maintenance schedule. A failure part-way closes what opened.
    """
    clock = clock or Clock()
    events = events or Events()
    warnings = HealthWarnings()
    async with contextlib.AsyncExitStack() as stack:
        cfg.data_dir.mkdir(parents=True, exist_ok=True)  # the cache and the key live there whatever the store
        db = open_database(cfg.store_target)
        _full_disk_warning(warnings, db)
        await db.open()
        stack.push_async_callback(db.close)
        await db.write(mirror_config, cfg, clock.now())
        await db.write(agents.register, cfg.agent.name, [lib.name for lib in cfg.libraries],
                       [p.name for p in cfg.players], __version__, clock.now(), not cfg.shared_store)
        stack.push_async_callback(_say_stopped, db, cfg.agent.name, clock)
        if cfg.shared_store:
            relay = EventRelay(db, events, cfg.agent.name)
            relay.start()
            stack.push_async_callback(relay.stop)
        # on a shared store, an agent without players leaves player jobs to the agents that have them
        queue = Queue(db, clock, emit=events.emit, workers=cfg.jobs.workers, limits=cfg.jobs.limits,
                      timeout=cfg.jobs.timeout_seconds, max_retries=cfg.jobs.max_retries,
                      grace=cfg.jobs.grace_seconds, prune_after=cfg.jobs.prune_completed_days * 86400,
                      agent=cfg.agent.name, cannot_run=ANYWHERE if cfg.shared_store and not cfg.players else (),
                      lease=cfg.jobs.lease_seconds)
        http = aiohttp.ClientSession(timeout=HTTP_TIMEOUT, headers={"User-Agent": f"metarr-agent/{__version__}"})
        stack.push_async_callback(http.close)
        recent_writes = RecentWrites(clock)
        cache = AssetCache(db, cfg.data_dir / "cache", session=http, clock=clock,
                           max_bytes=int(cfg.artwork.max_asset_mb * 1024 * 1024),
                           grace_seconds=cfg.artwork.gc_grace_days * 86400, baselines=cfg.data_dir / "published")
        providers = build_providers(cfg, db, clock, http)
        stack.push_async_callback(providers.close)
        players = build_registry(cfg.players, http, db, clock, events.emit)
        prober = StreamProber(db, clock, _ffprobe(cfg), cfg.probe.timeout_seconds,
                              [lib.path for lib in cfg.libraries])
        services = Services(
            cfg=cfg, clock=clock, version=__version__, api_key=api_key or "", events=events, warnings=warnings,
            db=db, queue=queue, http=http, recent_writes=recent_writes, cache=cache,
            publisher=Publisher(db, cache, clock, recent_writes, [str(lib.path) for lib in cfg.libraries],
                                umask=cfg.publish.umask),
            providers=providers, players=players, player_links=PlayerLinks(players, http),
            watchers=LibraryWatchers(cfg, queue, recent_writes), maintenance=Maintenance(cfg, db, queue, clock),
            prober=prober)
        register_all(services)
        if start_workers:
            await queue.start()
            stack.push_async_callback(queue.stop)
        if background:
            for part in (services.watchers, services.player_links, services.maintenance):
                stack.push_async_callback(_stop, part)
                await part.start()
        yield services


def _ffprobe(cfg: Config) -> str | None:
    """The ffprobe stream details come from, or None; a missing one is said once, here, at start."""
    found = find_ffprobe(cfg.probe.ffprobe)
    if found is None:
        (log.info if cfg.probe.ffprobe == OFF else log.warning)(ffprobe_status(cfg.probe.ffprobe, None))
    return found


async def _say_stopped(db: Database, name: str, clock: Clock) -> None:
    """Record a clean stop in the agents table (a failure is logged: the store may be gone)."""
    try:
        await db.write(agents.stopped, name, clock.now())
    except Exception as exc:
        log.warning("could not record this agent's stop: %s", exc)


async def _stop(part: LibraryWatchers | PlayerLinks | Maintenance) -> None:
    """Stop one background part; a failure is logged so the others still stop."""
    try:
        await part.stop()
    except Exception:  # one failing must not keep the others running
        log.exception("stopping %s failed", type(part).__name__)
