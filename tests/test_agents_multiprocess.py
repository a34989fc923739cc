"""Two real agents (`serve`) on one PostgreSQL store: a mixed burst and a kill -9; nothing lost or run twice.

nas1 owns "Movies A" (tmp/a/media/movies), nas2 owns "Movies B" (tmp/b/media/movies); each has its own
data_dir and port and both share store.url. A fake TMDB runs in the test's event loop on 127.0.0.1 and holds
every lookup of a B title at a gate, so nas2 is reliably in the middle of an enrich when it is killed. After
the kill the gate opens and nas2 is started again with the same config: its recover() puts its interrupted
jobs back, and everything drains. Then job_queue, both agents' logs, both trees and the HTTP API are checked.

What "exactly once" means here, read from job_queue and from the agents' logs ("→ job N type (attempt a/m)",
one line per handler start):
- every job ended `completed`, or `cancelled` only as "superseded by pending job ..." (a re-queued job whose
  dedupe_key already had a pending twin: the twin does the work); none `failed`, none left pending/running;
- a job not interrupted by the kill has attempts == 1 and exactly one start line, in the log of the agent it
  is bound to (job_queue.agent); an interrupted job has exactly one more attempt than at the kill and exactly
  one start line after the restart;
- jobs sharing a lock_key (one scan per library, one publish per item) never ran at overlapping times;
- jobs about library B, or about an item of B, are bound to nas2 and were only ever started by nas2 (and A's
  by nas1). Separate enrich/publish jobs for one item may legitimately complete more than once (a later scan
  or the artwork step re-queues them once the first is no longer pending), so per dedupe_key the database only
  promises one *pending* job at a time; that is what the burst's duplicate requests are merged against.

The second test is the other direction and the lease: nas1 and nas2 (jobs.lease_seconds: 3) share one fake Kodi;
nas1 is killed -9 for good in the middle of notify_players (held at the Kodi) and of an enrich of its own (held at
TMDB). nas2's heartbeat puts both back once the lease has run out: it runs the player job (bound to no agent) once
more, and leaves the enrich (bound to nas1) pending for nas1; GET /api/agents then shows nas1 "not answering".
"""

from __future__ import annotations

import asyncio
import copy
import hashlib
import itertools
import json
import os
import re
import signal
import subprocess
import sys
import time
import warnings
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import aiohttp
import psycopg
import pytest
from aiohttp import web
from conftest import API_KEY, HEADERS, free_port, subprocess_env, write_config
from fakes.kodi import FakeKodi
from fakes.player_setup import kodi_player
from fakes.tmdb import FakeTmdb, sample_movie

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parent.parent
PAYLOADS = Path(__file__).parent / "payloads"
DEADLINE = 60.0  # the whole test: start, burst, kill, restart, drain
START_TIMEOUT = 20.0

A_MOVIES = [(3000 + n, f"Amber Film {n}", 2000 + n) for n in range(1, 7)]
B_MOVIES = [(4000 + n, f"Birch Film {n}", 2010 + n) for n in range(1, 7)]
WEBHOOKED = {3001, 3002, 4001, 4002}  # these also get a Radarr "Download" webhook, sent to their owner
START_LINE = re.compile(r"→ job (\d+) (\w+) \(attempt (\d+)/(\d+)\)")
SUPERSEDED = "superseded by pending job"
OWNER = {"A": "nas1", "B": "nas2"}  # library letter -> the agent whose config (and disk) has it


class Agent:
    """One `serve` subprocess; each start writes its own log file."""

    def __init__(self, name: str, config: Path, port: int, logs: Path) -> None:
        self.name, self.config, self.port, self.logs = name, config, port, logs
        self.runs: list[Path] = []
        self.proc: subprocess.Popen[bytes] | None = None
        self._log: Any = None

    def start(self) -> None:
        log = self.logs / f"{self.name}-{len(self.runs) + 1}.log"
        self.runs.append(log)
        self._log = log.open("wb")
        self.proc = subprocess.Popen([sys.executable, "-m", "agent", "serve", "--config", str(self.config)],
                                     cwd=REPO, env=subprocess_env(), stdout=subprocess.DEVNULL, stderr=self._log)

    def text(self, run: int | None = None) -> str:
        """One run's log (default: all runs, in order)."""
        runs = self.runs if run is None else [self.runs[run]]
        return "".join(p.read_text(encoding="utf-8", errors="replace") for p in runs)

    def kill9(self) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)
        self._log.close()

    def terminate(self) -> int:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=15)
        finally:
            self._log.close()

    def close(self) -> None:
        """Kill the process if it still runs (by its own pid only)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        if self._log is not None and not self._log.closed:
            self._log.close()

    async def wait_ready(self, http: aiohttp.ClientSession) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            assert self.proc is not None
            if self.proc.poll() is not None:
                pytest.fail(f"{self.name} exited with {self.proc.returncode}:\n{self.text()}")
            try:
                async with http.get(f"http://127.0.0.1:{self.port}/api/health") as resp:
                    if resp.status == 200 and (await resp.json())["status"] == "ok":
                        return
            except (aiohttp.ClientError, OSError):
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"{self.name} did not answer /api/health within {START_TIMEOUT} s:\n{self.text()}")
            await asyncio.sleep(0.05)


async def call(http: aiohttp.ClientSession, method: str, agent: Agent, path: str,
               body: Any = None) -> tuple[int, Any]:
    """One API call to an agent with the key; (status, JSON body)."""
    async with http.request(method, f"http://127.0.0.1:{agent.port}{path}", headers=HEADERS,
                            json=body) as resp:
        return resp.status, await resp.json(content_type=None)


def query(url: str, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    """Rows of one query on the shared store (read only; its own short connection)."""
    with psycopg.connect(url, autocommit=True) as conn:
        return conn.execute(sql, params).fetchall()


async def db(url: str, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    """`query` off the event loop (the fake TMDB is served from this loop)."""
    return await asyncio.to_thread(query, url, sql, *params)


async def until(what: str, predicate: Any, deadline: float, *agents: Agent) -> Any:
    """Poll an async predicate until truthy; fail naming `what` (with the agents' log tails) at the deadline."""
    while True:
        value = await predicate()
        if value:
            return value
        for agent in agents:
            if agent.proc is not None and agent.proc.poll() is not None:
                pytest.fail(f"{agent.name} exited with {agent.proc.returncode} while waiting for {what}:\n"
                            f"{agent.text()[-4000:]}")
        if time.monotonic() > deadline:
            tails = "\n".join(f"--- {a.name}\n{a.text()[-3000:]}" for a in agents)
            pytest.fail(f"not within the deadline: {what}\n{tails}")
        await asyncio.sleep(0.05)


def make_tree(root: Path, movies: list[tuple[int, str, int]]) -> dict[int, Path]:
    """`Title (Year)/Title (Year).mkv` for each movie; tmdb id -> video file."""
    files = {}
    for tmdb_id, title, year in movies:
        folder = root / f"{title} ({year})"
        folder.mkdir(parents=True)
        video = folder / f"{title} ({year}).mkv"
        video.write_bytes(b"not really a video")
        files[tmdb_id] = video
    return files


def radarr_download(tmdb_id: int, title: str, year: int, video: Path) -> dict[str, Any]:
    """Radarr's Download webhook for one movie, with our local paths (no path mapping needed), no remote images."""
    body = copy.deepcopy(json.loads((PAYLOADS / "radarr" / "download.json").read_text(encoding="utf-8")))
    ids = {"tmdbId": tmdb_id, "imdbId": f"tt{tmdb_id:07d}", "title": title, "year": year}
    body["movie"].update(ids, folderPath=str(video.parent), images=[], releaseDate=f"{year}-03-30")
    body["remoteMovie"].update(ids)
    body["movieFile"].update(relativePath=video.name, path=str(video))
    for key in ("sceneName", "sourcePath"):
        body["movieFile"].pop(key, None)
    body.pop("release", None)
    return body


def config_for(root: Path, name: str, port: int, library: str, store: str, tmdb: str,
               jobs: dict[str, Any] | None = None, players: list[dict[str, Any]] | None = None) -> Path:
    """An agent config under `root`: its own data_dir, port and library, the shared store, TMDB at the fake
    (`jobs` adds to the jobs section; `players` configures players)."""
    movies = root / "media" / "movies"
    extra: dict[str, Any] = {
        "server": {"host": "127.0.0.1", "port": port, "api_key": API_KEY},
        "store": {"url": store},
        "agent": {"name": name},
        "jobs": {"workers": 2, **(jobs or {})},
        "providers": {"tmdb": {"api_key": "fake-v3-key", "base_url": f"{tmdb}/3",
                               "image_base_url": f"{tmdb}/t/p/original", "rate_limit": 100000}},
    }
    if players is not None:
        extra["players"] = players
    return write_config(root, extra=extra,
                        libraries=[{"name": library, "kind": "movies", "path": str(movies), "watch": "off"}])


def files_under(root: Path) -> set[Path]:
    return {p for p in root.rglob("*") if p.is_file()}


async def test_two_agents_share_one_store_through_a_burst_and_a_kill_9(
        tmp_path: Path, pg_url: str, aiohttp_server: Any) -> None:
    """Two agents, one PostgreSQL: scans and webhooks for both libraries, nas2 killed mid-enrich and restarted;
    every job ends once, on the agent owning its files, and both trees get exactly their own NFOs."""
    deadline = time.monotonic() + DEADLINE
    fake = FakeTmdb(movies={tmdb_id: sample_movie(tmdb_id, title, year, imdb_id=f"tt{tmdb_id:07d}", collection=None)
                            for tmdb_id, title, year in A_MOVIES + B_MOVIES})
    gate = asyncio.Event()
    held: list[str] = []
    b_ids = {str(tmdb_id) for tmdb_id, _, _ in B_MOVIES}

    @web.middleware
    async def hold_b(request: web.Request, handler: Any) -> web.StreamResponse:
        """Lookups of a B title (search, details, its images) wait at the gate until nas2 has been killed."""
        about_b = ("birch" in request.query.get("query", "").lower() or "birch" in request.path
                   or request.path.rsplit("/", 1)[-1] in b_ids)
        if about_b and not gate.is_set():
            held.append(request.path)
            await gate.wait()
        return await handler(request)

    fake.app.middlewares.insert(0, hold_b)
    tmdb = str((await aiohttp_server(fake.app)).make_url("")).rstrip("/")

    videos_a = make_tree(tmp_path / "a" / "media" / "movies", A_MOVIES)
    videos_b = make_tree(tmp_path / "b" / "media" / "movies", B_MOVIES)
    tree_a, tree_b = tmp_path / "a" / "media" / "movies", tmp_path / "b" / "media" / "movies"
    logs = tmp_path / "logs"
    logs.mkdir()
    port1, port2 = free_port(), free_port()
    nas1 = Agent("nas1", config_for(tmp_path / "a", "nas1", port1, "Movies A", pg_url, tmdb), port1, logs)
    nas2 = Agent("nas2", config_for(tmp_path / "b", "nas2", port2, "Movies B", pg_url, tmdb), port2, logs)
    notes: list[str] = []
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=15)) as http:
            # ---------------------------------------------------------------- start both
            # both at once on the empty database: the migrate lock lets one migrate, the other waits
            nas1.start()
            nas2.start()
            await asyncio.gather(nas1.wait_ready(http), nas2.wait_ready(http))
            rows = await db(pg_url, "SELECT name, agent FROM libraries ORDER BY name")
            assert rows == [("Movies A", "nas1"), ("Movies B", "nas2")]

            # ---------------------------------------------------------------- the burst
            requests: list[tuple[str, Agent, str, Any]] = [
                ("scan A via nas1", nas1, "/api/libraries/Movies A/scan", None),
                ("scan B via nas2", nas2, "/api/libraries/Movies B/scan", None),
                ("scan B via nas1", nas1, "/api/libraries/Movies B/scan", None),
                ("scan A via nas2", nas2, "/api/libraries/Movies A/scan", None),
                ("scan A via nas1 again", nas1, "/api/libraries/Movies A/scan", None),
            ]
            for tmdb_id, title, year in A_MOVIES + B_MOVIES:
                if tmdb_id in WEBHOOKED:
                    owner, video = (nas1, videos_a[tmdb_id]) if tmdb_id < 4000 else (nas2, videos_b[tmdb_id])
                    requests.append((f"radarr Download {title} via {owner.name}", owner, "/api/webhooks/radarr",
                                     radarr_download(tmdb_id, title, year, video)))
            answers = await asyncio.gather(*(call(http, "POST", agent, path, body)
                                             for _, agent, path, body in requests))
            scans: dict[str, int] = {}
            webhook_jobs: dict[int, str] = {}  # job id -> agent that received the webhook
            for (what, agent, path, _), (status, body) in zip(requests, answers, strict=True):
                if path.endswith("/scan"):
                    # a library's scan is queued whichever agent is asked, bound to the library's owner
                    assert status == 202, (what, status, body)
                    assert body.get("agent", OWNER[what[5]]) == OWNER[what[5]], (what, body)
                    scans[what] = body["job_id"]
                else:
                    assert status == 202, (what, status, body)
                    assert len(body["job_ids"]) == 1
                    webhook_jobs[body["job_ids"][0]] = agent.name

            # ---------------------------------------------------------------- kill -9 nas2 mid-enrich
            async def nas2_mid_run() -> list[tuple[Any, ...]]:
                if not held:
                    return []
                return await db(pg_url, "SELECT id, type FROM job_queue WHERE status = 'running'"
                                        " AND worker = 'nas2' AND type = 'enrich'")

            await until("nas2 running an enrich held at the fake TMDB", nas2_mid_run, deadline, nas1, nas2)
            nas2.kill9()
            killed_at = time.time()
            # nas2 is dead: its rows are frozen (only nas2 may claim B's jobs; nas1 would take them back only
            # after their 30 s lease, and nas2 is back long before that)
            interrupted = dict(await db(pg_url, "SELECT id, attempts FROM job_queue WHERE status = 'running'"
                                                " AND worker = 'nas2'"))
            interrupted_types = dict(await db(pg_url, "SELECT id, type FROM job_queue WHERE status = 'running'"
                                                      " AND worker = 'nas2'"))
            assert interrupted and "enrich" in interrupted_types.values()
            assert set(interrupted.values()) == {1}, interrupted  # first attempts, all of them
            assert await db(pg_url, "SELECT stopped_at FROM agents WHERE name = 'nas2'") == [(None,)]
            gate.set()
            nas2.start()
            await nas2.wait_ready(http)

            # ---------------------------------------------------------------- drain
            async def drained() -> bool:
                rows = await db(pg_url, "SELECT count(*) FROM job_queue WHERE status IN ('pending', 'running')")
                return rows[0][0] == 0

            await until("no pending or running job", drained, deadline, nas1, nas2)

            # ---------------------------------------------------------------- job_queue
            jobs = await db(pg_url, "SELECT id, type, status, attempts, agent, dedupe_key, lock_key, payload,"
                                    " error, started_at, completed_at, result FROM job_queue ORDER BY id")
            owner_of_movie = dict(await db(pg_url, "SELECT m.id, l.agent FROM movies m"
                                                   " JOIN libraries l ON l.id = m.library_id"))
            by_id = {j[0]: j for j in jobs}

            def did_the_work(job_id: int) -> tuple[Any, ...]:
                """The job itself, or the twin that superseded it (same dedupe_key)."""
                job = by_id[job_id]
                while job[2] == "cancelled":
                    twin = by_id[int(re.search(r"pending job (\d+)", job[8])[1])]
                    assert twin[5] == job[5], (job, twin)
                    job = twin
                return job

            failed = [j for j in jobs if j[2] == "failed"]
            assert not failed, failed
            for job_id, type_, status, _, _, _, _, _, error, _, _, _ in jobs:
                assert status in ("completed", "cancelled"), (job_id, type_, status)
                if status == "cancelled":
                    assert error and error.startswith(SUPERSEDED), (job_id, type_, error)

            starts: dict[int, list[tuple[str, int, int]]] = defaultdict(list)  # job -> [(agent, run, attempt)]
            for agent in (nas1, nas2):
                for run in range(len(agent.runs)):
                    for m in START_LINE.finditer(agent.text(run)):
                        job_id, type_ = int(m[1]), m[2]
                        assert by_id[job_id][1] == type_, (job_id, type_)
                        starts[job_id].append((agent.name, run, int(m[3])))

            def expected_agent(job: tuple[Any, ...]) -> str:
                job_id, type_, payload = job[0], job[1], job[7]
                payload = json.loads(payload) if isinstance(payload, str) else payload
                if type_ == "webhook":
                    return webhook_jobs.get(job_id) or pytest.fail(f"webhook job {job_id} nobody sent")
                if isinstance(payload.get("library"), str):
                    return {"Movies A": "nas1", "Movies B": "nas2"}[payload["library"]]
                if payload.get("entity") == "movie":
                    return owner_of_movie[payload["id"]]
                return job[4]  # cache_gc and the like: the agent that queued it

            types = Counter(j[1] for j in jobs)
            for job in jobs:
                job_id, type_, status, attempts, agent = job[0], job[1], job[2], job[3], job[4]
                want = expected_agent(job)
                assert agent == want, (job_id, type_, agent, want)
                ran = starts.get(job_id, [])
                assert {who for who, _, _ in ran} <= {want}, (job_id, type_, ran)
                if job_id in interrupted:
                    # the killed attempt counts: exactly one more attempt and one start, after the restart;
                    # unless a twin with its dedupe_key was pending at the recovery: then this one is cancelled
                    # as superseded, never re-run, and the twin (bound to the same agent) did the work
                    after = [r for r in ran if r[0] == "nas2" and r[1] == 1]
                    if status == "completed":
                        assert attempts == interrupted[job_id] + 1 == 2, (job_id, attempts, interrupted[job_id])
                        assert len(after) == 1, (job_id, ran)
                    else:
                        assert attempts == interrupted[job_id] and not after, (job_id, ran)
                        twin = did_the_work(job_id)
                        assert twin[2] == "completed" and twin[4] == agent, (job, twin)
                else:  # untouched by the kill: claimed once, started once, completed
                    assert status == "completed", (job_id, type_, status, job[8])
                    assert attempts == 1, (job_id, type_, attempts, ran)
                    assert len(ran) == 1, (job_id, type_, ran)

            # lock keys: never two holders at once (one scan per library, one publish per item)
            spans: dict[str, list[tuple[float, float, int]]] = defaultdict(list)
            for job in jobs:
                if job[6] and job[2] == "completed":
                    spans[job[6]].append((job[9], job[10], job[0]))
            for key, intervals in spans.items():
                intervals.sort()
                for (_, e1, j1), (s2, _, j2) in itertools.pairwise(intervals):
                    assert s2 >= e1, f"{key}: job {j2} started at {s2} while job {j1} ran until {e1}"

            # the scans asked for: each library's scan ran on its owner, whoever was asked. A scan interrupted
            # by the kill while a twin (same dedupe_key) was pending is cancelled as superseded: the twin ran.
            for what, job_id in scans.items():
                want = OWNER[what[5]]
                job = did_the_work(job_id)
                assert job[2] == "completed" and job[4] == want, (what, job)
                assert starts[job[0]] and all(who == want for who, _, _ in starts[job[0]]), (what, starts[job[0]])
            merged = scans["scan A via nas1"] == scans["scan A via nas1 again"]
            # each webhook queued the scan of its movie's folder, on the agent owning it
            folders = {str(v.parent) for v in [*videos_a.values(), *videos_b.values()]}
            for job_id, receiver in webhook_jobs.items():
                result = by_id[job_id][11]
                result = json.loads(result) if isinstance(result, str) else result
                (follow,) = result["enqueued"]
                assert follow["type"] == "scan" and follow["folder"] in folders, result
                scan = did_the_work(follow["job_id"])
                assert scan[2] == "completed" and scan[4] == receiver, (result, scan)

            # ---------------------------------------------------------------- the trees
            status, listing = await call(http, "GET", nas1, "/api/movies?limit=500")
            assert status == 200 and listing["total"] == 12, listing
            status, other = await call(http, "GET", nas2, "/api/movies?limit=500")
            assert status == 200 and sorted(m["id"] for m in other["items"]) == sorted(
                m["id"] for m in listing["items"])
            written: dict[str, set[Path]] = {"Movies A": set(), "Movies B": set()}
            roots = {"Movies A": tree_a, "Movies B": tree_b}
            for item in listing["items"]:
                status, movie = await call(http, "GET", nas1, f"/api/movies/{item['id']}")
                assert status == 200
                lib = movie["library"]
                root = roots[lib]
                video = Path(movie["file"])
                assert video.is_file() and video.parent == Path(movie["path"]) and root in video.parents, movie
                nfo = video.with_suffix(".nfo")
                assert movie["nfo_path"] == str(nfo), (movie["nfo_path"], nfo)
                text = nfo.read_text(encoding="utf-8")
                assert f"<title>{movie['title']}</title>" in text and movie["tmdb_id"] is not None
                assert str(movie["tmdb_id"]) in text
                assert movie["status"] == "enriched", movie["status"]
                assert movie["plot"].startswith("Set in the 22nd century"), movie["plot"]  # from the fake TMDB
                assert movie["files"], movie
                for f in movie["files"]:
                    path = Path(f["path"])
                    assert root in path.parents, (lib, path)
                    # on disk as its own agent wrote it: nobody wrote over it afterwards
                    assert hashlib.sha256(path.read_bytes()).hexdigest() == f["sha256"], (lib, path)
                    written[lib].add(path)
                written[lib].add(nfo)
            titles = {m["title"] for m in listing["items"]}
            assert titles == {t for _, t, _ in A_MOVIES + B_MOVIES}
            for lib, root, videos in (("Movies A", tree_a, videos_a), ("Movies B", tree_b, videos_b)):
                on_disk = files_under(root)
                nfos = {p for p in on_disk if p.suffix == ".nfo"}
                assert nfos == {v.with_suffix(".nfo") for v in videos.values()}, (lib, sorted(nfos))
                # nothing on disk that is neither a video nor a file this library's agent says it wrote
                stray = on_disk - set(videos.values()) - written[lib]
                assert not stray, (lib, sorted(stray))
                assert all(p.parent.parent == root for p in on_disk), (lib, sorted(on_disk))
            # the agents' own trees stayed apart: the other library's titles never appear in a tree
            assert not any("Birch" in p.name for p in files_under(tree_a))
            assert not any("Amber" in p.name for p in files_under(tree_b))

            # ---------------------------------------------------------------- the agents
            rows = await db(pg_url, "SELECT name, libraries, started_at, stopped_at FROM agents ORDER BY name")
            assert [(r[0], json.loads(r[1]), r[3]) for r in rows] == [
                ("nas1", ["Movies A"], None), ("nas2", ["Movies B"], None)]
            assert rows[1][2] >= killed_at - 1  # nas2 registered again at its restart
            for agent in (nas1, nas2):
                status, body = await call(http, "GET", agent, "/api/agents")
                if status == 404:
                    # GET /api/agents (DESIGN section 10) not routed in this build; the agents table was
                    # checked above instead
                    notes.append(f"GET /api/agents on {agent.name}: 404")
                    continue
                assert status == 200, body
                listed = {a["name"]: a for a in body["items"]}
                assert sorted(listed) == ["nas1", "nas2"], body
                assert listed["nas1"]["libraries"] == ["Movies A"] and listed["nas2"]["libraries"] == ["Movies B"]
                assert all(a["running"] == 0 and a.get("state", "up") == "up" for a in listed.values()), body

            # the recovery was nas2's own at its restart; nas1 never took back a job of nas2 (the lease held)
            assert "re-queued" in nas2.text(1), nas2.text(1)[-3000:]
            assert "stopped answering" not in nas1.text(), nas1.text()[-3000:]
            for agent in (nas1, nas2):
                assert "Traceback" not in agent.text(), agent.text()[-4000:]

            # ---------------------------------------------------------------- clean stops
            assert nas1.terminate() == 0
            assert nas2.terminate() == 0
            rows = await db(pg_url, "SELECT name FROM agents WHERE stopped_at IS NOT NULL ORDER BY name")
            assert rows == [("nas1",), ("nas2",)]
    finally:
        gate.set()
        nas1.close()
        nas2.close()
    summary = (f"{len(jobs)} jobs {dict(types)}; interrupted by kill -9: {interrupted_types}; "
               f"held lookups: {len(held)}; repeated scan of A merged: {merged}")
    print(summary)
    for note in notes:
        warnings.warn(note, stacklevel=1)




# ------------------------------------------------------------------------------------------------ lease takeover

LEASE = 3  # jobs.lease_seconds of both agents in the takeover test (the minimum)
TAKEOVER_DEADLINE = 40.0  # the whole takeover test; it takes about 10 s
PLAYER_MOVIES = [(5001, "Cedar Lane", 2001), (5002, "Harbor Held", 2002)]  # 5002's lookups wait at a gate
NOTIFY_GATED = frozenset({"VideoLibrary.GetMovies", "VideoLibrary.Scan", "VideoLibrary.RefreshMovie"})
KODI_A, KODI_B = "smb://nas/a/movies/", "smb://nas/b/movies/"  # the two trees as the shared Kodi sees them
STARTS = tuple[int, str, int]  # (job id, type, attempt) of one start line


def start_lines(text: str) -> list[STARTS]:
    """Every handler start in a log, in order."""
    return [(int(m[1]), m[2], int(m[3])) for m in START_LINE.finditer(text)]


async def test_a_dead_agents_player_job_is_taken_over_after_its_lease(
        tmp_path: Path, pg_url: str, aiohttp_server: Any) -> None:
    """nas1 and nas2 share one PostgreSQL and one Kodi, with leases of 3 s. nas1 is killed (-9, never restarted)
    in the middle of notify_players (held at the Kodi) and of an enrich of its own (held at TMDB). Once the
    lease has run out nas2 puts them back: it runs the player job (bound to no agent) once more and completes
    it, and leaves the enrich (bound to nas1, whose files it is about) pending for nas1.

    The Cedar Lane movie gets one publish after its enrich and another after its artwork, each queueing a
    notify_players (dedupe_key notify:movie:<id>): when the second is queued while the first is pending it
    joins it, otherwise both run. So nas1 holds one or two notify jobs at the kill; the lowest is re-run, and
    a second one is cancelled as superseded by it when both are put back (one pending job per dedupe_key)."""
    deadline = time.monotonic() + TAKEOVER_DEADLINE
    tmdb_gate, kodi_gate = asyncio.Event(), asyncio.Event()
    fake = FakeTmdb(movies={tmdb_id: sample_movie(tmdb_id, title, year, imdb_id=f"tt{tmdb_id:07d}", collection=None)
                            for tmdb_id, title, year in PLAYER_MOVIES})
    held_lookups: list[str] = []

    @web.middleware
    async def hold_harbor(request: web.Request, handler: Any) -> web.StreamResponse:
        """Lookups of "Harbor Held" wait until the end of the test: nas1 is inside that enrich when killed."""
        if ("harbor" in request.query.get("query", "").lower() or "harbor" in request.path.lower()
                or request.path.rsplit("/", 1)[-1] == "5002"):
            held_lookups.append(request.path)
            await tmdb_gate.wait()
        return await handler(request)

    fake.app.middlewares.insert(0, hold_harbor)
    tmdb = str((await aiohttp_server(fake.app)).make_url("")).rstrip("/")

    # one fake Kodi both agents are configured with; what a notify sends it waits at the gate until nas1 is dead
    kodi = FakeKodi()
    killed = False
    arrivals: list[tuple[str, dict[str, Any], bool]] = []  # (method, params, arrived after nas1 was killed)

    @web.middleware
    async def hold_notify(request: web.Request, handler: Any) -> web.StreamResponse:
        body = await request.json()
        if isinstance(body, dict) and body.get("method") in NOTIFY_GATED:
            arrivals.append((body["method"], body.get("params") or {}, killed))
            await kodi_gate.wait()
        return await handler(request)

    kodi_http = kodi.http_app()
    kodi_http.middlewares.insert(0, hold_notify)
    kodi.url = str((await aiohttp_server(kodi_http)).make_url("/jsonrpc"))
    kodi.ws_url = str((await aiohttp_server(kodi.ws_app())).make_url("/jsonrpc")).replace("http://", "ws://")
    mappings = [{"remote": KODI_A, "local": str(tmp_path / "a" / "media" / "movies")},
                {"remote": KODI_B, "local": str(tmp_path / "b" / "media" / "movies")}]
    player = kodi_player("living room", kodi, path_mappings=mappings)

    videos = make_tree(tmp_path / "a" / "media" / "movies", PLAYER_MOVIES)
    logs = tmp_path / "logs"
    logs.mkdir()
    port1, port2 = free_port(), free_port()
    jobs_cfg = {"lease_seconds": LEASE, "workers": 3}
    nas1 = Agent("nas1", config_for(tmp_path / "a", "nas1", port1, "Movies A", pg_url, tmdb, jobs_cfg, [player]),
                 port1, logs)
    nas2 = Agent("nas2", config_for(tmp_path / "b", "nas2", port2, "Movies B", pg_url, tmdb, jobs_cfg, [player]),
                 port2, logs)
    started = time.monotonic()
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=15)) as http:
            # ---------------------------------------------------------------- nas1 alone claims the notify
            nas1.start()
            await nas1.wait_ready(http)
            status, body = await call(http, "POST", nas1, "/api/libraries/Movies A/scan")
            assert status == 202 and body["agent"] == "nas1", body

            async def nas1_stuck() -> list[tuple[Any, ...]]:
                """nas1 with nothing left to do but its held jobs: the enrich of Harbor Held (at the TMDB gate)
                and the notify_players of Cedar Lane (at the Kodi gate, each having sent its first call)."""
                rows = await db(pg_url, "SELECT id, type, status, worker, agent, attempts, dedupe_key FROM job_queue"
                                        " WHERE status IN ('pending', 'running') ORDER BY id")
                notifies = [r for r in rows if r[1] == "notify_players"]
                settled = (held_lookups and notifies and len(arrivals) == len(notifies)
                           and all(r[2] == "running" and r[3] == "nas1" for r in rows)
                           and sorted({r[1] for r in rows}) == ["enrich", "notify_players"])
                return rows if settled else []

            at_kill = await until("nas1 stuck in notify_players (Kodi gate) and an enrich (TMDB gate)",
                                  nas1_stuck, deadline, nas1)
            notify_ids = [r[0] for r in at_kill if r[1] == "notify_players"]
            notify_id = notify_ids[0]  # the one put back to pending (the others are superseded by it)
            bound_to_nas1 = {r[0]: r for r in at_kill if r[4] == "nas1"}
            assert [r[1] for r in bound_to_nas1.values()] == ["enrich"], at_kill
            for row in at_kill:
                if row[1] == "notify_players":  # bound to no agent, first attempt, one item
                    assert row[4] is None and row[5] == 1 and row[6] == at_kill[-1][6], at_kill
            movie_id = int(at_kill[-1][6].rsplit(":", 1)[1])
            rows = await db(pg_url, "SELECT title FROM movies WHERE id = %s", movie_id)
            assert rows == [("Cedar Lane",)], rows

            # ---------------------------------------------------------------- nas2 joins; nas1 keeps its jobs
            nas2.start()
            await nas2.wait_ready(http)
            rows = await db(pg_url, "SELECT id, type, status, worker, agent, attempts, dedupe_key FROM job_queue"
                                    " WHERE status IN ('pending', 'running') ORDER BY id")
            assert rows == at_kill, rows  # a live agent renews its leases: nobody takes its jobs

            # ---------------------------------------------------------------- kill -9 nas1, for good
            nas1.kill9()
            killed = True
            killed_at = time.monotonic()
            kodi_gate.set()  # nas1's held requests now answer closed sockets; nas2's will pass at once

            async def notify_done() -> list[tuple[Any, ...]]:
                rows = await db(pg_url, "SELECT status, attempts, agent, worker, result, error FROM job_queue"
                                        " WHERE id = %s", notify_id)
                return rows if rows[0][0] not in ("pending", "running") else []

            (done,) = await until(f"notify_players job {notify_id} run again and finished by nas2", notify_done,
                                  deadline, nas2)
            took = time.monotonic() - killed_at
            status_, attempts, agent, worker, result, error = done
            result = json.loads(result) if isinstance(result, str) else result
            assert (status_, attempts, agent, worker, error) == ("completed", 2, None, None, None), done
            folder = f"{KODI_A}Cedar Lane (2001)/"
            assert result["groups"] == {"living room": {"player": "living room", "action": f"scanned {folder[:-1]}"}}, \
                result
            assert result["failed"] == {}, result
            # not before the lease ran out: 3 s after nas1's last renewal, which was at most 1 s before the kill
            assert took >= LEASE - LEASE / 3 - 0.25, took
            # a second notify of the same item held by nas1 is cancelled as superseded, not run twice
            for job_id in notify_ids[1:]:
                rows = await db(pg_url, "SELECT status, attempts, worker, error FROM job_queue WHERE id = %s", job_id)
                assert rows == [("cancelled", 1, None,
                                 f"{SUPERSEDED} {notify_id} with the same dedupe_key")], (job_id, rows)

            # ---------------------------------------------------------------- nas1's own jobs stay nas1's
            async def put_back() -> list[tuple[Any, ...]]:
                rows = await db(pg_url, "SELECT id, status, agent, worker, attempts, message FROM job_queue"
                                        " WHERE id = ANY(%s) ORDER BY id", list(bound_to_nas1))
                return rows if all(r[1] != "running" for r in rows) else []

            for job_id, status_, agent, worker, attempts, message in await until(
                    "nas1's own running jobs put back", put_back, deadline, nas2):
                assert (status_, agent, worker) == ("pending", "nas1", None), (job_id, status_, agent, worker)
                assert attempts == bound_to_nas1[job_id][5], (job_id, attempts)  # the lost attempt counts
                assert message == "run again: agent nas1 stopped answering", (job_id, message)
            # nothing bound to nas1 ever started on nas2, nor is held by it
            rows = await db(pg_url, "SELECT id FROM job_queue WHERE agent = 'nas1' AND worker IS NOT NULL")
            assert rows == [], rows
            nas1_jobs = {r[0] for r in await db(pg_url, "SELECT id FROM job_queue WHERE agent = 'nas1'")}
            nas2_starts = start_lines(nas2.text())
            assert not [s for s in nas2_starts if s[0] in nas1_jobs], nas2_starts

            # ---------------------------------------------------------------- the logs
            # nas2 started the notify once, as its second attempt; nas1 had started it once, the first
            assert [s for s in nas2_starts if s[0] in notify_ids] == [(notify_id, "notify_players", 2)], nas2_starts
            nas1_starts = start_lines(nas1.text())
            assert [s for s in nas1_starts if s[0] in notify_ids] == [(i, "notify_players", 1) for i in notify_ids], \
                nas1_starts
            taken = [line for line in nas2.text().splitlines() if "stopped answering" in line]
            assert len(taken) == 1 and "WARNING" in taken[0], taken
            named = dict(re.findall(r"(\d+) \((\w+)\)", taken[0].split("put back to pending:", 1)[1]))
            assert named == {str(r[0]): "nas1" for r in at_kill}, (taken, at_kill)
            assert "stopped answering" not in nas1.text(), nas1.text()[-3000:]
            assert "Traceback" not in nas2.text(), nas2.text()[-4000:]

            # ---------------------------------------------------------------- the Kodi
            # nas1's runs got as far as looking the movie up; nas2's run looked it up and scanned its folder
            before = [m for m, _, after in arrivals if not after]
            after = [(m, p) for m, p, after in arrivals if after]
            assert before == ["VideoLibrary.GetMovies"] * len(notify_ids), arrivals
            assert [m for m, _ in after] == ["VideoLibrary.GetMovies", "VideoLibrary.Scan"], after
            assert after[0][1]["filter"]["value"] == folder and after[1][1]["directory"] == folder, after
            assert len(kodi.calls_to("VideoLibrary.Scan")) == 1, kodi.calls
            assert videos[5001].with_suffix(".nfo").is_file()  # what the Kodi was told to scan is there

            # ---------------------------------------------------------------- GET /api/agents on nas2
            async def nas1_not_answering() -> dict[str, Any] | None:
                status, body = await call(http, "GET", nas2, "/api/agents")
                assert status == 200, body
                listed = {a["name"]: a for a in body["items"]}
                return listed if listed["nas1"]["state"] == "not answering" else None

            listed = await until("nas1 listed as not answering", nas1_not_answering, deadline, nas2)
            assert listed["nas1"]["stopped_at"] is None and listed["nas1"]["running"] == 0, listed
            assert listed["nas2"]["state"] == "up" and listed["nas2"]["self"] is True, listed
            assert listed["nas1"]["libraries"] == ["Movies A"] and listed["nas2"]["libraries"] == ["Movies B"]

            assert nas2.terminate() == 0
    finally:
        kodi_gate.set()
        tmdb_gate.set()
        nas1.close()
        nas2.close()
    print(f"notify jobs held by nas1 {notify_ids}: {notify_id} run again on nas2 {took:.1f} s after the kill; "
          f"nas1's own jobs left pending: {sorted((r[0], r[1]) for r in bound_to_nas1.values())}; "
          f"test {time.monotonic() - started:.1f} s")
