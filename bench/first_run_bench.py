"""First-run benchmark: a fresh library of 1,000 movies, from the scan request to every NFO and image on disk.

The agent runs as its own process (`python -m agent serve`, the default jobs and rate settings, the
library watched with inotify). TMDB is the local fake (tests/fakes/tmdb.py) served from this process:
real JPEG/PNG images, and, for the first phase, 429 + `Retry-After: 1` above 40 API requests in any
second, as TMDB's own ceiling. Each movie folder carries its TMDB id, so one movie is one API request.

Phases, each with the baseline measured in the same run:
1. at TMDB's ceiling: time from the scan request to the first NFO, NFOs/s in steady state (10th to 90th
   percentile of arrivals) beside the ceiling's bound (40/s, 1 request per movie), the total beside
   1,000 / 40 s, 429s met, and scans caused by the agent's own writes (watcher scans; must be 0);
2. the ceiling lifted (a fresh library, no limit at the fake, providers.tmdb.rate_limit 100000): movies/s
   end to end with artwork (NFO and three images per movie), beside a bare loop writing the same files
   with fsync;
3. single Radarr `Download` webhooks into an idle agent (no provider key: the payload's metadata, three
   images on the local host): webhook to NFO on disk, p50/p99 over 50.

    .venv/bin/python bench/first_run_bench.py [--movies 1000] [--webhooks 50] [--ceiling 40] [--record]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import platform
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import deque
from pathlib import Path
from typing import Any, Final

import aiohttp
import yaml
from aiohttp import web

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from fakes.images import jpeg_bytes, png_bytes  # noqa: E402
from fakes.tmdb import FakeTmdb, sample_movie  # noqa: E402
from webhook_bench import free_port, pct, wait_healthy  # noqa: E402

API_KEY = "bench-key-0123456789"
TEMPLATE = ROOT / "tests" / "payloads" / "radarr" / "download.json"
RESULTS = ROOT / "bench" / "RESULTS.md"
ART = ("poster.jpg", "fanart.jpg", "clearlogo.png")


_FIRST: Final = ("Silent", "Crimson", "Hidden", "Broken", "Golden", "Distant", "Frozen", "Burning", "Quiet",
                 "Wild", "Lost", "Bright", "Hollow", "Northern", "Midnight", "Savage", "Gentle", "Iron", "Pale",
                 "Scarlet", "Velvet", "Endless", "Bitter", "Sudden", "Wicked", "Lonely", "Electric", "Secret",
                 "Shining", "Restless", "Fallen", "Sacred", "Stolen", "Ancient", "Hungry", "Crooked")
_SECOND: Final = ("River", "Harbor", "Garden", "Empire", "Winter", "Horizon", "Kingdom", "Shadow", "Station",
                  "Mountain", "Orchard", "Highway", "Lantern", "Frontier", "Voyage", "Canyon", "Island", "Letter",
                  "Summer", "Witness", "Country", "Harvest", "Compass", "Passage", "Thunder", "Mirror", "Prairie",
                  "Meadow", "Reckoning", "Promise", "Tide", "Signal", "Crossing", "Valley", "Archive", "Bridge")


def movie_name(i: int) -> tuple[str, int, int, str]:
    """(title, year, tmdb id, folder name) of the i-th bench movie, named as Radarr names folders.

    Titles are pairs of plain words (1,296 of them): names like a real library's, which the scan reads without
    guessit. A title with a bare number inside (`Film 0042 (1990)`) goes through guessit, about 8.5 ms of CPU a
    name on this box, which would make the walk, not the lookups, the cost being measured.
    """
    title = f"{_FIRST[i % len(_FIRST)]} {_SECOND[(i // len(_FIRST)) % len(_SECOND)]}"
    if i >= len(_FIRST) * len(_SECOND):
        raise ValueError(f"at most {len(_FIRST) * len(_SECOND)} bench movies")
    year, tmdb = 1950 + i % 70, 200000 + i
    return title, year, tmdb, f"{title} ({year}) {{tmdb-{tmdb}}}"


def build_library(root: Path, n: int) -> dict[int, Path]:
    """n movie folders with a small video each; returns each movie's NFO path."""
    nfos = {}
    for i in range(n):
        folder = movie_name(i)[3]
        (root / folder).mkdir(parents=True)
        (root / folder / f"{folder}.mkv").write_bytes(b"\x1aE\xdf\xa3first-run" + i.to_bytes(4, "big"))
        nfos[i] = root / folder / f"{folder}.nfo"
    return nfos


class Fake:
    """The fake TMDB with images made once up front, and an optional per-second ceiling on API requests."""

    def __init__(self, n: int) -> None:
        self.tmdb = FakeTmdb(movies={movie_name(i)[2]: sample_movie(movie_name(i)[2], movie_name(i)[0],
                                                                    movie_name(i)[1], imdb_id=None,
                                                                    collection=None, cast=5)
                                     for i in range(n)})
        self.ceiling: int | None = None
        self.window: deque[float] = deque()
        self.refused = 0
        self.api = 0
        self.images: dict[str, tuple[bytes, str]] = {}
        self.tmdb.app.middlewares.insert(0, self._middleware)

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Any) -> web.StreamResponse:
        path = request.path
        if path.startswith("/t/p/"):  # the image CDN: no API limit; bytes made once
            name = path.rsplit("/", 1)[-1]
            if name not in self.images:
                self.images[name] = await asyncio.to_thread(_image_for, name)
            body, mime = self.images[name]
            return web.Response(body=body, content_type=mime)
        if path.startswith("/3/") and self.ceiling is not None:
            now = time.monotonic()
            while self.window and self.window[0] <= now - 1.0:
                self.window.popleft()
            if len(self.window) >= self.ceiling:
                self.refused += 1
                return web.json_response({"status_code": 25, "status_message": "rate limit"}, status=429,
                                         headers={"Retry-After": "1"})
            self.window.append(now)
        if path.startswith("/3/"):
            self.api += 1
        return await handler(request)


def _image_for(name: str) -> tuple[bytes, str]:
    """A real image of the size the name carries (as the fake's own image route makes it)."""
    import re

    match = re.search(r"(\d+)x(\d+)", name)
    width, height = (int(match.group(1)), int(match.group(2))) if match else (300, 450)
    shade = sum(name.encode()) % 200
    if name.lower().endswith(".png"):
        return png_bytes(width, height, (shade, 90, 160), alpha=255), "image/png"
    return jpeg_bytes(width, height, (shade, 60, 120)), "image/jpeg"


def write_config(tmp: Path, library: Path, port: int, tmdb_url: str | None, key: str, rate_limit: int | None
                 ) -> Path:
    """The agent's config: defaults for jobs and rate, one watched Movies library, Radarr's /movies mapped."""
    cfg: dict[str, Any] = {
        "server": {"host": "127.0.0.1", "port": port, "api_key": API_KEY},
        "data_dir": str(tmp / "data"),
        "log_level": "warning",
        "watcher": {"quiet_seconds": 1},
        "probe": {"ffprobe": "off"},  # the bench's videos are a few bytes: no streams to probe
        "libraries": [{"name": "Movies", "kind": "movies", "path": str(library), "watch": "auto"}],
        "sources": {"radarr": {"path_mappings": [{"remote": "/movies", "local": str(library)}]}},
    }
    if tmdb_url is not None:
        tmdb: dict[str, Any] = {"api_key": key, "base_url": f"{tmdb_url}/3",
                                "image_base_url": f"{tmdb_url}/t/p/original"}
        if rate_limit is not None:
            tmdb["rate_limit"] = rate_limit
        cfg["providers"] = {"tmdb": tmdb}
    path = tmp / "agent.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False), encoding="utf-8")
    return path


class Poller(threading.Thread):
    """Notes when each watched path first exists, cheaply enough not to slow what it watches.

    Files arrive roughly in the order given (the agent works item by item, in the scan's order), so every
    `every` seconds the poller looks at the first `window` paths still missing, and at all of them once every
    `sweep` passes (a late one is seen within `every * sweep` s). Checking all 4,000 paths every 5 ms was
    800,000 stat calls a second: a core of the 2 this box has, taken from the agent being measured.
    """

    def __init__(self, paths: dict[Any, Path], every: float = 0.005, window: int = 48, sweep: int = 40) -> None:
        super().__init__(daemon=True)
        self.pending = dict(paths)
        self.seen: dict[Any, float] = {}
        self.every, self.window, self.sweep = every, window, sweep
        self.stop_flag = threading.Event()

    def run(self) -> None:
        """Poll until everything is seen or stopped."""
        passes = 0
        while self.pending and not self.stop_flag.is_set():
            passes += 1
            keys = list(self.pending) if passes % self.sweep == 0 else list(itertools.islice(self.pending, self.window))
            for key in keys:
                if os.path.exists(self.pending[key]):
                    self.seen[key] = time.perf_counter()
                    del self.pending[key]
            time.sleep(self.every)


class Agent:
    """The agent as a separate process on a temp config."""

    def __init__(self, cfg: Path, port: int, tmp: Path) -> None:
        self.url = f"http://127.0.0.1:{port}"
        self.tmp = tmp
        self.log = open(tmp / "agent.log", "wb")  # noqa: SIM115 - closed in stop()
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        self.proc = subprocess.Popen([sys.executable, "-m", "agent", "serve", "--config", str(cfg)], cwd=ROOT,
                                     stdout=self.log, stderr=subprocess.STDOUT, env=env)

    async def start(self) -> None:
        """Wait until it answers."""
        await wait_healthy(self.url, self.proc)

    def stop(self) -> None:
        """SIGTERM, then wait."""
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()

    def jobs(self) -> dict[str, Any]:
        """Counts from the agent's database: jobs by type and status, and scans the watcher queued."""
        conn = sqlite3.connect(f"file:{self.tmp / 'data' / 'metarr.sqlite'}?mode=ro", uri=True)
        try:
            by = conn.execute("SELECT type, status, COUNT(*) FROM job_queue GROUP BY type, status").fetchall()
            watcher = conn.execute("SELECT COUNT(*) FROM job_queue WHERE type = 'scan'"
                                   " AND payload LIKE '%\"source\": \"watcher\"%'").fetchone()[0]
            errors = conn.execute("SELECT COUNT(*) FROM movies WHERE artwork_error IS NOT NULL").fetchone()[0]
        finally:
            conn.close()
        return {"by": {f"{t}:{s}": c for t, s, c in by}, "watcher_scans": watcher, "artwork_errors": errors}


async def idle(url: str, timeout: float) -> None:
    """Wait until the agent's queue has nothing pending or running."""
    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession(headers={"X-Api-Key": API_KEY}) as session:
        while time.monotonic() < deadline:
            async with session.get(f"{url}/api/health") as resp:
                queue = (await resp.json()).get("queue") or {}
            if not queue.get("pending") and not queue.get("running"):
                return
            await asyncio.sleep(0.2)
    raise RuntimeError("the agent's queue did not go idle")


def steady_rate(times: list[float]) -> float:
    """Arrivals per second between the 10th and the 90th percentile arrival."""
    ordered = sorted(times)
    lo, hi = ordered[len(ordered) // 10], ordered[len(ordered) * 9 // 10]
    return (len(ordered) * 8 // 10) / (hi - lo) if hi > lo else float("inf")


async def first_run(fake: Fake, n: int, ceiling: int | None, rate_limit: int | None, timeout: float
                    ) -> dict[str, Any]:
    """One fresh library, one scan request; arrival times of every NFO and image."""
    fake.ceiling, fake.refused, fake.api = ceiling, 0, 0
    fake.window.clear()
    runner = web.AppRunner(fake.tmdb.app)
    await runner.setup()
    tmdb_port = free_port()
    await web.TCPSite(runner, "127.0.0.1", tmdb_port).start()
    with tempfile.TemporaryDirectory(prefix="metarr-first-run-") as tmp_name:
        tmp = Path(tmp_name)
        library = tmp / "movies"
        nfos = build_library(library, n)
        port = free_port()
        cfg = write_config(tmp, library, port, f"http://127.0.0.1:{tmdb_port}", fake.tmdb.api_key, rate_limit)
        agent = Agent(cfg, port, tmp)
        try:
            await agent.start()
            watched: dict[Any, Path] = {}  # in the order they should come: each movie's NFO, then its images
            for i, p in nfos.items():
                watched[("nfo", i)] = p
                watched.update({(art, i): p.parent / art for art in ART})
            poller = Poller(watched, every=0.005)
            poller.start()
            async with aiohttp.ClientSession(headers={"X-Api-Key": API_KEY}) as session:
                t0 = time.perf_counter()
                async with session.post(f"{agent.url}/api/libraries/Movies/scan") as resp:
                    assert resp.status == 202, await resp.text()
            deadline = time.monotonic() + timeout
            while poller.pending and time.monotonic() < deadline and agent.proc.poll() is None:
                await asyncio.sleep(0.05)
            poller.stop_flag.set()
            await idle(agent.url, 120)
            # the watcher reports a folder after quiet_seconds (1 s) and two size checks: give late events time
            await asyncio.sleep(4.0)
            jobs = agent.jobs()
            sample = tmp / "sample"
            shutil.copytree(library, sample)  # what the bare loop writes again
        finally:
            agent.stop()
            await runner.cleanup()
        nfo_times = [t - t0 for (kind, _), t in poller.seen.items() if kind == "nfo"]
        all_times = [t - t0 for t in poller.seen.values()]
        bare = bare_loop(sample, tmp / "bare")
    return {"n": n, "first_nfo": min(nfo_times) if nfo_times else None, "nfos": len(nfo_times),
            "files": len(all_times), "files_wanted": len(watched),
            "steady_nfo_per_s": steady_rate(nfo_times) if len(nfo_times) > 10 else None,
            "all_nfos": max(nfo_times) if nfo_times else None, "all_files": max(all_times) if all_times else None,
            "refused": fake.refused, "api": fake.api, "jobs": jobs, "bare": bare}


def bare_loop(sample: Path, dest: Path) -> dict[str, float]:
    """Write the same NFOs and images again, each with fsync (and its folder's): the raw disk's movies/s."""
    files = sorted(p for p in sample.rglob("*") if p.is_file() and p.suffix in (".nfo", ".jpg", ".png"))
    data = [(p.relative_to(sample), p.read_bytes()) for p in files]
    folders = {rel.parent for rel, _ in data}
    start = time.perf_counter()
    for folder in folders:
        (dest / folder).mkdir(parents=True, exist_ok=True)
    for rel, body in data:
        target = dest / rel
        tmp = target.with_name("." + target.name + ".tmp")
        with open(tmp, "wb") as fh:
            fh.write(body)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
        fd = os.open(target.parent, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "files": len(data), "movies_per_s": len(folders) / seconds if seconds else 0.0}


async def webhooks(fake: Fake, count: int) -> dict[str, Any]:
    """Single Radarr Downloads into an idle agent without a provider key; webhook to NFO on disk."""
    fake.ceiling = None
    runner = web.AppRunner(fake.tmdb.app)
    await runner.setup()
    img_port = free_port()
    await web.TCPSite(runner, "127.0.0.1", img_port).start()
    template = json.loads(TEMPLATE.read_text(encoding="utf-8"))
    lat: list[float] = []
    with tempfile.TemporaryDirectory(prefix="metarr-first-webhook-") as tmp_name:
        tmp = Path(tmp_name)
        library = tmp / "movies"
        library.mkdir()
        port = free_port()
        agent = Agent(write_config(tmp, library, port, None, "", None), port, tmp)
        try:
            await agent.start()
            headers = {"X-Api-Key": API_KEY, "Content-Type": "application/json"}
            async with aiohttp.ClientSession() as session:
                for i in range(count):
                    title, year, tmdb, _ = movie_name(i)
                    folder = f"{title} ({year})"
                    (library / folder).mkdir()
                    (library / folder / f"{folder}.mkv").write_bytes(b"video")
                    slug = f"first-run-{i:04d}"
                    images = [{"coverType": kind, "remoteUrl": f"http://127.0.0.1:{img_port}/t/p/original/{slug}-{name}"}
                              for kind, name in (("poster", "poster-en-1-1000x1500.jpg"),
                                                 ("fanart", "backdrop-xx-1-1920x1080.jpg"),
                                                 ("clearlogo", "logo-en-1-800x310.png"))]
                    body = json.loads(json.dumps(template))
                    body["movie"].update({"id": i + 1, "title": title, "year": year, "folderPath": f"/movies/{folder}",
                                          "tmdbId": tmdb, "imdbId": "", "images": images})
                    body["remoteMovie"] = {"tmdbId": tmdb, "title": title, "year": year}
                    body["movieFile"].update({"id": i + 1, "relativePath": f"{folder}.mkv",
                                              "path": f"/movies/{folder}/{folder}.mkv"})
                    nfo = library / folder / f"{folder}.nfo"
                    await idle(agent.url, 60)
                    t = time.perf_counter()
                    async with session.post(f"{agent.url}/api/webhooks/radarr", data=json.dumps(body),
                                            headers=headers) as resp:
                        assert resp.status == 202, await resp.text()
                    while not nfo.exists():
                        if time.perf_counter() - t > 30:
                            raise RuntimeError(f"no NFO for webhook {i}")
                        await asyncio.sleep(0.001)
                    lat.append(time.perf_counter() - t)
            await idle(agent.url, 60)
            jobs = agent.jobs()
        finally:
            agent.stop()
            await runner.cleanup()
    return {"count": count, "p50_ms": pct(lat, 50), "p99_ms": pct(lat, 99), "mean_ms": statistics.fmean(lat) * 1000,
            "jobs": jobs}


def report(args: argparse.Namespace, at: dict[str, Any], lifted: dict[str, Any], hooks: dict[str, Any]) -> str:
    """The RESULTS.md section."""
    n, ceiling = args.movies, args.ceiling
    bound = n / ceiling
    lines = [
        "## First run",
        "",
        f"`.venv/bin/python bench/first_run_bench.py --movies {n} --webhooks {args.webhooks} --ceiling {ceiling}` "
        f"({time.strftime('%Y-%m-%d')}, {os.cpu_count()} CPUs, Python {platform.python_version()}); the agent is a "
        "separate process with its defaults (jobs.workers 8, providers.tmdb.rate_limit 400 per 10 s) and an "
        "inotify watcher on the library, stream probing off (the videos are a few bytes); movies are named as Radarr "
        "names them (`Silent River (1950) {tmdb-200000}`); the fake TMDB in this process serves real JPEG/PNG images.",
        "",
        f"1. At TMDB's ceiling (the fake answers 429 + Retry-After: 1 above {ceiling} API requests in any second):",
        f"   - scan request -> first NFO on disk: **{at['first_nfo']:.2f} s** (target under 2 s)",
        f"   - NFOs/s in steady state: **{at['steady_nfo_per_s']:.1f}/s** = {at['steady_nfo_per_s'] / ceiling:.0%} of "
        f"the ceiling's {ceiling}/s (1 request per movie; target at least 90%)",
        f"   - all {at['nfos']} NFOs after {at['all_nfos']:.1f} s; the ceiling's bound is {bound:.1f} s "
        f"({at['all_nfos'] / bound:.2f}x); every NFO and image after {at['all_files']:.1f} s "
        f"({at['files']} of {at['files_wanted']} files)",
        f"   - TMDB API requests answered {at['api'] - at['refused']}, refused with 429: {at['refused']}",
        f"   - scans caused by the agent's own writes: **{at['jobs']['watcher_scans']}**; items with an "
        f"artwork_error: {at['jobs']['artwork_errors']}",
        f"   - jobs: {at['jobs']['by']}",
        "2. Ceiling lifted (no limit at the fake, rate_limit 100000), a fresh library:",
        f"   - end to end with artwork: **{lifted['n'] / lifted['all_files']:.0f} movies/s** ({lifted['files']} of "
        f"{lifted['files_wanted']} files in {lifted['all_files']:.1f} s; first NFO {lifted['first_nfo']:.2f} s; "
        f"NFOs {lifted['steady_nfo_per_s']:.0f}/s in steady state)",
        f"   - bare loop writing the same {lifted['bare']['files']} files with fsync (file and folder): "
        f"{lifted['bare']['movies_per_s']:.0f} movies/s ({lifted['bare']['seconds']:.2f} s); the agent does "
        f"{lifted['n'] / lifted['all_files'] / lifted['bare']['movies_per_s']:.2f}x of it",
        f"   - scans caused by the agent's own writes: {lifted['jobs']['watcher_scans']}",
        f"3. Single Radarr Download webhooks into an idle agent (payload metadata, three images on the local host), "
        f"{hooks['count']} in a row: webhook -> NFO on disk **p50 {hooks['p50_ms']:.0f} ms, p99 {hooks['p99_ms']:.0f} "
        f"ms** (mean {hooks['mean_ms']:.0f} ms; targets 100 / 250 ms)",
    ]
    return "\n".join(lines) + "\n"


def record(section: str) -> None:
    """Replace or append the `## First run` section of bench/RESULTS.md."""
    text = RESULTS.read_text(encoding="utf-8")
    start = text.find("## First run")
    if start == -1:
        text = text.rstrip("\n") + "\n\n" + section
    else:
        end = text.find("\n## ", start + 1)
        text = text[:start] + section + (text[end + 1:] if end != -1 else "")
    RESULTS.write_text(text, encoding="utf-8")


async def main_async(args: argparse.Namespace) -> str:
    """The three phases."""
    fake = Fake(args.movies)
    at = await first_run(fake, args.movies, args.ceiling, None, args.timeout)
    print(f"at the ceiling: {json.dumps({k: v for k, v in at.items() if k != 'jobs'})}", flush=True)
    lifted = await first_run(fake, args.movies, None, 100000, args.timeout)
    print(f"ceiling lifted: {json.dumps({k: v for k, v in lifted.items() if k != 'jobs'})}", flush=True)
    hooks = await webhooks(fake, args.webhooks)
    return report(args, at, lifted, hooks)


def main() -> int:
    """Parse arguments, run, print (and optionally record)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--movies", type=int, default=1000)
    parser.add_argument("--webhooks", type=int, default=50)
    parser.add_argument("--ceiling", type=int, default=40, help="API requests per second the fake TMDB allows")
    parser.add_argument("--timeout", type=float, default=600)
    parser.add_argument("--record", action="store_true", help="write the section into bench/RESULTS.md")
    args = parser.parse_args()
    section = asyncio.run(main_async(args))
    print(section)
    if args.record:
        record(section)
    return 0


if __name__ == "__main__":
    sys.exit(main())
