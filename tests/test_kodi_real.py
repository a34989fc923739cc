"""A real headless Kodi (Debian kodi + Xvfb): the agent publishes, tells Kodi, keeps watched state on upgrade.

Kodi's web server binds 0.0.0.0 with no option to narrow it, so Kodi runs in a private network namespace
(`unshare -n`, root only) with a namespace-internal veth pair (its web server needs a non-loopback IPv4
interface). Its HTTP (8080) and notification (9090) ports are bridged out through unix sockets in the
test's folder to ephemeral 127.0.0.1 ports. Run as a script with `--inner WORK` it is that namespace side.
"""

from __future__ import annotations

import asyncio
import contextlib
import glob
import json
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

KODI_BINS = sorted(glob.glob("/usr/lib/*/kodi/kodi.bin"))
START_TIMEOUT = 40.0
PORTS = {"http": 8080, "tcp": 9090}
GUISETTINGS = """<settings version="2">
    <setting id="services.webserver">{web}</setting>
    <setting id="services.webserverport">8080</setting>
    <setting id="services.webserverauthentication">false</setting>
    <setting id="services.esenabled">true</setting>
    <setting id="services.esallinterfaces">false</setting>
    <setting id="services.zeroconf">false</setting>
    <setting id="services.wsdiscovery">false</setting>
    <setting id="services.upnp">false</setting>
    <setting id="services.airplay">false</setting>
    <setting id="general.addonupdates">2</setting>
    <setting id="general.addonnotifications">false</setting>
</settings>
"""
SOURCES = """<sources><video><default pathversion="1"></default>
  <source><name>Movies</name><path pathversion="1">{path}/</path><allowsharing>true</allowsharing></source>
</video></sources>
"""
ADVANCEDSETTINGS = '<advancedsettings version="1.0"><loglevel>1</loglevel></advancedsettings>\n'


# -- namespace side (a separate process started with `unshare -n`) ------------------------------------------


def _inner(work: Path) -> None:
    """Bring up loopback + veth, start Xvfb and Kodi, bridge its ports to unix sockets until SIGTERM."""
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    web = (
        subprocess.run(
            "ip link add kodiveth0 type veth peer name kodiveth1 && ip addr add 127.0.0.2/32 dev kodiveth0"
            " && ip link set kodiveth0 up && ip link set kodiveth1 up",
            shell=True,
            check=False,
        ).returncode
        == 0
    )
    home = work / "home"
    userdata = home / ".kodi" / "userdata"
    userdata.mkdir(parents=True)
    (userdata / "guisettings.xml").write_text(GUISETTINGS.format(web="true" if web else "false"))
    (userdata / "sources.xml").write_text(SOURCES.format(path=work / "media" / "movies"))  # /image/ serves it
    (userdata / "advancedsettings.xml").write_text(ADVANCEDSETTINGS)  # debug log: the scanner's decisions
    (home / ".asoundrc").write_text("pcm.!default { type null }\n")  # no 6 s ALSA retries at start
    read_fd, write_fd = os.pipe()
    xvfb = subprocess.Popen(
        ["Xvfb", "-displayfd", str(write_fd), "-screen", "0", "1280x720x24", "-nolisten", "tcp"],
        pass_fds=(write_fd,),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    os.close(write_fd)
    display = os.read(read_fd, 64).decode().strip()
    env = {**os.environ, "HOME": str(home), "DISPLAY": f":{display}"}
    with open(work / "kodi.out", "wb") as out:
        kodi = subprocess.Popen(
            [KODI_BINS[0], "--standalone", "--windowing=x11"], env=env, stdout=out, stderr=subprocess.STDOUT
        )
    try:
        asyncio.run(_bridge(work, web))
    finally:
        kodi.terminate()
        try:
            kodi.wait(10)
        except subprocess.TimeoutExpired:
            kodi.kill()
        xvfb.terminate()
        xvfb.wait(5)


async def _bridge(work: Path, web: bool) -> None:
    """Serve <work>/<name>.sock -> 127.0.0.1:<port> for each Kodi port, then wait for SIGTERM."""
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)

    def handler(port: int) -> Any:
        """Pipe one unix connection to Kodi's port."""

        async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            """Connect to Kodi and copy both ways."""
            try:
                up_reader, up_writer = await asyncio.open_connection("127.0.0.1", port)
            except OSError:
                writer.close()
                return
            await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))

        return serve

    servers = [
        await asyncio.start_unix_server(handler(port), str(work / f"{name}.sock"))
        for name, port in PORTS.items()
    ]
    (work / "ready.json").write_text(json.dumps({"webserver": web}))
    await stop.wait()
    for server in servers:
        server.close()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Copy until EOF, then close the writing side."""
    with contextlib.suppress(OSError, ConnectionError):
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    with contextlib.suppress(OSError, ConnectionError):
        writer.close()


# -- test side ----------------------------------------------------------------------------------------------


class Forwarder:
    """127.0.0.1:<ephemeral> in the test's namespace -> a unix socket, one thread per direction."""

    def __init__(self, unix_path: Path) -> None:
        self.unix_path = unix_path
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(32)
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        """Accept connections until closed."""
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            upstream = socket.socket(socket.AF_UNIX)
            try:
                upstream.connect(str(self.unix_path))
            except OSError:
                conn.close()
                continue
            for src, dst in ((conn, upstream), (upstream, conn)):
                threading.Thread(target=self._pump, args=(src, dst), daemon=True).start()

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket) -> None:
        """Copy one direction."""
        with contextlib.suppress(OSError):
            while data := src.recv(65536):
                dst.sendall(data)
        with contextlib.suppress(OSError):
            dst.shutdown(socket.SHUT_WR)

    def close(self) -> None:
        """Stop accepting."""
        self.listener.close()


@dataclass
class RealKodi:
    """A running Kodi as the agent reaches it."""

    url: str
    ws_port: int
    media: Path
    work: Path


def _rpc(url: str, method: str, params: dict[str, Any] | None = None) -> Any:
    """One synchronous JSON-RPC call (fixture set-up only)."""
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params or {}}).encode()
    request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=5) as resp:
        return json.loads(resp.read())["result"]


def _wait(predicate: Any, what: str, deadline: float) -> Any:
    """Poll a condition until a deadline (Kodi start-up)."""
    while True:
        with contextlib.suppress(Exception):
            value = predicate()
            if value:
                return value
        if time.monotonic() > deadline:
            raise RuntimeError(f"real Kodi: {what} within {START_TIMEOUT:g} s")
        time.sleep(0.1)


def _video_db(userdata: Path) -> Path | None:
    """Kodi's newest MyVideos*.db once its version row exists."""
    dbs = sorted(userdata.glob("Database/MyVideos*.db"), key=lambda p: int(p.stem.removeprefix("MyVideos")))
    if not dbs:
        return None
    with contextlib.closing(sqlite3.connect(dbs[-1], timeout=10)) as conn:
        return dbs[-1] if conn.execute("SELECT COUNT(*) FROM version").fetchone()[0] else None


def _why_not() -> str | None:
    """Why a real Kodi cannot run here, or None."""
    if not KODI_BINS:
        return "Kodi is not installed (/usr/lib/*/kodi/kodi.bin; apt-get install kodi xvfb)"
    if shutil.which("Xvfb") is None or shutil.which("ip") is None:
        return "Xvfb or iproute2 is missing"
    if os.geteuid() != 0 or subprocess.run(["unshare", "-n", "true"], capture_output=True).returncode != 0:
        return (
            "needs root and `unshare -n`: Kodi's web server binds 0.0.0.0 and must stay inside a private "
            "network namespace"
        )
    return None


@pytest.fixture(scope="session")
def real_kodi() -> Iterator[RealKodi]:
    """One headless Kodi per test session, its library path set to metadata.local + folder names."""
    reason = _why_not()
    if reason:
        pytest.skip(reason)
    work = Path(tempfile.mkdtemp(prefix="metarr-kodi-"))
    media = work / "media" / "movies"
    media.mkdir(parents=True)
    proc = subprocess.Popen(
        ["unshare", "-n", sys.executable, __file__, "--inner", str(work)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    forwarders: list[Forwarder] = []
    try:
        deadline = time.monotonic() + START_TIMEOUT
        ready = _wait(
            lambda: json.loads((work / "ready.json").read_text()), "namespace bridge not ready", deadline
        )
        if not ready["webserver"]:
            pytest.skip(
                "no veth pair in the network namespace, so Kodi's web server (HTTP JSON-RPC) cannot start"
            )
        forwarders = [Forwarder(work / "http.sock"), Forwarder(work / "tcp.sock")]
        url = f"http://127.0.0.1:{forwarders[0].port}/jsonrpc"
        _wait(lambda: _rpc(url, "JSONRPC.Ping") == "pong", "JSON-RPC over HTTP did not answer", deadline)
        db = _wait(lambda: _video_db(work / "home" / ".kodi" / "userdata"), "no video database", deadline)
        with contextlib.closing(sqlite3.connect(db, timeout=10)) as conn:
            conn.execute(
                "INSERT INTO path (strPath, strContent, strScraper, scanRecursive, useFolderNames,"
                " strSettings, noUpdate, exclude, allAudio, dateAdded)"
                " VALUES (?, 'movies', 'metadata.local', 2147483647, 1, '', 0, 0, 0, datetime('now'))",
                (str(media) + "/",),
            )
            conn.commit()
        yield RealKodi(url=url, ws_port=forwarders[1].port, media=media, work=work)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        for forwarder in forwarders:
            forwarder.close()
        if not os.environ.get("METARR_KODI_KEEP"):
            shutil.rmtree(work, ignore_errors=True)


# -- the test -----------------------------------------------------------------------------------------------


def _insert_movie(conn: sqlite3.Connection, folder: str, file: str) -> int:
    """The Matrix, enriched, in the Movies library."""
    lib = conn.execute("SELECT id FROM libraries WHERE name = 'Movies'").fetchone()["id"]
    return conn.execute(
        "INSERT INTO movies (library_id, path, file, title, year, plot, tmdb_id, imdb_id, status, details,"
        " created_at, updated_at)"
        " VALUES (?, ?, ?, 'The Matrix', 1999, ?, 603, 'tt0133093', 'enriched', ?, 0, 0)",
        (lib, folder, file, PLOT, json.dumps({"genres": ["Action", "Science Fiction"]})),
    ).lastrowid


PLOT = "A computer hacker learns about the true nature of his reality."
MOVIE_PROPS = ["title", "year", "plot", "uniqueid", "imdbnumber", "art", "file", "playcount", "resume"]


async def _publish_nfo(agent: Any, movie_id: int, video: Path) -> None:
    """Write <video stem>.nfo from the movie's fields with the agent's renderer (as the publisher does)."""
    from agent.fsutil import atomic_write
    from agent.nfo.render import render_nfo
    from agent.store import media

    item = await agent.db.read(media.load, "movie", movie_id)
    nfo = video.with_suffix(".nfo")
    existing = nfo.read_bytes() if nfo.exists() else None
    atomic_write(nfo, render_nfo("movie", item.fields, existing))


async def _drain(agent: Any, job_id: int, limit: float = 30.0) -> Any:
    """Run the queue until a job is finished (restores may wait for Kodi's scan)."""
    deadline = time.monotonic() + limit
    while True:
        await agent.queue.run_until_idle()
        job = await agent.queue.get(job_id)
        if job.status in ("completed", "failed", "cancelled") or time.monotonic() > deadline:
            return job
        await asyncio.sleep(0.2)


async def _movie(kodi: Any, file: Path, limit: float = 20.0) -> dict[str, Any]:
    """Kodi's movie for this file, waiting for its scan."""
    deadline = time.monotonic() + limit
    while True:
        found = await kodi.call(
            "VideoLibrary.GetMovies",
            {
                "properties": MOVIE_PROPS,
                "filter": {"field": "path", "operator": "startswith", "value": str(file.parent) + "/"},
            },
        )
        for movie in found.get("movies") or []:
            if movie["file"] == str(file):
                return movie
        assert time.monotonic() < deadline, f"Kodi never listed {file}: {found}"
        await asyncio.sleep(0.2)


async def _all_movies(kodi: Any) -> list[dict[str, Any]]:
    """Every movie entry in Kodi's library: id, title, file, playcount, resume."""
    found = await kodi.call("VideoLibrary.GetMovies", {"properties": ["title", "file", "playcount", "resume"]})
    return sorted(found.get("movies") or [], key=lambda m: m["movieid"])


async def _cache_texture(kodi: RealKodi, art: str) -> None:
    """Have Kodi cache an art url as a thumbnail the way a skin showing it would (its web /image/ handler)."""
    base = kodi.url.removesuffix("/jsonrpc")
    url = f"{base}/image/{urllib.parse.quote(art, safe='')}"
    await asyncio.to_thread(lambda: urllib.request.urlopen(url, timeout=10).read())


@pytest.mark.kodi
async def test_agent_publishes_to_real_kodi_and_keeps_watched_state(
    real_kodi: RealKodi, make_client: Any, tmp_path: Path
) -> None:
    """Publish + notify -> Kodi lists our metadata and art; an upgrade restores playcount and resume."""
    from conftest import make_config, wait_for
    from fakes.images import jpeg_bytes

    libraries = [{"name": "Movies", "kind": "movies", "path": str(real_kodi.media), "watch": "off"}]
    players = [{"name": "kodi", "type": "kodi", "url": real_kodi.url, "ws_port": real_kodi.ws_port}]
    client = await make_client(make_config(tmp_path, {"players": players}, libraries=libraries))
    agent = client.agent
    registry = agent.players
    assert registry is not None
    player = registry.get("kodi")
    assert player is not None and player.listener is not None
    await wait_for(lambda: player.listener.connected, timeout=10)  # Kodi's 9090 speaks WebSocket too

    folder = real_kodi.media / "The Matrix (1999)"
    folder.mkdir()
    old = folder / "The Matrix (1999) 720p.mkv"
    old.write_bytes(os.urandom(4096))  # never decoded
    (folder / "poster.jpg").write_bytes(jpeg_bytes(200, 300))
    (folder / "fanart.jpg").write_bytes(jpeg_bytes(320, 180, (10, 10, 90)))
    movie_id = await agent.db.write(_insert_movie, str(folder), str(old))
    await _publish_nfo(agent, movie_id, old)
    job = await agent.queue.enqueue(
        "notify_players", {"entity": "movie", "id": movie_id, "update": "Created"}
    )
    assert (await _drain(agent, job.id)).status == "completed"

    movie = await _movie(player.kodi, old)
    assert (movie["title"], movie["year"], movie["plot"]) == ("The Matrix", 1999, PLOT)
    assert movie["uniqueid"] == {"tmdb": "603", "imdb": "tt0133093"} and movie["imdbnumber"] == "603"
    assert "poster.jpg" in urllib.parse.unquote(movie["art"]["poster"])
    assert str(folder) in urllib.parse.unquote(movie["art"]["fanart"])

    # The viewer watched it once and stopped at 20:34; then Radarr replaces the file.
    poster = folder / "poster.jpg"
    await _cache_texture(real_kodi, movie["art"]["poster"])
    assert str(poster) in [t["path"] for t in await player.kodi.textures_under(str(folder))]
    await player.kodi.set_movie_details(
        movie["movieid"],
        playcount=1,
        lastplayed="2026-01-02 20:00:00",
        resume={"position": 1234.0, "total": 8160.0},
    )
    job = await agent.queue.enqueue(
        "playback_capture", {"entity": "movie", "id": movie_id, "files": [str(old)], "source": "radarr"}
    )
    captured = await _drain(agent, job.id)
    assert captured.status == "completed" and captured.result["captured"] == {"kodi": 1}, captured.error
    new = folder / "The Matrix (1999) 2160p.mkv"
    old.rename(new)
    old.with_suffix(".nfo").unlink()
    await agent.db.execute("UPDATE movies SET file = ? WHERE id = ?", (str(new), movie_id))
    await _publish_nfo(agent, movie_id, new)
    assert b"<playcount>1</playcount>" in new.with_suffix(".nfo").read_bytes()
    later = (
        time.time() + 60
    )  # Kodi skips a folder whose mtime (whole seconds) it has seen: an upgrade comes later
    os.utime(folder, (later, later))
    gone = await agent.queue.enqueue(
        "notify_players", {"entity": "movie", "id": movie_id, "update": "Deleted", "file": str(old)}
    )
    created = await agent.queue.enqueue(
        "notify_players", {"entity": "movie", "id": movie_id, "update": "Created"}, depends_on=[gone.id]
    )
    assert (await _drain(agent, created.id)).status == "completed"
    await _movie(player.kodi, new)
    before = await _all_movies(player.kodi)  # Kodi kept the deleted file's entry beside the new one
    assert sorted(m["file"] for m in before) == sorted([str(new), str(old)]), before
    restore = await agent.queue.enqueue("playback_restore", {"entity": "movie", "id": movie_id})
    restored = await _drain(agent, restore.id)
    assert restored.status == "completed", restored.error
    assert "removed the old entry" in restored.result["restored"]["kodi"], restored.result
    after = await _all_movies(player.kodi)
    print("GetMovies before the restore:", json.dumps(before))
    print("GetMovies after the restore:", json.dumps(after))
    assert [m["file"] for m in after] == [str(new)], after  # one clean entry, on the new file

    upgraded = await _movie(player.kodi, new)
    assert upgraded["movieid"] != movie["movieid"]
    assert upgraded["playcount"] == 1
    assert upgraded["resume"]["position"] == 1234.0
    row = await agent.db.fetchone(
        "SELECT restored_at, new_file FROM playback_state WHERE media_key = ?", (f"movie:{movie_id}",)
    )
    assert row["restored_at"] is not None and row["new_file"] == str(new)

    # A new poster is published at the same path: every Kodi drops its cached thumbnail of it.
    await _cache_texture(real_kodi, upgraded["art"]["poster"])
    cached = {t["textureid"]: t["path"] for t in await player.kodi.textures_under(str(folder))}
    assert str(poster) in cached.values() and str(folder / "fanart.jpg") in cached.values()
    poster.write_bytes(jpeg_bytes(200, 300, (200, 10, 10)))
    told = await agent.queue.enqueue(
        "notify_players", {"entity": "movie", "id": movie_id, "update": "Modified", "art": [str(poster)]}
    )
    told_job = await _drain(agent, told.id)
    assert told_job.status == "completed", told_job.error
    assert told_job.result["textures"] == {"kodi": {"dropped": [str(poster)]}}
    # Only the replaced image's thumbnail is gone. Kodi may cache the new poster again at once (the Modified
    # notice has it look at the item): that is a new texture id, never the old one.
    left = {t["textureid"]: t["path"] for t in await player.kodi.textures_under(str(folder))}
    old_poster = {i for i, path in cached.items() if path == str(poster)}
    assert old_poster and not old_poster & left.keys(), (cached, left)
    assert {i for i, path in cached.items() if path == str(folder / "fanart.jpg")} <= left.keys(), (cached, left)


if __name__ == "__main__" and sys.argv[1:2] == ["--inner"]:
    _inner(Path(sys.argv[2]))
