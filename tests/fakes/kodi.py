"""A stateful fake Kodi: JSON-RPC over HTTP and the 9090-style notification WebSocket; records calls."""

from __future__ import annotations

import asyncio
import base64
import json
import urllib.parse
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web

from agent.players.kodi import seconds_from_time, time_from_seconds


@dataclass
class Call:
    """One JSON-RPC call the fake received."""

    method: str
    params: dict[str, Any]
    auth: str | None
    transport: str  # "http" or "ws"


@dataclass
class Item:
    """One library item (movie, episode or tvshow) in the fake's database."""

    kind: str
    id: int
    file: str
    title: str
    playcount: int = 0
    lastplayed: str = ""
    resume: dict[str, float] = field(default_factory=lambda: {"position": 0.0, "total": 0.0})
    uniqueid: dict[str, str] = field(default_factory=dict)
    tvshowid: int = -1
    season: int = -1
    episode: int = -1

    def view(self, properties: list[str]) -> dict[str, Any]:
        """Render the item as Kodi's Get* methods do, with the asked properties."""
        out: dict[str, Any] = {f"{self.kind}id": self.id, "label": self.title}
        values = {
            "file": self.file,
            "title": self.title,
            "playcount": self.playcount,
            "lastplayed": self.lastplayed,
            "resume": dict(self.resume),
            "uniqueid": dict(self.uniqueid),
            "imdbnumber": next(iter(self.uniqueid.values()), ""),
            "tvshowid": self.tvshowid,
            "season": self.season,
            "episode": self.episode,
        }
        for prop in properties:
            if prop not in values:
                raise RpcError(-32602, f"Invalid params: unknown property {prop!r}")
            out[prop] = values[prop]
        return out


@dataclass
class Present:
    """A file that exists on the fake's disk and a scan would add."""

    kind: str
    file: str
    title: str
    show_folder: str = ""
    season: int = -1
    episode: int = -1


@dataclass
class Playing:
    """The simulated active video player."""

    file: str
    position: float
    total: float
    paused: bool = False


class RpcError(Exception):
    """A JSON-RPC error the fake answers with."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


_LISTS = {
    "VideoLibrary.GetMovies": ("movie", "movies"),
    "VideoLibrary.GetEpisodes": ("episode", "episodes"),
    "VideoLibrary.GetTVShows": ("tvshow", "tvshows"),
}


class FakeKodi:
    """Serve `http_app()` and `ws_app()` with aiohttp_server; or use start_fake_kodi()."""

    def __init__(
        self, username: str | None = None, password: str | None = None, scan_delay: float = 0.0
    ) -> None:
        self.username = username
        self.password = password
        self.scan_delay = scan_delay
        self.calls: list[Call] = []
        self.items: dict[int, Item] = {}
        self.present: dict[str, Present] = {}
        self.playing: Playing | None = None
        self.notifications: list[tuple[str, str]] = []
        self.scanning = False
        self.refresh_changes_id = True  # real Kodi re-adds a refreshed movie under a new id
        self.fail_status: list[int] = []  # HTTP statuses to answer the next calls with, in order
        self.sockets: set[web.WebSocketResponse] = set()
        self.ws_connects = 0
        self.textures: dict[int, str] = {}  # Textures13.db: textureid -> url as Kodi keeps it (image://...)
        self.url = ""
        self.ws_url = ""
        self._next_id = 1
        self._scans: set[asyncio.Task[None]] = set()

    # -- test controls ------------------------------------------------------------------------------

    def cache_texture(self, path: str) -> int:
        """Cache a thumbnail of a local image, as Kodi does when a skin shows it; return its textureid."""
        textureid = len(self.textures) + 1
        self.textures[textureid] = "image://" + urllib.parse.quote(path, safe="()") + "/"
        return textureid

    def add_item(self, kind: str, file: str, title: str, **fields: Any) -> int:
        """Put an item straight into the library; return its id."""
        item = Item(kind=kind, id=self._new_id(), file=file, title=title, **fields)
        self.items[item.id] = item
        if kind != "tvshow":
            self.present.setdefault(file, Present(kind, file, title))
        return item.id

    def add_file(
        self,
        file: str,
        title: str,
        kind: str = "movie",
        show_folder: str = "",
        season: int = -1,
        episode: int = -1,
    ) -> None:
        """Register a file as present on disk, so a scan of a folder above it adds it."""
        self.present[file] = Present(kind, file, title, show_folder, season, episode)

    def remove_file(self, file: str) -> None:
        """Forget a file on disk, so a clean of its folder drops it from the library."""
        self.present.pop(file, None)

    def play(self, file: str, position: float, total: float, paused: bool = False) -> None:
        """Make the video player play `file` at `position` seconds."""
        self.playing = Playing(file, position, total, paused)

    def find(self, kind: str, file: str) -> Item | None:
        """Return the library item of `kind` with this file."""
        return next((i for i in self.items.values() if i.kind == kind and i.file == file), None)

    def calls_to(self, method: str) -> list[Call]:
        """Return the recorded calls of one method."""
        return [c for c in self.calls if c.method == method]

    async def push(self, method: str, data: Any = None) -> None:
        """Send a notification to every open notification socket."""
        text = json.dumps({"jsonrpc": "2.0", "method": method, "params": {"sender": "xbmc", "data": data}})
        for ws in list(self.sockets):
            if not ws.closed:
                await ws.send_str(text)

    async def close_sockets(self) -> None:
        """Close every notification socket (the listener should reconnect)."""
        for ws in list(self.sockets):
            await ws.close()

    async def scans_done(self) -> None:
        """Wait for every scan started so far to finish."""
        while self._scans:
            await asyncio.gather(*list(self._scans))

    # -- apps ---------------------------------------------------------------------------------------

    def http_app(self) -> web.Application:
        """The HTTP JSON-RPC endpoint at POST /jsonrpc."""
        app = web.Application()
        app.router.add_post("/jsonrpc", self._http)
        return app

    def ws_app(self) -> web.Application:
        """The notification WebSocket at /jsonrpc (port 9090 on a real Kodi)."""
        app = web.Application()
        app.router.add_get("/jsonrpc", self._ws)
        app.on_shutdown.append(self._close_on_shutdown)
        return app

    async def _close_on_shutdown(self, _app: web.Application) -> None:
        """Close sockets when the WS server stops."""
        await self.close_sockets()

    async def _http(self, request: web.Request) -> web.Response:
        """Answer one HTTP JSON-RPC request."""
        auth = request.headers.get("Authorization")
        if self.fail_status:
            return web.Response(status=self.fail_status.pop(0), text="failing on purpose")
        if self.username is not None and auth != _basic(self.username, self.password or ""):
            return web.Response(status=401, text="Unauthorized")
        try:
            body = await request.json()
        except ValueError:
            return web.json_response(
                {"jsonrpc": "2.0", "id": None, "error": {"code": -32700, "message": "Parse error."}}
            )
        return web.json_response(await self._answer(body, auth, "http"))

    async def _ws(self, request: web.Request) -> web.WebSocketResponse:
        """Hold one notification socket; calls sent on it are answered on it."""
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        self.sockets.add(ws)
        self.ws_connects += 1
        try:
            async for msg in ws:
                if msg.type == WSMsgType.TEXT:
                    await ws.send_str(json.dumps(await self._answer(json.loads(msg.data), None, "ws")))
        finally:
            self.sockets.discard(ws)
        return ws

    async def _answer(self, body: Any, auth: str | None, transport: str) -> dict[str, Any]:
        """Run one JSON-RPC request object and build the response object."""
        rid = body.get("id") if isinstance(body, dict) else None
        if not isinstance(body, dict) or body.get("jsonrpc") != "2.0" or "method" not in body:
            return {"jsonrpc": "2.0", "id": rid, "error": {"code": -32600, "message": "Invalid request."}}
        params = body.get("params") or {}
        self.calls.append(Call(body["method"], params, auth, transport))
        try:
            result = await self._dispatch(body["method"], params)
        except RpcError as exc:
            return {"jsonrpc": "2.0", "id": rid, "error": {"code": exc.code, "message": exc.message}}
        return {"jsonrpc": "2.0", "id": rid, "result": result}

    # -- methods ------------------------------------------------------------------------------------

    async def _dispatch(self, method: str, p: dict[str, Any]) -> Any:
        """Run one method against the fake state."""
        if method == "JSONRPC.Ping":
            return "pong"
        if method == "JSONRPC.Version":
            return {"version": {"major": 13, "minor": 0, "patch": 0}}
        if method == "XBMC.GetInfoBooleans":
            return {
                name: (self.scanning if name == "Library.IsScanning" else False) for name in p["booleans"]
            }
        if method in _LISTS:
            return self._list(method, p)
        if method in (
            "VideoLibrary.RefreshMovie",
            "VideoLibrary.RefreshEpisode",
            "VideoLibrary.RefreshTVShow",
        ):
            return await self._refresh(method, p)
        if method == "VideoLibrary.Scan":
            self._start_scan(_required(p, "directory", str))
            return "OK"
        if method == "VideoLibrary.Clean":
            await self._clean(_required(p, "directory", str))
            return "OK"
        if method in ("VideoLibrary.SetMovieDetails", "VideoLibrary.SetEpisodeDetails"):
            return await self._set_details("movie" if "Movie" in method else "episode", p)
        if method.startswith("Player."):
            return await self._player(method, p)
        if method == "GUI.ShowNotification":
            self.notifications.append((_required(p, "title", str), _required(p, "message", str)))
            return "OK"
        if method in ("VideoLibrary.RemoveMovie", "VideoLibrary.RemoveEpisode"):
            kind = "movie" if "Movie" in method else "episode"
            item = self.items.get(_required(p, f"{kind}id", int))
            if item is None or item.kind != kind:
                raise RpcError(-32602, f"Invalid params: no {kind} with that id")
            del self.items[item.id]
            await self.push("VideoLibrary.OnRemove", {"id": item.id, "type": kind})
            return "OK"
        if method == "Textures.GetTextures":
            flt = p.get("filter") or {}
            if flt.get("field") != "url" or flt.get("operator") != "startswith":
                raise RpcError(-32602, f"Invalid params: fake supports only url/startswith, got {flt!r}")
            return {"textures": [{"textureid": tid, "url": url} for tid, url in self.textures.items()
                                 if urllib.parse.unquote(url[8:-1]).startswith(flt["value"])]}
        if method == "Textures.RemoveTexture":
            if self.textures.pop(_required(p, "textureid", int), None) is None:
                raise RpcError(-32602, "Invalid params: no texture with that id")
            return "OK"
        raise RpcError(-32601, "Method not found.")

    def _list(self, method: str, p: dict[str, Any]) -> dict[str, Any]:
        """VideoLibrary.Get{Movies,Episodes,TVShows} with the optional path-startswith filter."""
        kind, key = _LISTS[method]
        rows = [i for i in self.items.values() if i.kind == kind]
        flt = p.get("filter")
        if flt is not None:
            if flt.get("field") != "path" or flt.get("operator") != "startswith":
                raise RpcError(-32602, f"Invalid params: fake supports only path/startswith, got {flt!r}")
            rows = [i for i in rows if i.file.startswith(flt["value"])]
        found = [i.view(p.get("properties", [])) for i in sorted(rows, key=lambda i: i.id)]
        return {"limits": {"start": 0, "end": len(found), "total": len(found)}, key: found}

    async def _refresh(self, method: str, p: dict[str, Any]) -> str:
        """Refresh*: ignorenfo must be a bool; a refreshed movie may come back under a new id."""
        kind = {"Movie": "movie", "Episode": "episode", "TVShow": "tvshow"}[method.split("Refresh")[1]]
        item = self._item(kind, p)
        if not isinstance(p.get("ignorenfo", False), bool):
            raise RpcError(-32602, "Invalid params: ignorenfo must be a boolean")
        if kind == "movie" and self.refresh_changes_id:
            del self.items[item.id]
            await self.push("VideoLibrary.OnRemove", {"id": item.id, "type": kind})
            item.id = self._new_id()
            self.items[item.id] = item
            await self.push("VideoLibrary.OnUpdate", {"item": {"id": item.id, "type": kind}, "added": True})
        else:
            await self.push("VideoLibrary.OnUpdate", {"item": {"id": item.id, "type": kind}})
        await self.push("VideoLibrary.OnRefresh")
        return "OK"

    def _start_scan(self, directory: str) -> None:
        """Start an asynchronous scan of `directory`, like Kodi's library queue."""
        if directory and not directory.endswith(("/", "\\")):
            raise RpcError(-32602, "Invalid params: directory must end with a separator")
        self.scanning = True
        task = asyncio.create_task(self._scan(directory))
        self._scans.add(task)
        task.add_done_callback(self._scans.discard)

    async def _scan(self, directory: str) -> None:
        """Add every present file under `directory` that the library lacks, then report finished."""
        await self.push("VideoLibrary.OnScanStarted")
        if self.scan_delay:
            await asyncio.sleep(self.scan_delay)
        for present in list(self.present.values()):
            if not present.file.startswith(directory) or self.find(present.kind, present.file):
                continue
            fields: dict[str, Any] = {}
            if present.kind == "episode":
                show = self.find("tvshow", present.show_folder) if present.show_folder else None
                if show is None:
                    title = present.show_folder.rstrip("/\\").rsplit("/", 1)[-1]
                    show_id = self.add_item("tvshow", present.show_folder, title)
                else:
                    show_id = show.id
                fields = {"tvshowid": show_id, "season": present.season, "episode": present.episode}
            new_id = self.add_item(present.kind, present.file, present.title, **fields)
            await self.push(
                "VideoLibrary.OnUpdate", {"item": {"id": new_id, "type": present.kind}, "added": True}
            )
        self.scanning = False
        await self.push("VideoLibrary.OnScanFinished")

    async def _clean(self, directory: str) -> None:
        """Drop items under `directory` whose files are no longer present."""
        await self.push("VideoLibrary.OnCleanStarted")
        for item in list(self.items.values()):
            if item.kind != "tvshow" and item.file.startswith(directory) and item.file not in self.present:
                del self.items[item.id]
                await self.push("VideoLibrary.OnRemove", {"id": item.id, "type": item.kind})
        await self.push("VideoLibrary.OnCleanFinished")

    async def _set_details(self, kind: str, p: dict[str, Any]) -> str:
        """Set*Details: playcount, lastplayed, resume."""
        item = self._item(kind, p)
        if "playcount" in p:
            item.playcount = int(p["playcount"])
        if "lastplayed" in p:
            item.lastplayed = str(p["lastplayed"])
        if "resume" in p:
            item.resume = {
                "position": float(p["resume"]["position"]),
                "total": float(p["resume"].get("total", 0)),
            }
        await self.push(
            "VideoLibrary.OnUpdate", {"item": {"id": item.id, "type": kind}, "playcount": item.playcount}
        )
        return "OK"

    async def _player(self, method: str, p: dict[str, Any]) -> Any:
        """Player.GetActivePlayers/GetItem/GetProperties/Open/Stop."""
        if method == "Player.GetActivePlayers":
            return [{"playerid": 1, "type": "video", "playertype": "internal"}] if self.playing else []
        if method == "Player.Open":
            file = _required(_required(p, "item", dict), "file", str)
            resume = (p.get("options") or {}).get("resume", False)
            position = seconds_from_time(resume) if isinstance(resume, dict) else 0.0
            total = self.playing.total if self.playing and self.playing.file == file else 7200.0
            self.playing = Playing(file, position, total)
            await self.push(
                "Player.OnPlay", {"item": self._player_item(file), "player": {"playerid": 1, "speed": 1}}
            )
            return "OK"
        if p.get("playerid") != 1 or self.playing is None:
            raise RpcError(-32100, "Failed to execute method.")
        if method == "Player.GetItem":
            return {"item": self._player_item(self.playing.file)}
        if method == "Player.GetProperties":
            playing = self.playing
            return {
                "time": time_from_seconds(playing.position),
                "totaltime": time_from_seconds(playing.total),
                "percentage": 100.0 * playing.position / playing.total if playing.total else 0.0,
                "speed": 0 if playing.paused else 1,
            }
        if method == "Player.Stop":
            item = self._player_item(self.playing.file)
            self.playing = None
            await self.push("Player.OnStop", {"item": item, "end": False})
            return "OK"
        raise RpcError(-32601, "Method not found.")

    def _player_item(self, file: str) -> dict[str, Any]:
        """Describe the playing file as Player.GetItem does."""
        for kind in ("movie", "episode"):
            item = self.find(kind, file)
            if item is not None:
                return {"id": item.id, "type": kind, "label": item.title, "title": item.title, "file": file}
        return {"type": "unknown", "label": file.rsplit("/", 1)[-1], "title": "", "file": file}

    def _item(self, kind: str, p: dict[str, Any]) -> Item:
        """Look an item up by its `<kind>id` param."""
        item = self.items.get(_required(p, f"{kind}id", int))
        if item is None or item.kind != kind:
            raise RpcError(-32602, f"Invalid params: no {kind} with that id")
        return item

    def _new_id(self) -> int:
        """Hand out the next library id."""
        self._next_id += 1
        return self._next_id - 1


def _required(p: dict[str, Any], key: str, kind: type) -> Any:
    """Return a required param of a given type, or raise Invalid params."""
    value = p.get(key)
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is int):
        raise RpcError(-32602, f"Invalid params: {key!r} must be {kind.__name__}")
    return value


def _basic(username: str, password: str) -> str:
    """The Authorization header value for Basic auth."""
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()


async def start_fake_kodi(aiohttp_server: Any, with_ws: bool = True, **kwargs: Any) -> FakeKodi:
    """Start a FakeKodi on 127.0.0.1 (HTTP, and WS unless with_ws=False); sets `url` and `ws_url`."""
    fake = FakeKodi(**kwargs)
    http = await aiohttp_server(fake.http_app())
    fake.url = str(http.make_url("/jsonrpc"))
    if with_ws:
        ws = await aiohttp_server(fake.ws_app())
        fake.ws_url = str(ws.make_url("/jsonrpc")).replace("http://", "ws://")
    return fake
