"""A fake Plex Media Server: records every call; serves /identity, /library/sections (with Location paths),
/library/sections/{id}/refresh?path=, /library/sections/{id}/all?type=, /:/scrobble, /:/progress and
/status/sessions as JSON (Accept: application/json), checking the X-Plex-Token header."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

IDENTIFIER = "com.plexapp.plugins.library"


@dataclass
class Request:
    """One request the fake received."""

    path: str
    query: dict[str, str]
    token: str | None


@dataclass
class Item:
    """A movie (type 1) or an episode (type 4) with the token's user's view state."""

    rating_key: str
    type: int
    section: str
    file: str
    title: str
    view_count: int = 0
    view_offset: int = 0  # ms
    duration: int = 6_000_000
    extra: dict[str, Any] = field(default_factory=dict)


class FakePlex:
    """Serve `app()` with aiohttp_server; or use start_fake_plex()."""

    def __init__(self, token: str = "plex-token-123") -> None:
        self.token = token
        self.requests: list[Request] = []
        self.sections: dict[str, dict[str, Any]] = {}
        self.items: dict[str, Item] = {}
        self.playing: list[tuple[str, int, str]] = []  # (ratingKey, offset ms, state)
        self.url = ""

    def add_section(self, key: str, type_: str, *locations: str) -> None:
        """A library section with its folders."""
        self.sections[key] = {"key": key, "type": type_, "title": f"Section {key}",
                              "Location": [{"id": i, "path": p} for i, p in enumerate(locations)]}

    def add_item(self, rating_key: str, section: str, file: str, title: str, **kw: Any) -> Item:
        """A movie in a section."""
        item = Item(rating_key, 1, section, file, title, **kw)
        self.items[rating_key] = item
        return item

    def calls(self, path: str) -> list[Request]:
        """Recorded requests to one path."""
        return [r for r in self.requests if r.path == path]

    def app(self) -> web.Application:
        """The aiohttp app."""
        app = web.Application()
        app.router.add_get("/identity", self._identity)
        app.router.add_get("/library/sections", self._sections)
        app.router.add_get("/library/sections/{key}/refresh", self._refresh)
        app.router.add_get("/library/sections/{key}/all", self._all)
        app.router.add_get("/:/scrobble", self._scrobble)
        app.router.add_get("/:/progress", self._progress)
        app.router.add_get("/status/sessions", self._sessions)
        return app

    def _record(self, request: web.Request, auth: bool = True) -> web.Response | None:
        """Record; refuse a wrong token (401) or a client that does not ask for JSON (Plex would send XML)."""
        token = request.headers.get("X-Plex-Token")
        self.requests.append(Request(request.path, dict(request.query), token))
        if auth and token != self.token:
            return web.Response(status=401, text="Unauthorized")
        if request.headers.get("Accept") != "application/json":
            return web.Response(status=406, text="this fake answers JSON only")
        return None

    @staticmethod
    def _box(**content: Any) -> web.Response:
        return web.json_response({"MediaContainer": {"size": len(content.get("Metadata", [])), **content}})

    async def _identity(self, request: web.Request) -> web.Response:
        return self._record(request, auth=False) or self._box(machineIdentifier="fake-plex", version="1.43.1")

    async def _sections(self, request: web.Request) -> web.Response:
        return self._record(request) or self._box(Directory=list(self.sections.values()))

    async def _refresh(self, request: web.Request) -> web.Response:
        refused = self._record(request)
        if refused:
            return refused
        if request.match_info["key"] not in self.sections:
            return web.Response(status=404, text="no such section")
        return web.Response(status=200)

    def _metadata(self, item: Item) -> dict[str, Any]:
        data: dict[str, Any] = {"ratingKey": item.rating_key, "type": {1: "movie", 4: "episode"}[item.type],
                                "title": item.title, "duration": item.duration,
                                "Media": [{"Part": [{"file": item.file}]}], **item.extra}
        if item.view_count:
            data["viewCount"] = item.view_count
        if item.view_offset:
            data["viewOffset"] = item.view_offset
        return data

    async def _all(self, request: web.Request) -> web.Response:
        refused = self._record(request)
        if refused:
            return refused
        key, type_ = request.match_info["key"], int(request.query.get("type", "1"))
        items = [self._metadata(i) for i in self.items.values() if i.section == key and i.type == type_]
        return self._box(Metadata=items)

    def _item(self, request: web.Request) -> Item | web.Response:
        item = self.items.get(request.query.get("key", ""))
        if item is None or request.query.get("identifier") != IDENTIFIER:
            return web.Response(status=404, text="not found")
        return item

    async def _scrobble(self, request: web.Request) -> web.Response:
        refused = self._record(request)
        if refused:
            return refused
        item = self._item(request)
        if isinstance(item, web.Response):
            return item
        item.view_count += 1
        item.view_offset = 0
        return web.Response(status=200)

    async def _progress(self, request: web.Request) -> web.Response:
        refused = self._record(request)
        if refused:
            return refused
        item = self._item(request)
        if isinstance(item, web.Response):
            return item
        item.view_offset = int(request.query["time"])
        return web.Response(status=200)

    async def _sessions(self, request: web.Request) -> web.Response:
        refused = self._record(request)
        if refused:
            return refused
        out = []
        for rating_key, offset, state in self.playing:
            data = self._metadata(self.items[rating_key])
            data.update(viewOffset=offset, Player={"state": state, "title": "Living room TV", "product": "Plex"},
                        User={"title": "alice"}, Session={"id": "s1"})
            out.append(data)
        return self._box(Metadata=out)


async def start_fake_plex(aiohttp_server: Any, **kwargs: Any) -> FakePlex:
    """Start a FakePlex on 127.0.0.1; sets `url`."""
    fake = FakePlex(**kwargs)
    server = await aiohttp_server(fake.app())
    fake.url = str(server.make_url("")).rstrip("/")
    return fake
