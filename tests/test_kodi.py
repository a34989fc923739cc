"""KodiClient and KodiEventListener against the fake Kodi on 127.0.0.1."""

from __future__ import annotations

import asyncio
import base64
import socket
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from fakes.kodi import FakeKodi, start_fake_kodi

from agent.errors import UserError
from agent.players import KodiError, PlayerAuthError, PlayerTimeout, PlayerUnreachable
from agent.players.kodi import KodiClient, as_directory, folder_of, seconds_from_time, time_from_seconds
from agent.players.kodi_events import KodiEventListener, kodi_ws_url

MATRIX = "/media/Movies/The Matrix (1999)/The Matrix (1999).mkv"
MATRIX_DIR = "/media/Movies/The Matrix (1999)/"


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    """One client session per test."""
    async with aiohttp.ClientSession() as s:
        yield s


@pytest.fixture
async def kodi(aiohttp_server: Any) -> FakeKodi:
    """A fake Kodi with Basic auth kodi/secret and a notification socket."""
    return await start_fake_kodi(aiohttp_server, username="kodi", password="secret")


def client(fake: FakeKodi, session: aiohttp.ClientSession, **kw: Any) -> KodiClient:
    """A client for the fake with the right credentials unless overridden."""
    kw.setdefault("username", "kodi")
    kw.setdefault("password", "secret")
    return KodiClient("living-room", fake.url, session=session, retry_backoff=0.01, **kw)


def free_port() -> int:
    """A loopback port nothing listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def until(predicate: Any, limit: float = 3.0) -> None:
    """Poll a condition with a deadline."""
    async with asyncio.timeout(limit):
        while not predicate():
            await asyncio.sleep(0.01)


# -- paths and time helpers ---------------------------------------------------------------------------


def test_path_helpers_keep_the_separator_kodi_uses() -> None:
    """Folders end with the path's own separator; Windows and smb paths work."""
    assert folder_of(MATRIX) == MATRIX_DIR
    assert folder_of("smb://nas/movies/X (1999)/X.mkv") == "smb://nas/movies/X (1999)/"
    assert folder_of("D:\\Movies\\X (1999)\\X.mkv") == "D:\\Movies\\X (1999)\\"
    assert as_directory("/media/Movies/X") == "/media/Movies/X/"
    assert as_directory("D:\\Movies\\X") == "D:\\Movies\\X\\"
    with pytest.raises(UserError, match="whole library"):
        as_directory("")
    with pytest.raises(UserError, match="no folder"):
        folder_of("movie.mkv")


def test_time_objects_round_trip() -> None:
    """Seconds convert to Kodi time objects and back."""
    assert time_from_seconds(3723.5) == {"hours": 1, "minutes": 2, "seconds": 3, "milliseconds": 500}
    assert seconds_from_time(time_from_seconds(3723.5)) == 3723.5


def test_ws_url_derives_from_http_url() -> None:
    """The notification socket is ws://host:9090/jsonrpc unless another port is configured."""
    assert kodi_ws_url("http://kodi.lan:8080/jsonrpc") == "ws://kodi.lan:9090/jsonrpc"
    assert kodi_ws_url("https://10.0.0.5/jsonrpc", port=9999) == "ws://10.0.0.5:9999/jsonrpc"
    with pytest.raises(UserError):
        kodi_ws_url("not a url")


# -- calls ----------------------------------------------------------------------------------------------


async def test_call_sends_basic_auth_and_jsonrpc(kodi: FakeKodi, session: aiohttp.ClientSession) -> None:
    """Ping works and carries the Basic auth header."""
    await client(kodi, session).ping()
    call = kodi.calls_to("JSONRPC.Ping")[0]
    assert call.auth == "Basic " + base64.b64encode(b"kodi:secret").decode()


async def test_wrong_password_says_so(kodi: FakeKodi, session: aiohttp.ClientSession) -> None:
    """HTTP 401 becomes an error naming the username/password."""
    with pytest.raises(PlayerAuthError, match="username/password") as info:
        await client(kodi, session, password="wrong").ping()
    assert info.value.player == "living-room"


async def test_jsonrpc_error_names_method_and_message(kodi: FakeKodi, session: aiohttp.ClientSession) -> None:
    """A JSON-RPC error object becomes KodiError with method and message."""
    with pytest.raises(KodiError, match=r"Nope\.Nothing failed: Method not found") as info:
        await client(kodi, session).call("Nope.Nothing")
    assert info.value.method == "Nope.Nothing"
    assert info.value.code == -32601


async def test_unreachable_kodi_raises_player_unreachable(session: aiohttp.ClientSession) -> None:
    """Connection refused after the retries is PlayerUnreachable, a retryable error."""
    c = KodiClient("attic", f"http://127.0.0.1:{free_port()}/jsonrpc", session=session, retry_backoff=0.01)
    with pytest.raises(PlayerUnreachable, match="cannot reach Kodi") as info:
        await c.ping()
    assert info.value.player == "attic"
    assert info.value.delay


async def test_5xx_is_retried_then_succeeds(kodi: FakeKodi, session: aiohttp.ClientSession) -> None:
    """Two 503s then success: the call goes through on the third attempt."""
    kodi.fail_status = [503, 503]
    await client(kodi, session, retries=2).ping()
    assert kodi.fail_status == []
    assert len(kodi.calls_to("JSONRPC.Ping")) == 1


async def test_persistent_5xx_is_unreachable(kodi: FakeKodi, session: aiohttp.ClientSession) -> None:
    """5xx on every attempt gives PlayerUnreachable naming the status."""
    kodi.fail_status = [500, 500, 500]
    with pytest.raises(PlayerUnreachable, match="HTTP 500"):
        await client(kodi, session, retries=2).ping()


async def test_timeout_is_unreachable(aiohttp_server: Any, session: aiohttp.ClientSession) -> None:
    """A Kodi that never answers times out into PlayerUnreachable."""
    release = asyncio.Event()

    async def hang(_request: aiohttp.web.Request) -> aiohttp.web.Response:
        """Never answer until the test ends."""
        await release.wait()
        return aiohttp.web.json_response({})

    app = aiohttp.web.Application()
    app.router.add_post("/jsonrpc", hang)
    server = await aiohttp_server(app)
    c = KodiClient("slow", str(server.make_url("/jsonrpc")), session=session, timeout=0.2, retries=0)
    with pytest.raises(PlayerUnreachable, match="timed out"):
        await c.ping()
    release.set()


# -- library --------------------------------------------------------------------------------------------


async def test_find_movie_filters_by_folder_and_matches_file(
    kodi: FakeKodi, session: aiohttp.ClientSession
) -> None:
    """GetMovies is filtered by path startswith the folder; only the exact file matches."""
    kodi.add_item("movie", MATRIX_DIR + "The Matrix (1999) - sample.mkv", "Sample")
    movieid = kodi.add_item("movie", MATRIX, "The Matrix", playcount=2, uniqueid={"imdb": "tt0133093"})
    movie = await client(kodi, session).find_movie_by_path(MATRIX)
    assert movie is not None and movie["movieid"] == movieid
    assert movie["playcount"] == 2 and movie["imdbnumber"] == "tt0133093"
    params = kodi.calls_to("VideoLibrary.GetMovies")[0].params
    assert params["filter"] == {"field": "path", "operator": "startswith", "value": MATRIX_DIR}
    assert set(params["properties"]) >= {"file", "title", "playcount", "lastplayed", "resume", "uniqueid"}
    assert await client(kodi, session).find_movie_by_path(MATRIX_DIR + "missing.mkv") is None


async def test_publish_known_movie_refreshes_with_ignorenfo_false(
    kodi: FakeKodi, session: aiohttp.ClientSession
) -> None:
    """A movie Kodi has is refreshed (ignorenfo false, explicitly), not scanned."""
    movieid = kodi.add_item("movie", MATRIX, "The Matrix")
    assert await client(kodi, session).publish_item("movie", MATRIX, MATRIX_DIR) == "refreshed"
    assert kodi.calls_to("VideoLibrary.RefreshMovie")[0].params == {"movieid": movieid, "ignorenfo": False}
    assert kodi.calls_to("VideoLibrary.Scan") == []


async def test_publish_new_movie_scans_its_folder(kodi: FakeKodi, session: aiohttp.ClientSession) -> None:
    """A movie Kodi lacks makes a scan of the item's folder with a trailing slash, which adds it."""
    kodi.add_file(MATRIX, "The Matrix")
    kodi.add_file("/media/Movies/Other (2001)/Other (2001).mkv", "Other")
    c = client(kodi, session)
    assert await c.publish_item("movie", MATRIX, MATRIX_DIR.rstrip("/")) == "scanned"
    assert kodi.calls_to("VideoLibrary.Scan")[0].params == {"directory": MATRIX_DIR, "showdialogs": False}
    await kodi.scans_done()
    assert await c.find_movie_by_path(MATRIX) is not None
    assert kodi.find("movie", "/media/Movies/Other (2001)/Other (2001).mkv") is None


async def test_publish_episode_and_tvshow(kodi: FakeKodi, session: aiohttp.ClientSession) -> None:
    """Episodes refresh by file or scan; shows refresh by folder with GetTVShows/RefreshTVShow."""
    show_dir = "/media/TV/Severance/"
    ep = show_dir + "Season 01/Severance - S01E01.mkv"
    c = client(kodi, session)
    kodi.add_file(ep, "Good News About Hell", kind="episode", show_folder=show_dir, season=1, episode=1)
    assert await c.publish_item("episode", ep, show_dir) == "scanned"
    await kodi.scans_done()
    episode = await c.find_episode_by_path(ep)
    assert episode is not None and episode["season"] == 1
    assert await c.publish_item("episode", ep, show_dir) == "refreshed"
    assert kodi.calls_to("VideoLibrary.RefreshEpisode")[0].params == {
        "episodeid": episode["episodeid"],
        "ignorenfo": False,
    }
    assert await c.publish_item("tvshow", None, show_dir.rstrip("/")) == "refreshed"
    refresh = kodi.calls_to("VideoLibrary.RefreshTVShow")[0].params
    assert refresh["tvshowid"] == episode["tvshowid"] and refresh["ignorenfo"] is False
    assert kodi.calls_to("VideoLibrary.GetTVShows")[0].params["filter"]["value"] == show_dir


async def test_publish_rejects_bad_input(kodi: FakeKodi, session: aiohttp.ClientSession) -> None:
    """Unknown kinds, a missing file and an empty folder are clear errors, not library-wide scans."""
    c = client(kodi, session)
    with pytest.raises(UserError, match="unknown item kind"):
        await c.publish_item("album", MATRIX, MATRIX_DIR)
    with pytest.raises(UserError, match="file path"):
        await c.publish_item("movie", None, MATRIX_DIR)
    with pytest.raises(UserError, match="whole library"):
        await c.publish_item("movie", "/x/y.mkv", "")
    assert kodi.calls_to("VideoLibrary.Scan") == []


async def test_remove_item_cleans_that_folder(kodi: FakeKodi, session: aiohttp.ClientSession) -> None:
    """Clean is limited to the folder, content video, no dialogs; gone files leave the library."""
    kodi.add_item("movie", MATRIX, "The Matrix")
    kodi.remove_file(MATRIX)
    await client(kodi, session).remove_item(MATRIX_DIR)
    params = kodi.calls_to("VideoLibrary.Clean")[0].params
    assert params == {"directory": MATRIX_DIR, "showdialogs": False, "content": "video"}
    assert kodi.find("movie", MATRIX) is None


async def test_set_details_updates_watched_state(kodi: FakeKodi, session: aiohttp.ClientSession) -> None:
    """SetMovieDetails sends only the given fields; the fake stores them."""
    movieid = kodi.add_item("movie", MATRIX, "The Matrix")
    c = client(kodi, session)
    await c.set_movie_details(
        movieid, playcount=1, lastplayed="2026-01-02 03:04:05", resume={"position": 1800.0, "total": 8160.0}
    )
    movie = await c.find_movie_by_path(MATRIX)
    assert movie is not None
    assert (movie["playcount"], movie["lastplayed"]) == (1, "2026-01-02 03:04:05")
    assert movie["resume"] == {"position": 1800.0, "total": 8160.0}
    await c.set_movie_details(movieid, playcount=0)
    assert kodi.calls_to("VideoLibrary.SetMovieDetails")[-1].params == {"movieid": movieid, "playcount": 0}
    with pytest.raises(UserError, match="at least one"):
        await c.set_episode_details(5)


# -- playback -------------------------------------------------------------------------------------------


async def test_active_video_player_reports_position(kodi: FakeKodi, session: aiohttp.ClientSession) -> None:
    """The playing file, its position/total in seconds and paused state come back."""
    c = client(kodi, session)
    assert await c.active_video_player() is None
    movieid = kodi.add_item("movie", MATRIX, "The Matrix")
    kodi.play(MATRIX, position=1234.5, total=8160.0, paused=True)
    playing = await c.active_video_player()
    assert playing is not None
    assert playing["file"] == MATRIX and playing["title"] == "The Matrix"
    assert (playing["type"], playing["id"]) == ("movie", movieid)
    assert playing["position"] == 1234.5 and playing["total"] == 8160.0
    assert playing["state"] == "paused"


async def test_open_file_resumes_with_time_object(kodi: FakeKodi, session: aiohttp.ClientSession) -> None:
    """Player.Open sends options.resume as a time object and playback starts there; stop ends it."""
    c = client(kodi, session)
    await c.open_file(MATRIX, resume_seconds=3723.5)
    assert kodi.calls_to("Player.Open")[0].params == {
        "item": {"file": MATRIX},
        "options": {"resume": {"hours": 1, "minutes": 2, "seconds": 3, "milliseconds": 500}},
    }
    playing = await c.active_video_player()
    assert playing is not None and playing["position"] == 3723.5
    await c.stop(playing["playerid"])
    assert await c.active_video_player() is None
    await c.notify("Metarr", "Artwork updated")
    assert kodi.notifications == [("Metarr", "Artwork updated")]


# -- notifications --------------------------------------------------------------------------------------


class Recorder:
    """Collects notifications and polls for the listener."""

    def __init__(self) -> None:
        self.events: list[tuple[str, dict[str, Any]]] = []
        self.polls = 0
        self.got = asyncio.Event()

    async def on_event(self, method: str, params: dict[str, Any]) -> None:
        """Record one notification."""
        self.events.append((method, params))
        self.got.set()

    async def poll(self) -> None:
        """Count polls."""
        self.polls += 1

    def methods(self) -> list[str]:
        """The notification names so far."""
        return [m for m, _ in self.events]


async def test_listener_receives_pushed_notifications(kodi: FakeKodi, session: aiohttp.ClientSession) -> None:
    """A pushed Player.OnPlay reaches on_event with its params."""
    rec = Recorder()
    listener = KodiEventListener("living-room", kodi.ws_url, session, rec.on_event, rec.poll)
    listener.start()
    try:
        async with asyncio.timeout(3):
            await listener.wait_connected()
        await kodi.push("Player.OnPlay", {"item": {"id": 7, "type": "movie"}, "player": {"playerid": 1}})
        async with asyncio.timeout(3):
            await rec.got.wait()
        assert rec.events[0] == (
            "Player.OnPlay",
            {"sender": "xbmc", "data": {"item": {"id": 7, "type": "movie"}, "player": {"playerid": 1}}},
        )
        assert rec.polls == 0
    finally:
        await listener.stop()
    assert not listener.connected


async def test_listener_reconnects_after_socket_closes(
    kodi: FakeKodi, session: aiohttp.ClientSession
) -> None:
    """When Kodi closes the socket the listener polls, then reconnects after a short backoff."""
    rec = Recorder()
    listener = KodiEventListener(
        "living-room", kodi.ws_url, session, rec.on_event, rec.poll, poll_interval=0.05, backoff_start=0.1
    )
    listener.start()
    try:
        await until(lambda: listener.connected)
        await kodi.close_sockets()
        await until(lambda: listener.connects == 2 and listener.connected)
        assert kodi.ws_connects == 2
        assert rec.polls >= 1
        await kodi.push("VideoLibrary.OnScanFinished")
        await until(lambda: "VideoLibrary.OnScanFinished" in rec.methods())
    finally:
        await listener.stop()


async def test_listener_polls_while_ws_port_closed(session: aiohttp.ClientSession) -> None:
    """With nothing on the WS port the listener never connects and calls poll() repeatedly."""
    rec = Recorder()
    listener = KodiEventListener(
        "attic",
        f"ws://127.0.0.1:{free_port()}/jsonrpc",
        session,
        rec.on_event,
        rec.poll,
        poll_interval=0.02,
        backoff_start=0.05,
        backoff_max=0.1,
    )
    listener.start()
    try:
        await until(lambda: rec.polls >= 3)
        assert not listener.connected and listener.connects == 0
        assert listener.last_error
    finally:
        await listener.stop()


async def test_handler_errors_do_not_stop_the_listener(
    kodi: FakeKodi, session: aiohttp.ClientSession
) -> None:
    """A failing on_event is logged; later notifications still arrive."""
    seen: list[str] = []

    async def flaky(method: str, _params: dict[str, Any]) -> None:
        """Fail on the first notification only."""
        seen.append(method)
        if len(seen) == 1:
            raise RuntimeError("handler bug")

    listener = KodiEventListener("living-room", kodi.ws_url, session, flaky)
    listener.start()
    try:
        await until(lambda: listener.connected)
        await kodi.push("Player.OnPlay")
        await kodi.push("Player.OnStop")
        await until(lambda: seen == ["Player.OnPlay", "Player.OnStop"])
        assert listener.connected
    finally:
        await listener.stop()


async def test_wait_for_scan_finished_over_socket(kodi: FakeKodi, session: aiohttp.ClientSession) -> None:
    """Registering before the scan catches OnScanFinished; the movie is then in the library."""
    rec = Recorder()
    kodi.scan_delay = 0.05
    kodi.add_file(MATRIX, "The Matrix")
    c = client(kodi, session)
    listener = KodiEventListener("living-room", kodi.ws_url, session, rec.on_event)
    listener.start()
    try:
        await until(lambda: listener.connected)
        finished = listener.wait_for("VideoLibrary.OnScanFinished", 3, busy=c.is_scanning)
        await c.scan(MATRIX_DIR)
        assert await finished == {"sender": "xbmc", "data": None}
        assert await c.find_movie_by_path(MATRIX) is not None
        assert kodi.calls_to("XBMC.GetInfoBooleans") == []
    finally:
        await listener.stop()


async def test_wait_for_falls_back_to_is_scanning(
    aiohttp_server: Any, session: aiohttp.ClientSession
) -> None:
    """With the socket down, wait_for polls Library.IsScanning until the scan is over."""
    kodi = await start_fake_kodi(aiohttp_server, with_ws=False, scan_delay=0.2)
    kodi.add_file(MATRIX, "The Matrix")
    c = client(kodi, session, username=None)
    rec = Recorder()
    listener = KodiEventListener("attic", f"ws://127.0.0.1:{free_port()}/jsonrpc", session, rec.on_event)
    listener.start()
    try:
        finished = listener.wait_for("VideoLibrary.OnScanFinished", 3, busy=c.is_scanning, busy_interval=0.02)
        await c.scan(MATRIX_DIR)
        assert await finished == {}
        assert kodi.find("movie", MATRIX) is not None
        assert len(kodi.calls_to("XBMC.GetInfoBooleans")) >= 2
    finally:
        await listener.stop()


async def test_wait_for_times_out_clearly(kodi: FakeKodi, session: aiohttp.ClientSession) -> None:
    """No notification within the limit raises PlayerTimeout naming the method."""
    listener = KodiEventListener("living-room", kodi.ws_url, session, Recorder().on_event)
    listener.start()
    try:
        await until(lambda: listener.connected)
        with pytest.raises(PlayerTimeout, match=r"VideoLibrary\.OnScanFinished"):
            await listener.wait_for("VideoLibrary.OnScanFinished", 0.1)
    finally:
        await listener.stop()


async def test_fallback_needs_two_idle_answers_when_busy_never_seen(
    aiohttp_server: Any, session: aiohttp.ClientSession
) -> None:
    """A scan too quick to be seen busy counts as finished only after two idle answers in a row."""
    kodi = await start_fake_kodi(aiohttp_server, with_ws=False)
    c = client(kodi, session, username=None)
    listener = KodiEventListener(
        "attic", f"ws://127.0.0.1:{free_port()}/jsonrpc", session, Recorder().on_event
    )
    finished = listener.wait_for("VideoLibrary.OnScanFinished", 3, busy=c.is_scanning, busy_interval=0.01)
    await c.scan(MATRIX_DIR)
    await kodi.scans_done()
    assert await finished == {}
    assert len(kodi.calls_to("XBMC.GetInfoBooleans")) == 2
