"""What the running agent is made of: one frozen, typed record built by `agent.root.open_agent`.

Web routes read it from the app (`agent.web.keys.SERVICES`); job handlers get it when `agent.root`
registers them. Domain modules never import this module: they take the parts they need.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import aiohttp

from agent.cache import AssetCache
from agent.clock import Clock
from agent.config import Config
from agent.events import Events
from agent.fsutil import RecentWrites
from agent.health import HealthWarnings
from agent.library.watcher import LibraryWatchers
from agent.players.links import PlayerLinks
from agent.players.registry import PlayerRegistry
from agent.providers.configured import Providers
from agent.publish import Publisher
from agent.queue import Queue
from agent.schedule import Maintenance
from agent.store import Database
from agent.streams import StreamProber


@dataclass(frozen=True, kw_only=True)
class Services:
    """Every long-lived part of one agent, built eagerly in one place and closed in reverse order."""

    cfg: Config
    clock: Clock
    version: str
    api_key: str
    events: Events
    warnings: HealthWarnings
    db: Database
    queue: Queue
    http: aiohttp.ClientSession
    recent_writes: RecentWrites
    cache: AssetCache
    publisher: Publisher
    providers: Providers
    players: PlayerRegistry
    player_links: PlayerLinks
    watchers: LibraryWatchers
    maintenance: Maintenance
    prober: StreamProber  # ffprobe's stream details of media files, cached by file signature

    def emit(self, type_: str, data: dict[str, Any]) -> None:
        """Broadcast an event on /ws and to in-process listeners."""
        self.events.emit(type_, data)
