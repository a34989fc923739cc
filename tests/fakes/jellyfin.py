"""A fake Jellyfin: records /Library/Media/Updated calls and serves a configurable /Sessions list."""

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
        return app

    async def _record(self, request: web.Request) -> web.Response | None:
        """Record the request; return an error response when failing on purpose or unauthorised."""
        body = await request.json() if request.can_read_body else None
        auth = request.headers.get("Authorization")
        self.requests.append(Request(request.method, request.path, auth, body))
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
