"""A fake Jellyfin: records every call; serves /Library/Media/Updated, /Sessions, a library of items (/Items,
/Items/{id}/Refresh), users (/Users) and per-user item data (/UserItems/{id}/UserData?userId=) as Jellyfin
10.9+ documents them (Jellyfin.Api/Controllers/ItemsController.cs, ItemRefreshController.cs)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from aiohttp import web

_TOKEN = re.compile(r'^MediaBrowser\s.*\bToken="([^"]*)"')


@dataclass
class Request:
    """One request the fake received."""

    method: str
    path: str
    authorization: str | None
    body: Any


class FakeJellyfin:
    """Serve `app()` with aiohttp_server; or use start_fake_jellyfin()."""

    def __init__(self, api_key: str = "secret-key") -> None:
        self.api_key = api_key
        self.requests: list[Request] = []
        self.now_playing: list[dict[str, Any]] = []
        self.fail_status: list[int] = []
        self.url = ""
        self.items: dict[str, dict[str, Any]] = {}  # Id -> {Id, Name, Type, Path, ProviderIds}
        self.user_names: dict[str, str] = {}  # user Id -> Name
        self.user_data: dict[tuple[str, str], dict[str, Any]] = {}  # (user Id, item Id) -> UserItemDataDto

    def add_item(self, item_id: str, type_: str, path: str, name: str = "") -> None:
        """Put an item in the library."""
        self.items[item_id] = {"Id": item_id, "Name": name or item_id, "Type": type_, "Path": path,
                               "ProviderIds": {}}

    def add_user(self, user_id: str, name: str) -> None:
        """Add a user."""
        self.user_names[user_id] = name

    def data_of(self, user_id: str, item_id: str) -> dict[str, Any]:
        """A user's data for an item (Jellyfin's defaults when never set)."""
        return self.user_data.get((user_id, item_id)) or {
            "Played": False, "PlayCount": 0, "PlaybackPositionTicks": 0, "LastPlayedDate": None,
            "IsFavorite": False, "Key": item_id, "ItemId": item_id,
        }

    def calls(self, method: str, prefix: str) -> list[Request]:
        """The recorded requests of one method whose path starts with `prefix`."""
        return [r for r in self.requests if r.method == method and r.path.startswith(prefix)]

    def play(
        self, path: str, name: str, position: float, runtime: float, paused: bool = False, user: str = "alice"
    ) -> None:
        """Add a session playing `path` at `position` seconds."""
        n = len(self.now_playing) + 1
        self.now_playing.append(
            {
                "Id": f"session-{n}",
                "UserName": user,
                "Client": "Jellyfin Web",
                "DeviceName": "Firefox",
                "NowPlayingItem": {
                    "Id": f"item-{n}",
                    "Name": name,
                    "Path": path,
                    "RunTimeTicks": int(runtime * 1e7),
                },
                "PlayState": {"PositionTicks": int(position * 1e7), "IsPaused": paused},
            }
        )

    def updates(self) -> list[dict[str, Any]]:
        """Every Update entry received by /Library/Media/Updated, in order."""
        return [u for r in self.requests if r.path == "/Library/Media/Updated" for u in r.body["Updates"]]

    def app(self) -> web.Application:
        """The aiohttp app."""
        app = web.Application()
        app.router.add_get("/System/Info/Public", self._info)
        app.router.add_post("/Library/Media/Updated", self._media_updated)
        app.router.add_get("/Sessions", self._sessions)
        app.router.add_get("/Items", self._items)
        app.router.add_post("/Items/{id}/Refresh", self._refresh)
        app.router.add_get("/Users", self._users)
        app.router.add_get("/UserItems/{id}/UserData", self._get_user_data)
        app.router.add_post("/UserItems/{id}/UserData", self._set_user_data)
        return app

    async def _items(self, request: web.Request) -> web.Response:
        """GET /Items?Recursive=true&IncludeItemTypes=Movie&Fields=Path,ProviderIds (no path filter exists)."""
        refused = await self._record(request)
        if refused is not None:
            return refused
        types = {t for t in request.query.get("IncludeItemTypes", "").split(",") if t}
        fields = set(request.query.get("Fields", "").split(","))
        items = []
        for item in self.items.values():
            if types and item["Type"] not in types:
                continue
            shown = {"Id": item["Id"], "Name": item["Name"], "Type": item["Type"]}
            shown.update({k: item[k] for k in ("Path", "ProviderIds") if k in fields})
            items.append(shown)
        return web.json_response({"Items": items, "TotalRecordCount": len(items), "StartIndex": 0})

    async def _refresh(self, request: web.Request) -> web.Response:
        """POST /Items/{id}/Refresh: 404 for an unknown item, 204 otherwise."""
        refused = await self._record(request)
        if refused is not None:
            return refused
        if request.match_info["id"] not in self.items:
            return web.Response(status=404, text="Item not found")
        return web.Response(status=204)

    async def _users(self, request: web.Request) -> web.Response:
        """GET /Users."""
        refused = await self._record(request)
        if refused is not None:
            return refused
        return web.json_response([{"Id": uid, "Name": name} for uid, name in self.user_names.items()])

    def _user_item(self, request: web.Request) -> tuple[str, str] | web.Response:
        """(user id, item id) of a /UserItems request, or its 404."""
        user, item = request.query.get("userId", ""), request.match_info["id"]
        if user not in self.user_names or item not in self.items:
            return web.Response(status=404, text="not found")
        return user, item

    async def _get_user_data(self, request: web.Request) -> web.Response:
        """GET /UserItems/{id}/UserData?userId=."""
        refused = await self._record(request)
        if refused is not None:
            return refused
        key = self._user_item(request)
        if isinstance(key, web.Response):
            return key
        return web.json_response(self.data_of(*key))

    async def _set_user_data(self, request: web.Request) -> web.Response:
        """POST /UserItems/{id}/UserData?userId= with an UpdateUserItemDataDto: only the given keys change."""
        refused = await self._record(request)
        if refused is not None:
            return refused
        key = self._user_item(request)
        if isinstance(key, web.Response):
            return key
        body = self.requests[-1].body
        if not isinstance(body, dict):
            return web.Response(status=400, text="a UserData body is required")
        data = {**self.data_of(*key), **{k: v for k, v in body.items() if v is not None}}
        self.user_data[key] = data
        return web.json_response(data)

    async def _record(self, request: web.Request) -> web.Response | None:
        """Record the request; return an error response when failing on purpose or unauthorised."""
        body = await request.json() if request.can_read_body else None
        auth = request.headers.get("Authorization")
        self.requests.append(Request(request.method, request.path_qs, auth, body))
        if self.fail_status:
            return web.Response(status=self.fail_status.pop(0), text="failing on purpose")
        match = _TOKEN.match(auth or "")
        if match is None or match.group(1) != self.api_key:
            return web.Response(status=401, text="Unauthorized")
        return None

    async def _info(self, request: web.Request) -> web.Response:
        """Public server info; no auth."""
        self.requests.append(
            Request(request.method, request.path, request.headers.get("Authorization"), None)
        )
        return web.json_response({"ServerName": "fake", "Version": "10.10.7", "Id": "fake-jellyfin"})

    async def _media_updated(self, request: web.Request) -> web.Response:
        """Accept path updates (204 like Jellyfin)."""
        refused = await self._record(request)
        if refused is not None:
            return refused
        body = self.requests[-1].body
        if not isinstance(body, dict) or not isinstance(body.get("Updates"), list):
            return web.Response(status=400, text="Updates is required")
        return web.Response(status=204)

    async def _sessions(self, request: web.Request) -> web.Response:
        """The configured sessions plus one idle session."""
        refused = await self._record(request)
        if refused is not None:
            return refused
        idle = {"Id": "idle", "UserName": "bob", "Client": "Android TV", "DeviceName": "TV", "PlayState": {}}
        return web.json_response([*self.now_playing, idle])


async def start_fake_jellyfin(aiohttp_server: Any, **kwargs: Any) -> FakeJellyfin:
    """Start a FakeJellyfin on 127.0.0.1; sets `url`."""
    fake = FakeJellyfin(**kwargs)
    server = await aiohttp_server(fake.app())
    fake.url = str(server.make_url("")).rstrip("/")
    return fake
