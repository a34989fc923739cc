"""The composition root: builds the agent's parts from the config and wires job handlers to the queue."""

from __future__ import annotations

import logging
import os
import secrets as pysecrets
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp

from agent import __version__
from agent.clock import Clock
from agent.config import Config
from agent.health import warnings_of
from agent.queue import Queue
from agent.store import Database
from agent.web.hub import Hub

log = logging.getLogger("agent")
DATABASE_DISK_FULL = "database_disk_full"  # the /api/health warning code while writes fail for a full disk


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


class Agent:
    """Everything the running agent owns; web routes and jobs reach parts through it."""

    def __init__(self, cfg: Config, clock: Clock | None = None) -> None:
        self.cfg = cfg
        self.clock = clock or Clock()
        self.version = __version__
        self.db = Database(cfg.data_dir / "metarr.sqlite")
        self.db.on_full = self._database_full
        self.hub = Hub()
        self.queue = Queue(
            self.db, self.clock, emit=self.emit, workers=cfg.jobs.workers, limits=cfg.jobs.limits,
            timeout=cfg.jobs.timeout_seconds, max_retries=cfg.jobs.max_retries, grace=cfg.jobs.grace_seconds,
            prune_after=cfg.jobs.prune_completed_days * 86400)
        self.http: aiohttp.ClientSession | None = None
        self.api_key = ""
        self.watchers: list[Any] = []
        self.services: dict[str, Any] = {}
        self.listeners: list[Callable[[str, dict[str, Any]], None]] = []

    def emit(self, type_: str, data: dict[str, Any]) -> None:
        """Broadcast an event on /ws and to in-process listeners."""
        self.hub.broadcast(type_, data)
        for listener in list(self.listeners):
            listener(type_, data)

    def _database_full(self, message: str | None) -> None:
        """Raise (message) or clear (None) the database_disk_full warning on /api/health."""
        registry, subject = warnings_of(self), str(self.db.path)
        if message is None:
            registry.clear(DATABASE_DISK_FULL, subject)
        else:
            registry.raise_warning(DATABASE_DISK_FULL, message, subject)

    async def open_store(self) -> None:
        """Open the database and mirror the config's libraries, players and mappings into it.

        A failure after the open closes the database again: its threads would keep the process alive.
        """
        await self.db.open()
        try:
            await self.db.write(_sync_config, self.cfg, self.clock.now())
        except BaseException:
            await self.db.close()
            raise

    async def open_http(self) -> aiohttp.ClientSession:
        """The shared outbound HTTP session."""
        if self.http is None:
            self.http = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=30, connect=10),
                headers={"User-Agent": f"metarr-agent/{__version__}"})
        self.build_media_services()
        return self.http

    def build_media_services(self) -> None:
        """The artwork cache, the publisher and the registry of the agent's own writes."""
        from agent.cache import AssetCache
        from agent.fsutil import RecentWrites
        from agent.publish import Publisher

        if "cache" in self.services:
            return
        recent = RecentWrites(self.clock)
        cache = AssetCache(self.db, self.cfg.data_dir / "cache", session=self.http, clock=self.clock,
                           max_bytes=int(self.cfg.artwork.max_asset_mb * 1024 * 1024),
                           grace_seconds=self.cfg.artwork.gc_grace_days * 86400,
                           baselines=self.cfg.data_dir / "published")
        roots = [str(lib.path) for lib in self.cfg.libraries]
        self.services.update(recent_writes=recent, cache=cache,
                             publisher=Publisher(self.db, cache, self.clock, recent, roots,
                                                 umask=self.cfg.publish.umask))

    async def close_http(self) -> None:
        """Close the outbound session."""
        providers = self.services.pop("providers", None)
        if providers is not None:
            await providers.close()
        if self.http is not None:
            await self.http.close()
            self.http = None

    def register_jobs(self) -> None:
        """Wire every job handler to the queue."""
        from agent.jobs import register_all

        register_all(self)


def _sync_config(conn: sqlite3.Connection, cfg: Config, now: float) -> None:
    """Config is the source of truth for libraries, players, groups and mappings (see agent.config_owner)."""
    from agent.config_owner import check_owner, record_owner, rename_libraries

    check_owner(conn, cfg)  # before anything changes: another config's libraries are not ours to drop
    rename_libraries(conn, cfg)
    names = [lib.name for lib in cfg.libraries]
    for lib in cfg.libraries:
        conn.execute(
            "INSERT INTO libraries (name, kind, path, created_at) VALUES (?, ?, ?, ?)"
            " ON CONFLICT(name) DO UPDATE SET kind = excluded.kind, path = excluded.path",
            (lib.name, lib.kind, str(lib.path), now))
    if names:
        conn.execute(f"DELETE FROM libraries WHERE name NOT IN ({','.join('?' * len(names))})", names)
    else:
        conn.execute("DELETE FROM libraries")
    conn.execute("DELETE FROM path_mappings")
    for source, scfg in cfg.sources.items():
        for i, m in enumerate(scfg.path_mappings):
            conn.execute("INSERT INTO path_mappings (owner_kind, owner_name, position, remote, local)"
                         " VALUES ('source', ?, ?, ?, ?)", (source, i, m.remote, m.local))
    groups: dict[str, int] = {}
    for row in conn.execute("SELECT id, name FROM media_player_groups"):
        groups[row["name"]] = row["id"]
    keep = []
    for pos, p in enumerate(cfg.players):
        group = p.group or p.name
        if group not in groups:
            groups[group] = conn.execute("INSERT INTO media_player_groups (name) VALUES (?)", (group,)).lastrowid
        conn.execute(
            "INSERT INTO media_players (name, type, group_id, position, url) VALUES (?, ?, ?, ?, ?)"
            " ON CONFLICT(name) DO UPDATE SET type = excluded.type, group_id = excluded.group_id,"
            " position = excluded.position, url = excluded.url", (p.name, p.type, groups[group], pos, p.url))
        keep.append(p.name)
        for i, m in enumerate(p.path_mappings):
            conn.execute("INSERT INTO path_mappings (owner_kind, owner_name, position, remote, local)"
                         " VALUES ('player', ?, ?, ?, ?)", (p.name, i, m.remote, m.local))
    if keep:
        conn.execute(f"DELETE FROM media_players WHERE name NOT IN ({','.join('?' * len(keep))})", keep)
    else:
        conn.execute("DELETE FROM media_players")
    record_owner(cfg)
