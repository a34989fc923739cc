"""Player links: a Kodi notification listener (with polling fallback) per Kodi, a session poller per Jellyfin."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any, Final

import aiohttp

from agent.players import PlayerError
from agent.players.kodi_events import KodiEventListener, kodi_ws_url
from agent.players.registry import Player, PlayerRegistry

log = logging.getLogger(__name__)

# Seconds between Player.GetActivePlayers polls while Kodi's notification socket is closed.
KODI_POLL_SECONDS: Final = 5.0
# Seconds between /Sessions polls of a Jellyfin server.
JELLYFIN_POLL_SECONDS: Final = 15.0
# Kodi notifications that change what a player shows as playing.
PLAYER_EVENTS: Final = frozenset(
    {"Player.OnPlay", "Player.OnAVStart", "Player.OnPause", "Player.OnResume", "Player.OnSpeedChanged"}
)


class PlayerLinks:
    """Runs the listeners and pollers of one registry until stopped (poll intervals default to the module's)."""

    def __init__(self, registry: PlayerRegistry, http: aiohttp.ClientSession, kodi_poll: float | None = None,
                 jellyfin_poll: float | None = None) -> None:
        self.registry = registry
        self.http = http
        self.kodi_poll = kodi_poll
        self.jellyfin_poll = jellyfin_poll
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        """Start a listener (plus a connect watcher) per Kodi and a poller per Jellyfin."""
        await self.stop()
        for player in self.registry.players.values():
            if player.is_kodi:
                player.listener = KodiEventListener(
                    player.name,
                    kodi_ws_url(player.cfg.url, player.cfg.ws_port),
                    self.http,
                    on_event=self._handler(player),
                    poll=self._poller(player),
                    poll_interval=KODI_POLL_SECONDS if self.kodi_poll is None else self.kodi_poll,
                )
                player.listener.start()
                self._spawn(self._watch_socket(player), f"kodi-state-{player.name}")
            else:
                self._spawn(self._poll_jellyfin(player), f"jellyfin-poll-{player.name}")

    async def stop(self) -> None:
        """Stop every listener and poller."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks.clear()
        for player in self.registry.players.values():
            if player.listener is not None:
                await player.listener.stop()
                player.listener = None

    def _spawn(self, coro: Any, name: str) -> None:
        """Keep a reference to a background task."""
        self._tasks.append(asyncio.create_task(coro, name=name))

    def _handler(self, player: Player) -> Any:
        """The on_event callback of one Kodi's listener."""

        async def on_event(method: str, params: dict[str, Any]) -> None:
            """Player.* notifications update what is playing."""
            if method == "Player.OnStop":
                await self.registry.mark(player)
                await self.registry.set_activity(player, {"state": "idle"}, force=True)
            elif method in PLAYER_EVENTS:
                with contextlib.suppress(PlayerError):
                    await self.registry.refresh_kodi_activity(player, force=method != "Player.OnSpeedChanged")

        return on_event

    def _poller(self, player: Player) -> Any:
        """The poll callback used while one Kodi's notification socket is closed."""

        async def poll() -> None:
            """Ask Kodi what plays; a failure only updates the player's state."""
            try:
                await self.registry.refresh_kodi_activity(player)
            except PlayerError as exc:
                log.debug("kodi %s: poll failed: %s", player.name, exc)

        return poll

    async def _watch_socket(self, player: Player) -> None:
        """Each time the notification socket opens, mark the player connected and read what it plays."""
        assert player.listener is not None
        while True:
            await player.listener.wait_connected()
            with contextlib.suppress(PlayerError):
                await self.registry.refresh_kodi_activity(player)
            await player.listener.wait_disconnected()

    async def _poll_jellyfin(self, player: Player) -> None:
        """Poll one Jellyfin's (or Plex's) sessions forever."""
        while True:
            try:
                await self.registry.refresh_jellyfin_activity(player)
            except PlayerError as exc:
                log.debug("jellyfin %s: poll failed: %s", player.name, exc)
            await asyncio.sleep(JELLYFIN_POLL_SECONDS if self.jellyfin_poll is None else self.jellyfin_poll)
