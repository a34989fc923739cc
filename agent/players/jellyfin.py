"""Jellyfin client: report changed media paths and read what is playing."""

from __future__ import annotations

import json
import logging
import urllib.parse
from collections.abc import Iterable
from typing import Any, Final

import aiohttp

from agent import __version__
from agent.errors import UserError
from agent.players import PlayerAuthError, PlayerRequestError, PlayerUnreachable

log = logging.getLogger(__name__)

UPDATE_TYPES: Final = ("Created", "Modified", "Deleted")
TICKS_PER_SECOND: Final = 10_000_000  # Jellyfin positions are .NET ticks (100 ns)
ITEM_TYPES: Final = {"movie": "Movie", "episode": "Episode", "series": "Series"}
# POST /Items/{id}/Refresh: re-read the NFO and the local images of one item, replacing what Jellyfin has.
FULL_REFRESH: Final = {"metadataRefreshMode": "FullRefresh", "imageRefreshMode": "FullRefresh",
                       "replaceAllMetadata": "true", "replaceAllImages": "true"}
USER_DATA_KEYS: Final = ("Played", "PlayCount", "PlaybackPositionTicks", "LastPlayedDate")


def authorization_header(api_key: str) -> str:
    """Build the `Authorization: MediaBrowser ...` value Jellyfin always accepts."""
    return (
        f'MediaBrowser Token="{api_key}", Client="Metarr Agent", Device="metarr-agent", '
        f'DeviceId="metarr-agent", Version="{__version__}"'
    )


class JellyfinClient:
    """One Jellyfin server reached over its REST API with an API key."""

    def __init__(
        self, name: str, url: str, api_key: str, *, session: aiohttp.ClientSession, timeout: float = 10.0
    ) -> None:
        if not url.startswith(("http://", "https://")):
            raise UserError(f"player '{name}': Jellyfin url {url!r} must start with http:// or https://")
        if not api_key:
            raise UserError(f"player '{name}': Jellyfin needs an api_key (Dashboard -> API Keys)")
        self.name = name
        self.url = url.rstrip("/")
        self._headers = {"Authorization": authorization_header(api_key)}
        self._session = session
        self._timeout = aiohttp.ClientTimeout(total=timeout)

    async def _request(self, method: str, path: str, body: Any = None, auth: bool = True) -> Any:
        """Send one request; return decoded JSON (or None for an empty body)."""
        url = self.url + path
        headers = self._headers if auth else {}
        try:
            async with self._session.request(
                method, url, json=body, headers=headers, timeout=self._timeout
            ) as resp:
                if resp.status == 401:
                    raise PlayerAuthError(
                        self.name,
                        f"Jellyfin at {self.url} rejected the API key (HTTP 401); check the player's api_key",
                    )
                if resp.status >= 500:
                    raise PlayerUnreachable(self.name, f"Jellyfin at {self.url} answered HTTP {resp.status}")
                if resp.status >= 400:
                    text = (await resp.text())[:200]
                    raise PlayerRequestError(
                        self.name, f"Jellyfin answered HTTP {resp.status} to {method} {path}: {text}"
                    )
                text = await resp.text()
        except (aiohttp.ClientConnectionError, TimeoutError) as exc:
            reason = "timed out" if isinstance(exc, TimeoutError) else (str(exc) or type(exc).__name__)
            raise PlayerUnreachable(self.name, f"cannot reach Jellyfin at {self.url} ({reason})") from exc
        if not text.strip():
            return None
        try:
            return json.loads(text)
        except ValueError as exc:
            raise PlayerRequestError(
                self.name, f"Jellyfin answered {method} {path} with non-JSON: {text[:200]!r}"
            ) from exc

    async def ping(self) -> dict[str, Any]:
        """Return the server's public info (name, version, id); raises if unreachable."""
        info = await self._request("GET", "/System/Info/Public", auth=False)
        if not isinstance(info, dict):
            raise PlayerRequestError(self.name, f"Jellyfin /System/Info/Public answered {info!r}")
        return info

    async def media_updated(self, updates: Iterable[tuple[str, str]]) -> None:
        """Tell Jellyfin these paths (as it sees them) were Created, Modified or Deleted."""
        body = []
        for path, update_type in updates:
            if not path:
                raise UserError("a Jellyfin media update needs a path")
            if update_type not in UPDATE_TYPES:
                raise UserError(
                    f"unknown Jellyfin update type {update_type!r}; expected one of {', '.join(UPDATE_TYPES)}"
                )
            body.append({"Path": path, "UpdateType": update_type})
        if not body:
            return
        await self._request("POST", "/Library/Media/Updated", {"Updates": body})

    async def find_item(self, entity: str, path: str) -> dict[str, Any] | None:
        """The library item of this kind whose Path (as Jellyfin sees it) is `path`: Id, Name, Path,
        ProviderIds; None when Jellyfin does not know it (yet)."""
        if entity not in ITEM_TYPES:
            raise UserError(f"unknown item kind {entity!r} for Jellyfin; expected movie, episode or series")
        query = urllib.parse.urlencode({"Recursive": "true", "IncludeItemTypes": ITEM_TYPES[entity],
                                        "Fields": "Path,ProviderIds"})
        answer = await self._request("GET", f"/Items?{query}")
        items = answer.get("Items") if isinstance(answer, dict) else None
        wanted = path.rstrip("/\\") if entity == "series" else path
        for item in items or []:
            found = item.get("Path") if isinstance(item, dict) else None
            if isinstance(found, str) and (found.rstrip("/\\") if entity == "series" else found) == wanted:
                return dict(item)
        return None

    async def refresh_item(self, item_id: str) -> None:
        """Ask for a full metadata and image refresh of one item (it re-reads the NFO and local art)."""
        query = urllib.parse.urlencode(FULL_REFRESH)
        await self._request("POST", f"/Items/{urllib.parse.quote(item_id, safe='')}/Refresh?{query}")

    async def users(self) -> list[dict[str, Any]]:
        """Every Jellyfin user: Id and Name."""
        answer = await self._request("GET", "/Users")
        return [{"Id": u["Id"], "Name": u.get("Name", "")} for u in answer or []
                if isinstance(u, dict) and isinstance(u.get("Id"), str)]

    def _user_data_path(self, item_id: str, user_id: str) -> str:
        """/UserItems/{itemId}/UserData?userId= (Jellyfin 10.9+)."""
        return (f"/UserItems/{urllib.parse.quote(item_id, safe='')}/UserData?"
                + urllib.parse.urlencode({"userId": user_id}))

    async def user_data(self, item_id: str, user_id: str) -> dict[str, Any]:
        """One user's data for one item: Played, PlayCount, PlaybackPositionTicks, LastPlayedDate."""
        answer = await self._request("GET", self._user_data_path(item_id, user_id))
        if not isinstance(answer, dict):
            raise PlayerRequestError(self.name, f"Jellyfin answered the user data of {item_id} with {answer!r}")
        return {key: answer.get(key) for key in USER_DATA_KEYS}

    async def set_user_data(self, item_id: str, user_id: str, data: dict[str, Any]) -> None:
        """Set one user's Played, PlayCount, PlaybackPositionTicks and LastPlayedDate on one item."""
        body = {key: data[key] for key in USER_DATA_KEYS if data.get(key) is not None}
        if not body:
            raise UserError("setting Jellyfin user data needs at least one of " + ", ".join(USER_DATA_KEYS))
        await self._request("POST", self._user_data_path(item_id, user_id), body)

    async def sessions(self) -> list[dict[str, Any]]:
        """Return what is playing: session, user, client, item, path, position/runtime (s), paused."""
        answer = await self._request("GET", "/Sessions")
        playing = []
        for session in answer or []:
            item = session.get("NowPlayingItem") if isinstance(session, dict) else None
            if not isinstance(item, dict):
                continue
            state = session.get("PlayState") or {}
            playing.append(
                {
                    "session_id": session.get("Id"),
                    "user": session.get("UserName"),
                    "client": session.get("Client"),
                    "device": session.get("DeviceName"),
                    "item_id": item.get("Id"),
                    "name": item.get("Name"),
                    "path": item.get("Path"),
                    "position": (state.get("PositionTicks") or 0) / TICKS_PER_SECOND,
                    "runtime": (item.get("RunTimeTicks") or 0) / TICKS_PER_SECOND,
                    "paused": bool(state.get("IsPaused")),
                }
            )
        return playing
