"""Kodi JSON-RPC client over HTTP: library lookups, refresh/scan/clean, playback and watched state."""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import logging
import urllib.parse
from typing import Any, Final

import aiohttp

from agent.errors import UserError
from agent.players import KodiError, PlayerAuthError, PlayerRequestError, PlayerUnreachable

log = logging.getLogger(__name__)

MOVIE_PROPERTIES: Final = ["file", "title", "playcount", "lastplayed", "resume", "imdbnumber", "uniqueid"]
EPISODE_PROPERTIES: Final = [
    "file", "title", "playcount", "lastplayed", "resume", "uniqueid", "season", "episode", "tvshowid",
]
TVSHOW_PROPERTIES: Final = ["file", "title", "imdbnumber", "uniqueid"]
PUBLISH_KINDS: Final = ("movie", "episode", "tvshow")
# Which GetX / RefreshX / id key each library kind uses.
_KIND_API: Final = {
    "movie": ("VideoLibrary.GetMovies", "movies", "movieid", "VideoLibrary.RefreshMovie"),
    "episode": ("VideoLibrary.GetEpisodes", "episodes", "episodeid", "VideoLibrary.RefreshEpisode"),
    "tvshow": ("VideoLibrary.GetTVShows", "tvshows", "tvshowid", "VideoLibrary.RefreshTVShow"),
}


def path_separator(path: str) -> str:
    """Return the separator a Kodi path uses: backslash for Windows paths, else slash."""
    return "\\" if "\\" in path and "/" not in path else "/"


def folder_of(file: str) -> str:
    """Return the folder of a Kodi file path, ending with its separator."""
    sep = path_separator(file)
    cut = file.rfind(sep)
    if cut < 0:
        raise UserError(f"Kodi path {file!r} has no folder part")
    return file[: cut + 1]


def as_directory(directory: str) -> str:
    """Return `directory` with the trailing separator Kodi requires for folders."""
    if not directory:
        raise UserError("an empty directory would make Kodi touch the whole library; give the item's folder")
    sep = path_separator(directory)
    return directory if directory.endswith(sep) else directory + sep


def seconds_from_time(value: dict[str, Any] | None) -> float:
    """Convert a Kodi time object {hours, minutes, seconds, milliseconds} into seconds."""
    if not value:
        return 0.0
    return (
        int(value.get("hours", 0)) * 3600
        + int(value.get("minutes", 0)) * 60
        + int(value.get("seconds", 0))
        + int(value.get("milliseconds", 0)) / 1000.0
    )


def time_from_seconds(seconds: float) -> dict[str, int]:
    """Convert seconds into a Kodi time object."""
    total_ms = max(0, round(seconds * 1000))
    hours, rest = divmod(total_ms, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    secs, millis = divmod(rest, 1000)
    return {"hours": hours, "minutes": minutes, "seconds": secs, "milliseconds": millis}


def unwrap_image_url(url: str) -> str:
    """The source path of a Kodi `image://<url-encoded path>/` texture url (other urls come back as they are)."""
    if url.startswith("image://") and url.endswith("/") and "@" not in url[8:].split("/", 1)[0]:
        return urllib.parse.unquote(url[len("image://"):-1])
    return url


def basic_auth(username: str, password: str) -> str:
    """Build a Basic Authorization header value (UTF-8 credentials)."""
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode("ascii")


class KodiClient:
    """One Kodi instance reached by JSON-RPC 2.0 over HTTP POST with Basic auth."""

    def __init__(
        self,
        name: str,
        url: str,
        username: str | None = None,
        password: str | None = None,
        *,
        session: aiohttp.ClientSession,
        timeout: float = 10.0,
        retries: int = 2,
        retry_backoff: float = 0.5,
    ) -> None:
        if not url.startswith(("http://", "https://")):
            raise UserError(f"player '{name}': Kodi url {url!r} must start with http:// or https://")
        self.name = name
        self.url = url
        self._headers = {"Authorization": basic_auth(username, password or "")} if username else {}
        self._session = session
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._retries = max(0, retries)
        self._retry_backoff = retry_backoff
        self._ids = itertools.count(1)

    async def call(self, method: str, params: dict[str, Any] | None = None) -> Any:
        """Call one JSON-RPC method and return its `result`, retrying connection errors and 5xx."""
        body: dict[str, Any] = {"jsonrpc": "2.0", "id": next(self._ids), "method": method}
        if params is not None:
            body["params"] = params
        last_problem = ""
        for attempt in range(self._retries + 1):
            if attempt:
                await asyncio.sleep(self._retry_backoff * (2 ** (attempt - 1)))
            try:
                async with self._session.post(
                    self.url, json=body, headers=self._headers, timeout=self._timeout
                ) as resp:
                    if resp.status == 401:
                        raise PlayerAuthError(
                            self.name,
                            f"Kodi at {self.url} rejected the username/password (HTTP 401); "
                            "check this player's username and password",
                        )
                    if resp.status >= 500:
                        last_problem = f"Kodi at {self.url} answered HTTP {resp.status}"
                        continue
                    if resp.status != 200:
                        raise PlayerRequestError(
                            self.name,
                            f"Kodi at {self.url} answered HTTP {resp.status} to {method}; "
                            "is the url the JSON-RPC endpoint (http://host:8080/jsonrpc)?",
                        )
                    text = await resp.text()
            except (aiohttp.ClientConnectionError, TimeoutError) as exc:
                last_problem = f"cannot reach Kodi at {self.url} ({_describe(exc)})"
                log.debug("kodi %s: %s attempt %d failed: %s", self.name, method, attempt + 1, last_problem)
                continue
            return self._result(method, text)
        raise PlayerUnreachable(self.name, last_problem)

    def _result(self, method: str, text: str) -> Any:
        """Decode a JSON-RPC answer, raising KodiError for an error object or a non-JSON body."""
        try:
            answer = json.loads(text)
        except ValueError as exc:
            raise KodiError(self.name, method, f"answer is not JSON: {text[:200]!r}") from exc
        if not isinstance(answer, dict):
            raise KodiError(self.name, method, f"answer is not a JSON-RPC object: {text[:200]!r}")
        error = answer.get("error")
        if error is not None:
            if isinstance(error, dict):
                raise KodiError(
                    self.name, method, str(error.get("message", "unknown error")), error.get("code"),
                    error.get("data"),
                )
            raise KodiError(self.name, method, str(error))
        if "result" not in answer:
            raise KodiError(self.name, method, f"answer has no result: {text[:200]!r}")
        return answer["result"]

    # -- status -------------------------------------------------------------------------------------

    async def ping(self) -> None:
        """Check that Kodi answers (JSONRPC.Ping returns "pong")."""
        result = await self.call("JSONRPC.Ping")
        if result != "pong":
            raise KodiError(self.name, "JSONRPC.Ping", f"expected 'pong', got {result!r}")

    async def version(self) -> dict[str, int]:
        """Return the JSON-RPC API version {major, minor, patch}."""
        result = await self.call("JSONRPC.Version")
        return dict(result.get("version", {})) if isinstance(result, dict) else {}

    async def is_scanning(self) -> bool:
        """Return whether Kodi's video library is scanning right now."""
        result = await self.call("XBMC.GetInfoBooleans", {"booleans": ["Library.IsScanning"]})
        return bool(isinstance(result, dict) and result.get("Library.IsScanning"))

    # -- library lookups ----------------------------------------------------------------------------

    async def _find(self, kind: str, folder: str, match: str, properties: list[str]) -> dict[str, Any] | None:
        """Return the library item of `kind` under `folder` whose `file` equals `match`."""
        method, key, _id_key, _refresh = _KIND_API[kind]
        params = {
            "properties": properties,
            "filter": {"field": "path", "operator": "startswith", "value": folder},
        }
        result = await self.call(method, params)
        items = (result.get(key) or []) if isinstance(result, dict) else []
        for item in items:
            if item.get("file") == match:
                return dict(item)
        return None

    async def find_movie_by_path(self, file: str) -> dict[str, Any] | None:
        """Return the movie whose file is exactly `file` (a path as Kodi sees it), or None."""
        return await self._find("movie", folder_of(file), file, MOVIE_PROPERTIES)

    async def find_episode_by_path(self, file: str) -> dict[str, Any] | None:
        """Return the episode whose file is exactly `file`, or None."""
        return await self._find("episode", folder_of(file), file, EPISODE_PROPERTIES)

    async def find_tvshow_by_path(self, folder: str) -> dict[str, Any] | None:
        """Return the TV show whose folder is `folder` (Kodi reports it as the show's `file`), or None."""
        directory = as_directory(folder)
        return await self._find("tvshow", directory, directory, TVSHOW_PROPERTIES)

    # -- library changes ----------------------------------------------------------------------------

    async def refresh_movie(self, movieid: int) -> None:
        """Re-read a movie's NFO and art (Kodi gives the movie a new id afterwards)."""
        await self.call("VideoLibrary.RefreshMovie", {"movieid": int(movieid), "ignorenfo": False})

    async def refresh_episode(self, episodeid: int) -> None:
        """Re-read an episode's NFO and thumb."""
        await self.call("VideoLibrary.RefreshEpisode", {"episodeid": int(episodeid), "ignorenfo": False})

    async def refresh_tvshow(self, tvshowid: int, refresh_episodes: bool = False) -> None:
        """Re-read a show's tvshow.nfo and art, and its episodes too when asked."""
        await self.call(
            "VideoLibrary.RefreshTVShow",
            {"tvshowid": int(tvshowid), "ignorenfo": False, "refreshepisodes": refresh_episodes},
        )

    async def scan(self, directory: str) -> None:
        """Scan one folder for new items (asynchronous in Kodi: wait for VideoLibrary.OnScanFinished)."""
        await self.call("VideoLibrary.Scan", {"directory": as_directory(directory), "showdialogs": False})

    async def clean(self, directory: str) -> None:
        """Remove library items under one folder whose files are gone."""
        await self.call(
            "VideoLibrary.Clean",
            {"directory": as_directory(directory), "showdialogs": False, "content": "video"},
        )

    async def publish_item(self, kind: str, file: str | None, folder: str) -> str:
        """Tell Kodi about a written item: refresh it if known ("refreshed"), else scan ("scanned").

        For episodes, `folder` is what gets scanned when Kodi lacks the episode (the show folder is
        the safe choice); for "tvshow", `file` is ignored and the show is looked up by `folder`.
        """
        if kind not in PUBLISH_KINDS:
            raise UserError(f"unknown item kind {kind!r}; expected one of {', '.join(PUBLISH_KINDS)}")
        if kind == "tvshow":
            show = await self.find_tvshow_by_path(folder)
            if show is not None:
                await self.refresh_tvshow(show["tvshowid"])
                return "refreshed"
        else:
            if not file:
                raise UserError(f"publishing a {kind} to Kodi needs its file path")
            if kind == "movie":
                movie = await self.find_movie_by_path(file)
                if movie is not None:
                    await self.refresh_movie(movie["movieid"])
                    return "refreshed"
            else:
                episode = await self.find_episode_by_path(file)
                if episode is not None:
                    await self.refresh_episode(episode["episodeid"])
                    return "refreshed"
        await self.scan(folder)
        return "scanned"

    async def remove_item(self, folder: str) -> None:
        """Have Kodi forget the items whose files were removed from `folder` (VideoLibrary.Clean on it)."""
        await self.clean(folder)

    async def remove_entry(self, kind: str, item_id: int) -> None:
        """Forget one movie or episode entry (VideoLibrary.RemoveMovie / RemoveEpisode); files are untouched."""
        if kind not in ("movie", "episode"):
            raise UserError(f"only a movie or an episode entry can be removed from Kodi, not {kind!r}")
        method = "VideoLibrary.RemoveMovie" if kind == "movie" else "VideoLibrary.RemoveEpisode"
        await self.call(method, {f"{kind}id": int(item_id)})

    async def entries_in(self, kind: str, folder: str) -> list[dict[str, Any]]:
        """Every movie or episode entry whose file lies under `folder` (id key, file, title)."""
        method, key, _id_key, _refresh = _KIND_API[kind]
        result = await self.call(method, {
            "properties": ["file", "title"],
            "filter": {"field": "path", "operator": "startswith", "value": as_directory(folder)},
        })
        return [dict(i) for i in ((result.get(key) or []) if isinstance(result, dict) else [])]

    async def textures_under(self, folder: str) -> list[dict[str, Any]]:
        """Cached thumbnails (Textures13.db) whose source lies under `folder`: textureid, url (as Kodi keeps
        it, `image://...` wrapped) and path (the source path unwrapped)."""
        result = await self.call("Textures.GetTextures", {
            "properties": ["url"],
            "filter": {"field": "url", "operator": "startswith", "value": as_directory(folder)},
        })
        textures = (result.get("textures") or []) if isinstance(result, dict) else []
        return [{**t, "path": unwrap_image_url(str(t.get("url", "")))} for t in textures]

    async def remove_texture(self, textureid: int) -> None:
        """Drop one cached thumbnail; Kodi caches the source again the next time it shows it."""
        await self.call("Textures.RemoveTexture", {"textureid": int(textureid)})

    async def drop_textures(self, paths: list[str]) -> list[str]:
        """Drop the cached thumbnails of these image paths (as Kodi sees them); returns the paths dropped."""
        dropped: list[str] = []
        folders = sorted({folder_of(p) for p in paths})
        wanted = set(paths)
        for folder in folders:
            for texture in await self.textures_under(folder):
                if texture["path"] in wanted:
                    await self.remove_texture(texture["textureid"])
                    dropped.append(texture["path"])
        return dropped

    async def set_movie_details(
        self, movieid: int, playcount: int | None = None, lastplayed: str | None = None,
        resume: dict[str, float] | None = None,
    ) -> None:
        """Set a movie's playcount, lastplayed ("YYYY-MM-DD HH:MM:SS") and resume {position, total}."""
        params = _details("movieid", movieid, playcount, lastplayed, resume)
        await self.call("VideoLibrary.SetMovieDetails", params)

    async def set_episode_details(
        self, episodeid: int, playcount: int | None = None, lastplayed: str | None = None,
        resume: dict[str, float] | None = None,
    ) -> None:
        """Set an episode's watched state, as set_movie_details does for movies."""
        params = _details("episodeid", episodeid, playcount, lastplayed, resume)
        await self.call("VideoLibrary.SetEpisodeDetails", params)

    # -- playback -----------------------------------------------------------------------------------

    async def active_video_player(self) -> dict[str, Any] | None:
        """Return what the video player plays: playerid, file, title, type, id, position, total, state."""
        players = await self.call("Player.GetActivePlayers")
        video = next((p for p in players or [] if isinstance(p, dict) and p.get("type") == "video"), None)
        if video is None:
            return None
        playerid = video["playerid"]
        got = await self.call(
            "Player.GetItem", {"playerid": playerid, "properties": ["file", "title", "showtitle"]}
        )
        item = got.get("item", {}) if isinstance(got, dict) else {}
        props = await self.call(
            "Player.GetProperties",
            {"playerid": playerid, "properties": ["time", "totaltime", "percentage", "speed"]},
        )
        return {
            "playerid": playerid,
            "file": item.get("file", ""),
            "title": item.get("title") or item.get("label", ""),
            "type": item.get("type", "unknown"),
            "id": item.get("id"),
            "position": seconds_from_time(props.get("time")),
            "total": seconds_from_time(props.get("totaltime")),
            "percentage": float(props.get("percentage", 0.0)),
            "state": "paused" if props.get("speed", 0) == 0 else "playing",
        }

    async def open_file(self, file: str, resume_seconds: float | None = None) -> None:
        """Play `file`, starting at `resume_seconds` when given (Player.Open with a time object)."""
        params: dict[str, Any] = {"item": {"file": file}}
        if resume_seconds:
            params["options"] = {"resume": time_from_seconds(resume_seconds)}
        await self.call("Player.Open", params)

    async def stop(self, playerid: int) -> None:
        """Stop one player."""
        await self.call("Player.Stop", {"playerid": int(playerid)})

    async def notify(self, title: str, message: str) -> None:
        """Show a toast on Kodi's screen."""
        await self.call("GUI.ShowNotification", {"title": title, "message": message})


def _details(
    id_key: str, item_id: int, playcount: int | None, lastplayed: str | None, resume: dict[str, float] | None
) -> dict[str, Any]:
    """Build Set*Details params, refusing a call that would change nothing."""
    params: dict[str, Any] = {id_key: int(item_id)}
    if playcount is not None:
        params["playcount"] = int(playcount)
    if lastplayed is not None:
        params["lastplayed"] = lastplayed
    if resume is not None:
        if "position" not in resume:
            raise UserError(f"resume must have a position in seconds, got {resume!r}")
        params["resume"] = {"position": float(resume["position"]), "total": float(resume.get("total", 0.0))}
    if len(params) == 1:
        raise UserError("setting details needs at least one of playcount, lastplayed, resume")
    return params


def _describe(exc: BaseException) -> str:
    """Return a short human description of a connection error."""
    if isinstance(exc, TimeoutError):
        return "timed out"
    return str(exc) or type(exc).__name__
