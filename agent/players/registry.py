"""The configured players as live clients: groups, path mapping, connection state and what is playing."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

import aiohttp

from agent.clock import Clock
from agent.config import PlayerConfig
from agent.errors import PathError
from agent.events import Emit
from agent.paths import PathMapper
from agent.players import PlayerError, PlayerUnreachable
from agent.players.group import PlayerGroup, build_groups
from agent.players.jellyfin import JellyfinClient
from agent.players.kodi import KodiClient
from agent.players.plex import PlexClient
from agent.store import Database
from agent.store import players as players_store

if TYPE_CHECKING:
    from agent.players.kodi_events import KodiEventListener

log = logging.getLogger(__name__)

STATES: Final = ("connected", "unreachable", "unknown")
ACTIVITY: Final = ("idle", "playing", "paused")


@dataclass
class Player:
    """One configured player: its config, client, path mapper and (Kodi) notification listener."""

    cfg: PlayerConfig
    client: KodiClient | JellyfinClient | PlexClient
    mapper: PathMapper
    listener: KodiEventListener | None = None
    activity: dict[str, Any] = field(default_factory=lambda: {"state": "idle"})

    @property
    def name(self) -> str:
        """The player's configured name."""
        return self.cfg.name

    @property
    def is_kodi(self) -> bool:
        """Whether this is a Kodi player."""
        return self.cfg.type == "kodi"

    @property
    def kodi(self) -> KodiClient:
        """The Kodi client (only for Kodi players)."""
        assert isinstance(self.client, KodiClient)
        return self.client

    @property
    def is_plex(self) -> bool:
        """Whether this is a Plex Media Server."""
        return self.cfg.type == "plex"

    @property
    def plex(self) -> PlexClient:
        """The Plex client (only for Plex players)."""
        assert isinstance(self.client, PlexClient)
        return self.client

    @property
    def jellyfin(self) -> JellyfinClient:
        """The Jellyfin client (only for Jellyfin players)."""
        assert isinstance(self.client, JellyfinClient)
        return self.client

    def to_player(self, local_path: str) -> str:
        """Our path as this player sees it; PathError names the player when no mapping covers it."""
        try:
            return self.mapper.to_remote(local_path)
        except PathError as exc:
            raise PathError(f"player '{self.name}': {exc.message}", detail=exc.detail) from None

    def to_local(self, player_path: str) -> str:
        """The player's path as ours, or the player's own spelling when no mapping covers it."""
        try:
            return self.mapper.to_local(player_path)
        except PathError:
            return player_path


class PlayerRegistry:
    """Every configured player of one agent, grouped, with state kept in `media_players`."""

    def __init__(self, players: list[Player], db: Database, clock: Clock, emit: Emit) -> None:
        self.db, self.clock, self.emit = db, clock, emit
        self.players = {p.name: p for p in players}
        self.groups: list[PlayerGroup[Player]] = build_groups((p.cfg.group or None, p) for p in players)

    def get(self, name: str) -> Player | None:
        """The player with this name, or None when it is no longer configured."""
        return self.players.get(name)

    def kodis(self) -> list[Player]:
        """Every Kodi player, in config order."""
        return [p for p in self.players.values() if p.is_kodi]

    async def mark(self, player: Player, error: BaseException | None = None) -> None:
        """Record a call's outcome: connected on success, unreachable on a connection failure."""
        now = self.clock.now()
        if error is None:
            await self.db.write(players_store.mark_connected, player.name, now)
        elif isinstance(error, PlayerUnreachable):
            await self.db.write(players_store.mark_state, player.name, "unreachable", _message(error))
        elif isinstance(error, PlayerError):
            # It answered, but refused the request or our credentials: reachable, with an error to show.
            await self.db.write(players_store.mark_connected, player.name, now, _message(error))

    async def set_activity(self, player: Player, activity: dict[str, Any], force: bool = False) -> None:
        """Store what a player is doing and emit `player:activity` when it changed (or when forced)."""
        state = activity.get("state", "idle")
        if state not in ACTIVITY:
            raise ValueError(f"unknown player activity state {state!r}")
        changed = _key(activity) != _key(player.activity)
        player.activity = activity
        now_playing = None if state == "idle" else {**activity, "updated_at": self.clock.now()}
        await self.db.write(players_store.store_now_playing, player.name, now_playing)
        if changed or force:
            event = {"player": player.name, "state": state}
            for key in ("file", "position", "total", "title"):
                if activity.get(key) not in (None, ""):
                    event[key] = activity[key]
            self.emit("player:activity", event)

    async def refresh_kodi_activity(self, player: Player, force: bool = False) -> dict[str, Any]:
        """Ask a Kodi what it plays now, record it, and return the activity dict."""
        try:
            active = await player.kodi.active_video_player()
        except PlayerError as exc:
            await self.mark(player, exc)
            raise
        await self.mark(player)
        activity = kodi_activity(player, active)
        await self.set_activity(player, activity, force=force)
        return activity

    async def refresh_jellyfin_activity(self, player: Player) -> dict[str, Any]:
        """Ask Jellyfin (or Plex) what its sessions play, record the first one, and return the activity dict."""
        client = player.plex if player.is_plex else player.jellyfin
        try:
            sessions = await client.sessions()
        except PlayerError as exc:
            await self.mark(player, exc)
            raise
        await self.mark(player)
        activity: dict[str, Any] = {"state": "idle"}
        if sessions:
            s = sessions[0]
            activity = {
                "state": "paused" if s["paused"] else "playing",
                "file": player.to_local(s["path"] or ""),
                "player_file": s["path"],
                "title": s["name"],
                "position": round(s["position"], 3),
                "total": round(s["runtime"], 3),
                "sessions": len(sessions),
            }
        await self.set_activity(player, activity)
        return activity


def kodi_activity(player: Player, active: dict[str, Any] | None) -> dict[str, Any]:
    """Turn KodiClient.active_video_player() into a player:activity dict (paths mapped back to ours)."""
    if not active:
        return {"state": "idle"}
    return {
        "state": active["state"],
        "file": player.to_local(active["file"]) if active["file"] else "",
        "player_file": active["file"],
        "title": active.get("title") or "",
        "position": round(float(active["position"]), 3),
        "total": round(float(active["total"]), 3),
    }


def _key(activity: dict[str, Any]) -> tuple[Any, ...]:
    """What counts as a change worth an event: state and file (not the ticking position)."""
    return activity.get("state"), activity.get("player_file")


def _message(error: BaseException) -> str:
    """An error's message for the last_error column."""
    return (getattr(error, "message", None) or str(error) or type(error).__name__)[:1000]


def build_player(cfg: PlayerConfig, http: aiohttp.ClientSession) -> Player:
    """One client for one configured player, using the agent's shared HTTP session."""
    mapper = PathMapper(
        [{"remote": m.remote, "local": m.local} for m in cfg.path_mappings], name=f"player '{cfg.name}'"
    )
    client: KodiClient | JellyfinClient | PlexClient
    if cfg.type == "plex":
        client = PlexClient(cfg.name, cfg.url, cfg.token, session=http)
    elif cfg.type == "kodi":
        client = KodiClient(
            cfg.name,
            cfg.url if cfg.url.endswith("/jsonrpc") else cfg.url + "/jsonrpc",
            cfg.username or None,
            cfg.password,
            session=http,
        )
    else:
        client = JellyfinClient(cfg.name, cfg.url, cfg.api_key, session=http)
    return Player(cfg=cfg, client=client, mapper=mapper)


def build_registry(players: list[PlayerConfig], http: aiohttp.ClientSession, db: Database, clock: Clock,
                   emit: Emit) -> PlayerRegistry:
    """A client per configured player, in config order (no connection is made here)."""
    return PlayerRegistry([build_player(p, http) for p in players], db, clock, emit)
