"""Plex Media Server client: partial scans of one folder, watched state and view offset, what is playing.

Endpoints (Plex's documented web API, as python-plexapi calls them): GET /library/sections (each section's
Location paths), GET /library/sections/{id}/refresh?path= (scan one folder), GET /library/sections/{id}/all
?type=1|4 (items with Media/Part files), GET /:/scrobble and /:/progress (the token's user's watched state
and offset), GET /status/sessions. Plex answers JSON with `Accept: application/json`; the token goes in
the X-Plex-Token header. Offsets are milliseconds."""

from __future__ import annotations

import json
import logging
import urllib.parse
from typing import Any, Final

import aiohttp

from agent import __version__
from agent.errors import UserError
from agent.players import PlayerAuthError, PlayerRequestError, PlayerUnreachable

log = logging.getLogger(__name__)

IDENTIFIER: Final = "com.plexapp.plugins.library"
SEARCH_TYPES: Final = {"movie": 1, "series": 2, "episode": 4}  # Plex's metadata type numbers


def _norm(path: str) -> str:
    """A folder path without its trailing separator."""
    return path.rstrip("/\\") or path


def contains(folder: str, path: str) -> bool:
    """Whether `path` is `folder` or lies under it (either separator)."""
    folder, path = _norm(folder), _norm(path)
    return path == folder or path.startswith((folder + "/", folder + "\\"))


class PlexClient:
    """One Plex Media Server reached over HTTP with an X-Plex-Token."""

    def __init__(self, name: str, url: str, token: str, *, session: aiohttp.ClientSession,
                 timeout: float = 10.0) -> None:
        if not url.startswith(("http://", "https://")):
            raise UserError(f"player '{name}': Plex url {url!r} must start with http:// or https://")
        if not token:
            raise UserError(f"player '{name}': Plex needs a token (the X-Plex-Token of the server's owner)")
        self.name = name
        self.url = url.rstrip("/")
        self._headers = {"X-Plex-Token": token, "Accept": "application/json",
                         "X-Plex-Product": "Metarr Agent", "X-Plex-Version": __version__,
                         "X-Plex-Client-Identifier": "metarr-agent"}
        self._session = session
        self._timeout = aiohttp.ClientTimeout(total=timeout)

    async def _get(self, path: str, query: dict[str, Any] | None = None) -> Any:
        """GET one endpoint; decoded JSON, or None for an empty body."""
        target = path + ("?" + urllib.parse.urlencode(query) if query else "")
        try:
            async with self._session.get(self.url + target, headers=self._headers, timeout=self._timeout) as resp:
                if resp.status == 401:
                    raise PlayerAuthError(self.name, f"Plex at {self.url} rejected the token (HTTP 401); "
                                                     "check the player's token")
                if resp.status >= 500:
                    raise PlayerUnreachable(self.name, f"Plex at {self.url} answered HTTP {resp.status}")
                if resp.status >= 400:
                    text = (await resp.text())[:200]
                    raise PlayerRequestError(self.name, f"Plex answered HTTP {resp.status} to GET {path}: {text}")
                text = await resp.text()
        except (aiohttp.ClientConnectionError, TimeoutError) as exc:
            reason = "timed out" if isinstance(exc, TimeoutError) else (str(exc) or type(exc).__name__)
            raise PlayerUnreachable(self.name, f"cannot reach Plex at {self.url} ({reason})") from exc
        if not text.strip():
            return None
        try:
            return json.loads(text)
        except ValueError as exc:
            raise PlayerRequestError(self.name, f"Plex answered GET {path} with non-JSON: {text[:200]!r}") from exc

    @staticmethod
    def _container(answer: Any) -> dict[str, Any]:
        """The MediaContainer of an answer (empty when absent)."""
        box = answer.get("MediaContainer") if isinstance(answer, dict) else None
        return box if isinstance(box, dict) else {}

    async def ping(self) -> dict[str, Any]:
        """GET /identity: machineIdentifier and version."""
        return self._container(await self._get("/identity"))

    async def sections(self) -> list[dict[str, Any]]:
        """Every library section: key, type, title, locations (paths as Plex sees them)."""
        out = []
        for d in self._container(await self._get("/library/sections")).get("Directory") or []:
            locations = [str(loc.get("path")) for loc in d.get("Location") or [] if loc.get("path")]
            out.append({"key": str(d.get("key")), "type": d.get("type"), "title": d.get("title"),
                        "locations": locations})
        return out

    async def section_for(self, path: str) -> dict[str, Any] | None:
        """The section one of whose locations holds `path` (the deepest location wins)."""
        best: tuple[int, dict[str, Any]] | None = None
        for section in await self.sections():
            for location in section["locations"]:
                if contains(location, path) and (best is None or len(location) > best[0]):
                    best = (len(location), section)
        return best[1] if best else None

    async def scan_folder(self, folder: str) -> str:
        """Partial scan of one folder (GET /library/sections/{id}/refresh?path=); returns the section key."""
        section = await self.section_for(folder)
        if section is None:
            raise PlayerRequestError(self.name, f"no Plex library section has a folder holding {folder}; "
                                                "check the player's path_mappings and Plex's library folders")
        await self._get(f"/library/sections/{section['key']}/refresh", {"path": folder})
        return section["key"]

    async def find_item(self, entity: str, file: str) -> dict[str, Any] | None:
        """The movie or episode whose Media/Part file is `file`: ratingKey, title, viewCount, viewOffset (ms),
        lastViewedAt; None when Plex does not list it."""
        if entity not in ("movie", "episode"):
            raise UserError(f"Plex items are looked up by file for movies and episodes, not {entity!r}")
        section = await self.section_for(file)
        if section is None:
            return None
        answer = await self._get(f"/library/sections/{section['key']}/all", {"type": SEARCH_TYPES[entity]})
        for item in self._container(answer).get("Metadata") or []:
            parts = [p for m in item.get("Media") or [] for p in m.get("Part") or []]
            if any(p.get("file") == file for p in parts):
                return {"ratingKey": str(item.get("ratingKey")), "title": item.get("title"),
                        "viewCount": int(item.get("viewCount") or 0), "viewOffset": int(item.get("viewOffset") or 0),
                        "lastViewedAt": item.get("lastViewedAt"), "duration": int(item.get("duration") or 0)}
        return None

    async def scrobble(self, rating_key: str) -> None:
        """Mark one item watched for the token's user (GET /:/scrobble)."""
        await self._get("/:/scrobble", {"key": rating_key, "identifier": IDENTIFIER})

    async def set_progress(self, rating_key: str, offset_ms: int) -> None:
        """Set the token's user's view offset of one item (GET /:/progress, state stopped)."""
        await self._get("/:/progress", {"key": rating_key, "identifier": IDENTIFIER, "time": int(offset_ms),
                                        "state": "stopped"})

    async def sessions(self) -> list[dict[str, Any]]:
        """What is playing (GET /status/sessions), shaped as JellyfinClient.sessions(): positions in seconds."""
        playing = []
        for item in self._container(await self._get("/status/sessions")).get("Metadata") or []:
            player = item.get("Player") or {}
            parts = [p for m in item.get("Media") or [] for p in m.get("Part") or []]
            playing.append({
                "session_id": (item.get("Session") or {}).get("id"), "user": (item.get("User") or {}).get("title"),
                "client": player.get("product"), "device": player.get("title"),
                "item_id": str(item.get("ratingKey")), "name": item.get("title"),
                "path": parts[0].get("file") if parts else None,
                "position": int(item.get("viewOffset") or 0) / 1000.0,
                "runtime": int(item.get("duration") or 0) / 1000.0,
                "paused": player.get("state") == "paused",
            })
        return playing
