"""Metadata lands item by item and never waits on artwork (issue 13): depth-first follow-ups, fields first and
artwork after with a visible artwork_error, TMDB's 429 adaptation, and the agent's own writes never rescanned."""

from __future__ import annotations

import asyncio
import json
import time
from collections import deque
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from conftest import HEADERS, free_port, make_config, open_test_agent
from fakes.tmdb import FakeTmdb, sample_movie

from agent.clock import FakeClock
from agent.providers.ratelimit import TokenBucket
from agent.providers.tmdb import TmdbProvider

PAYLOADS = Path(__file__).parent / "payloads"


def films(count: int) -> FakeTmdb:
    """A fake TMDB knowing `count` movies with ids 1000.. (no fanart key used)."""
    return FakeTmdb(movies={1000 + n: sample_movie(1000 + n, f"Film Number {n}", 2000 + n % 20, imdb_id=None,
                                                   collection=None) for n in range(count)})


def providers(fake: FakeTmdb, url: str) -> dict[str, Any]:
    """Config `providers:` with TMDB at the fake (no fanart.tv)."""
    return {"tmdb": {"api_key": fake.api_key, "base_url": f"{url}/3", "image_base_url": f"{url}/t/p/original",
                     "rate_limit": 100000}}


def library_of(tmp_path: Path, count: int) -> Path:
    """`count` movie folders tagged with their TMDB ids."""
    root = tmp_path / "media" / "movies"
    for n in range(count):
        name = f"Film Number {n} ({2000 + n % 20}) {{tmdb-{1000 + n}}}"
        (root / name).mkdir(parents=True)
        (root / name / f"{name}.mkv").write_bytes(b"video")
    return root


async def test_a_scan_publishes_each_item_before_the_next_lookups(tmp_path: Path, aiohttp_server: Any) -> None:
    """With 2 workers, each item's publish runs right after its own lookup: the first NFO is on disk while
    almost every lookup is still pending, and no publish waits behind all the lookups (order, not time)."""
    count = 24
    fake = films(count)
    url = str((await aiohttp_server(fake.app)).make_url("")).rstrip("/")
    root = library_of(tmp_path, count)
    cfg = make_config(tmp_path, extra={"providers": providers(fake, url), "jobs": {"workers": 2}})
    order: list[tuple[str, str]] = []
    nfo_seen_at: list[int] = []  # enrich jobs completed when each publish completed

    async with open_test_agent(cfg, FakeClock()) as agent:
        def listen(type_: str, data: dict[str, Any]) -> None:
            if type_ in ("job:started", "job:completed"):
                order.append((type_, data["type"]))
                if type_ == "job:completed" and data["type"] == "publish":
                    nfo_seen_at.append(sum(1 for t, k in order if t == "job:completed" and k == "enrich"))

        agent.events.subscribe(listen)
        resp_job = await agent.queue.enqueue("scan", {"library": "Movies"}, priority=2)
        await agent.queue.run_until_idle()
        failed, _ = await agent.queue.list(status="failed")
        assert not failed, [(j.type, j.error) for j in failed]
        assert resp_job.id
        # an item's publishes never run at once (fields, then the artwork step's): they share a lock key
        locks = await agent.db.fetchall("SELECT lock_key, payload FROM job_queue WHERE type = 'publish'")
        assert locks and all(r["lock_key"] == f"publish:movie:{json.loads(r['payload'])['id']}" for r in locks)
    nfos = sorted(root.glob("*/*.nfo"))
    assert len(nfos) == count
    assert len(nfo_seen_at) >= count
    assert nfo_seen_at[0] <= 3, f"the first NFO waited for {nfo_seen_at[0]} lookups"
    # depth-first: at no point do lookups run more than the workers ahead of the publishes
    enrich_starts = [i for i, (t, k) in enumerate(order) if t == "job:started" and k == "enrich"]
    publish_done = [i for i, (t, k) in enumerate(order) if t == "job:completed" and k == "publish"]
    for n, start in enumerate(enrich_starts):
        published_before = sum(1 for i in publish_done if i < start)
        assert published_before >= n - 4, f"lookup {n} started with only {published_before} items published"


async def test_an_unreachable_image_host_never_holds_up_the_nfo(tmp_path: Path, make_client: Any) -> None:
    """A Radarr Download with no provider key and images on a host refusing connections: the NFO is written at
    once, enrich completes; the artwork job retries, then completes with the item's visible artwork_error; a
    later scan asks for the artwork again."""
    clock = FakeClock()
    cfg = make_config(tmp_path)  # no TMDB key: the payload's metadata and images are all there is
    folder = tmp_path / "media" / "movies" / "The Matrix (1999)"
    folder.mkdir(parents=True)
    (folder / "The Matrix (1999).mkv").write_bytes(b"video")
    dead = f"http://127.0.0.1:{free_port()}"  # nothing listens: connections are refused
    body = json.loads((PAYLOADS / "radarr" / "download.json").read_text())
    body["movie"]["folderPath"] = str(folder)
    body["movieFile"]["path"] = str(folder / "The Matrix (1999).mkv")
    body["movieFile"]["relativePath"] = "The Matrix (1999).mkv"
    body["remoteMovie"] = {}
    body["movie"]["images"] = [{"coverType": t, "remoteUrl": f"{dead}/{t}.jpg"} for t in ("poster", "fanart")]
    client = await make_client(cfg, clock)
    resp = await client.post("/api/webhooks/radarr", json=body, headers=HEADERS)
    assert resp.status == 202, await resp.text()
    await client.agent.queue.run_until_idle()
    nfo = folder / "The Matrix (1999).nfo"
    assert nfo.is_file() and b"<title>" in nfo.read_bytes()  # metadata landed before any image retry
    enrich, _ = await client.agent.queue.list(type_="enrich")
    assert [j.status.value for j in enrich] == ["completed"]
    for _ in range(10):  # let the artwork job spend its retries
        clock.advance(3600)
        await client.agent.queue.run_until_idle()
    art, _ = await client.agent.queue.list(type_="artwork")
    assert [j.status.value for j in art] == ["completed"]
    assert art[0].attempts == art[0].max_retries + 1
    assert "poster" in art[0].result["artwork_error"] and "cannot connect" in art[0].result["artwork_error"].lower()
    movies = await (await client.get("/api/movies", headers=HEADERS)).json()
    [movie] = movies["items"]
    assert movie["artwork_error"] and dead in movie["artwork_error"]
    failed, _ = await client.agent.queue.list(status="failed")
    assert not failed, [(j.type, j.error) for j in failed]
    resp = await client.post("/api/libraries/Movies/scan", headers=HEADERS)
    assert resp.status == 202
    await client.agent.queue.run_until_idle()
    scans, _ = await client.agent.queue.list(type_="scan")
    assert scans[0].result["artwork_jobs"] == 1
    art, _ = await client.agent.queue.list(type_="artwork")
    assert len(art) == 2


class LimitedTmdb:
    """The fake TMDB behind a limiter: more than `per_second` requests in any second get 429 + Retry-After."""

    def __init__(self, fake: FakeTmdb, per_second: int, clock: FakeClock) -> None:
        self.fake, self.per_second, self.clock = fake, per_second, clock
        self.recent: deque[float] = deque()
        self.answered = 0
        self.refused = 0

    def app(self) -> web.Application:
        """The fake's app with the limit in front of it."""

        @web.middleware
        async def limit(request: web.Request, handler: Any) -> web.StreamResponse:
            now = self.clock.monotonic()
            while self.recent and self.recent[0] <= now - 1.0:
                self.recent.popleft()
            if len(self.recent) >= self.per_second:
                self.refused += 1
                return web.json_response({"status_code": 25}, status=429, headers={"Retry-After": "1"})
            self.recent.append(now)
            self.answered += 1
            return await handler(request)

        self.fake.app.middlewares.insert(0, limit)
        return self.fake.app


async def test_tmdb_adapts_to_429_and_every_lookup_is_answered(aiohttp_server: Any) -> None:
    """Configured above the provider's real limit, the limiter meets 429s, waits Retry-After, slows down and
    settles just under the limit: every lookup is answered, none fails, few are refused."""
    clock = FakeClock()
    count = 120
    fake = films(count)
    limited = LimitedTmdb(fake, per_second=20, clock=clock)
    url = str((await aiohttp_server(limited.app())).make_url("")).rstrip("/")

    async def sleep(seconds: float) -> None:
        clock.advance(seconds)
        await asyncio.sleep(0)

    bucket = TokenBucket(400, 10.0, clock=clock, sleep=sleep, burst=1)  # 40/s against a 20/s provider
    async with aiohttp.ClientSession() as session:
        tmdb = TmdbProvider(fake.api_key, base_url=f"{url}/3", session=session, limiter=bucket)
        found = await asyncio.gather(*(tmdb.movie({"tmdb_id": 1000 + n}) for n in range(count)))
    assert all(r is not None for r in found)
    assert bucket.throttles >= 1 and limited.refused >= 1
    assert 14 <= bucket.rate <= 21, f"settled at {bucket.rate:.1f}/s against a 20/s limit (ceiling 40/s)"
    assert limited.refused < count // 4, f"{limited.refused} refused of {count}"


async def test_own_writes_of_a_large_publish_schedule_no_scan(tmp_path: Path, make_client: Any,
                                                               aiohttp_server: Any) -> None:
    """A real inotify watcher on the library: publishing many items (NFO and artwork each) queues no folder
    scan, however late their events arrive; a person's change in one of those folders afterwards still does."""
    count = 60
    fake = films(count)
    url = str((await aiohttp_server(fake.app)).make_url("")).rstrip("/")
    root = library_of(tmp_path, count)
    cfg = make_config(tmp_path, extra={"providers": providers(fake, url), "watcher": {"quiet_seconds": 0.2}},
                      libraries=[{"name": "Movies", "kind": "movies", "path": str(root), "watch": "auto"},
                                 {"name": "TV", "kind": "series", "path": str(tmp_path / "media" / "tv"),
                                  "watch": "off"}])
    client = await make_client(cfg)
    assert (await (await client.get("/api/health")).json())["watchers"] == 1
    resp = await client.post("/api/libraries/Movies/scan", headers=HEADERS)
    assert resp.status == 202
    await client.agent.queue.run_until_idle()
    assert len(list(root.glob("*/*.nfo"))) == count
    assert len(list(root.glob("*/poster.jpg"))) == count
    # A person's change afterwards: its scan comes after the events of every write before it, so once it is
    # queued, any scan the agent's own writes caused would be queued too.
    folder = sorted(root.iterdir())[0]
    (folder / "poster.jpg").write_bytes(b"a person's own poster")

    async def watcher_scans() -> list[Any]:
        rows = await client.agent.db.fetchall("SELECT payload FROM job_queue WHERE type = 'scan'")
        return [json.loads(r["payload"]) for r in rows if json.loads(r["payload"]).get("source") == "watcher"]

    deadline = time.monotonic() + 15.0
    found: list[Any] = []
    while not found and time.monotonic() < deadline:
        found = await watcher_scans()
        await asyncio.sleep(0.05)
    assert found, "a person's change after the publish was not noticed"
    assert [p["folder"] for p in found] == [str(folder)], "the agent's own writes were taken for news"


async def test_libraries_show_items_published_of_items_found(tmp_path: Path, aiohttp_server: Any,
                                                              make_client: Any) -> None:
    """/api/libraries `progress` counts items found and those with the agent's NFO: read after each publish,
    it climbs one item at a time to every item while the others' lookups still wait."""
    count = 6
    fake = films(count)
    url = str((await aiohttp_server(fake.app)).make_url("")).rstrip("/")
    library_of(tmp_path, count)
    client = await make_client(make_config(tmp_path, extra={"providers": providers(fake, url),
                                                            "jobs": {"workers": 1}}), FakeClock())
    before = await (await client.get("/api/libraries", headers=HEADERS)).json()
    assert {lib["name"]: lib["progress"] for lib in before["items"]}["Movies"] == {"found": 0, "published": 0}
    seen: list[dict[str, int]] = []
    reads: list[asyncio.Task[None]] = []

    async def read() -> None:
        body = await (await client.get("/api/libraries", headers=HEADERS)).json()
        seen.extend(lib["progress"] for lib in body["items"] if lib["name"] == "Movies")

    def listen(type_: str, data: dict[str, Any]) -> None:
        if type_ == "job:completed" and data["type"] == "publish":
            reads.append(asyncio.get_running_loop().create_task(read()))

    client.agent.events.subscribe(listen)
    resp = await client.post("/api/libraries/Movies/scan", headers=HEADERS)
    assert resp.status == 202
    await client.agent.queue.run_until_idle()
    await asyncio.gather(*reads)
    assert seen and all(p["found"] == count for p in seen)
    published = [p["published"] for p in seen]
    assert published == sorted(published) and published[0] < count and published[-1] == count, published
    assert len(set(published)) >= count // 2, f"progress jumped instead of climbing: {published}"


def test_scan_wait_progress_line_draws_published_of_found() -> None:
    """`scan --wait` on a terminal: the walk's bar and then items published of items found on one line."""
    import io

    from agent.cli.scan import ProgressLine

    stream = io.StringIO()
    line = ProgressLine(stream)
    line("scan:progress", {"library": "Movies", "seen": 2, "total": 4})
    line.progress("Movies", 4, 1)
    line.progress("Movies", 4, 1)  # unchanged: not drawn again
    line.progress("Movies", 4, 4)
    frames = stream.getvalue().split("\r")[1:]
    assert [f.rstrip() for f in frames] == [
        "Movies: [############............] 2/4",
        "Movies: [############............] 2/4 · 1 of 4 published",
        "Movies: [############............] 2/4 · 4 of 4 published",
    ]
