"""Publish benchmark: 1,000 movies enriched and published against the local fake TMDB, plus cache throughput.

Everything runs in this process: the fake TMDB (tests/fakes/tmdb.py, real JPEG/PNG bytes) on
127.0.0.1, and a real Agent (database, queue, providers, cache, publisher) over a temp Movies
library whose folders carry `{tmdb-N}` so no search is needed. The library is scanned first
(not timed; the scan queues one enrich per movie), then the queue runs until idle. Reported:

- movies/s from the first enrich start to the last publish completion;
- per movie, enqueue -> publish completed p50/p99 (a burst: every enrich is queued at once) and
  the service time (enrich run + publish run) p50/p99;
- with `--limited N`: the same for N movies at TMDB's default 40 requests / 10 s, which is the
  expected ceiling against the real service;
- cache store throughput: AssetCache.store_bytes on a few MB of distinct real PNGs vs bare
  hashlib.sha256 over the same bytes;
- with `--profile`: cProfile of single enrich jobs with a full and an emptied token bucket.

    .venv/bin/python bench/publish_bench.py [--movies 1000] [--workers 4] [--limited 80] [--profile] [--record]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import hashlib
import io
import os
import platform
import pstats
import statistics
import struct
import sys
import tempfile
import time
import zlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import yaml
from aiohttp import web

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from fakes.tmdb import FakeTmdb, sample_movie  # noqa: E402

from agent.config import load_config  # noqa: E402
from agent.enrich import Enricher  # noqa: E402
from agent.root import open_agent  # noqa: E402
from agent.services import Services  # noqa: E402

RESULTS = ROOT / "bench" / "RESULTS.md"
BASE_ID = 200000


def free_port() -> int:
    """A free TCP port on loopback."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def folder_name(i: int) -> str:
    """The i-th movie's folder, tagged with its TMDB id."""
    return f"Publish Bench {i:04d} ({1950 + i % 70}) {{tmdb-{BASE_ID + i}}}"


def catalogue(n: int) -> dict[int, dict[str, Any]]:
    """n distinct TMDB movies (5 actors, no collection)."""
    return {BASE_ID + i: sample_movie(BASE_ID + i, f"Publish Bench {i:04d}", 1950 + i % 70,
                                      imdb_id=f"tt{8000000 + i:07d}", collection=None, cast=5)
            for i in range(n)}


def pct(values: list[float], q: float) -> float:
    """The q-th percentile (nearest rank)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))]


class FakeServer:
    """The fake TMDB on 127.0.0.1 in this process."""

    def __init__(self, n: int) -> None:
        self.fake = FakeTmdb(movies=catalogue(n))
        self.runner = web.AppRunner(self.fake.app, access_log=None)
        self.url = ""

    async def __aenter__(self) -> FakeServer:
        await self.runner.setup()
        port = free_port()
        await web.TCPSite(self.runner, "127.0.0.1", port).start()
        self.url = f"http://127.0.0.1:{port}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.runner.cleanup()


@contextlib.asynccontextmanager
async def make_agent(tmp: Path, server: FakeServer, n: int, workers: int, rate_limit: int
                     ) -> AsyncIterator[Services]:
    """A real agent over a fresh library of n movie folders, TMDB at the fake."""
    library = tmp / "movies"
    for i in range(n):
        folder = library / folder_name(i)
        folder.mkdir(parents=True)
        (folder / f"{folder_name(i)}.mkv").write_bytes(b"\x1aE\xdf\xa3bench" + i.to_bytes(4, "big"))
    cfg_data = {
        "server": {"host": "127.0.0.1", "port": free_port(), "api_key": "bench-key-0123456789"},
        "data_dir": str(tmp / "data"), "log_level": "warning",
        "jobs": {"workers": workers},
        "libraries": [{"name": "Movies", "kind": "movies", "path": str(library), "watch": "off"}],
        "providers": {"tmdb": {"api_key": server.fake.api_key, "base_url": f"{server.url}/3",
                               "image_base_url": f"{server.url}/t/p/original", "rate_limit": rate_limit}},
        "probe": {"ffprobe": "off"},  # the bench's files are a few bytes: no streams to time
    }
    path = tmp / "agent.yaml"
    path.write_text(yaml.safe_dump(cfg_data, sort_keys=False), encoding="utf-8")
    async with open_agent(load_config(path), start_workers=False, background=False) as agent:
        yield agent


async def scan(agent: Services) -> None:
    """Scan the library (queues one enrich per movie)."""
    from agent.jobs.scan import build_request, scan_parts
    from agent.library.scan import run_scan

    await run_scan(scan_parts(agent), build_request(agent.cfg, {"library": "Movies"}))


async def pipeline(server: FakeServer, n: int, workers: int, rate_limit: int) -> dict[str, Any]:
    """Scan n movies, drain enrich + publish, and measure from the jobs' own timestamps."""
    with tempfile.TemporaryDirectory(prefix="metarr-publish-bench-") as name:
        tmp = Path(name)
        async with make_agent(tmp, server, n, workers, rate_limit) as agent:
            await scan(agent)
            start_hits = server.fake.hits_under("/3/")
            t0 = time.time()
            await agent.queue.run_until_idle()
            wall = time.time() - t0
            rows = await agent.db.fetchall(
                "SELECT type, status, payload, created_at, started_at, completed_at FROM job_queue"
                " WHERE type IN ('enrich', 'publish')")
            nfos = sum(1 for i in range(n) if (tmp / "movies" / folder_name(i) / f"{folder_name(i)}.nfo").is_file())
            posters = sum(1 for i in range(n) if (tmp / "movies" / folder_name(i) / "poster.jpg").is_file())
    import json

    enrich: dict[int, Any] = {}
    publish: dict[int, Any] = {}
    for r in rows:
        item = json.loads(r["payload"])["id"]
        (enrich if r["type"] == "enrich" else publish)[item] = r
    failed = [r for r in rows if r["status"] != "completed"]
    done = [i for i in enrich if i in publish and publish[i]["completed_at"]]
    latency = [publish[i]["completed_at"] - enrich[i]["created_at"] for i in done]
    service = [(enrich[i]["completed_at"] - enrich[i]["started_at"])
               + (publish[i]["completed_at"] - publish[i]["started_at"]) for i in done]
    enrich_runs = [enrich[i]["completed_at"] - enrich[i]["started_at"] for i in done]
    first = min(r["started_at"] for r in rows if r["started_at"])
    last = max(r["completed_at"] for r in rows if r["completed_at"])
    return {
        "movies": n, "published": len(done), "nfos": nfos, "posters": posters, "failed": len(failed),
        "rate_limit": rate_limit, "wall": wall, "span": last - first, "per_s": len(done) / (last - first),
        "p50": pct(latency, 50), "p99": pct(latency, 99),
        "svc_p50": pct(service, 50), "svc_p99": pct(service, 99),
        "enrich_mean": statistics.fmean(enrich_runs),
        "tmdb_requests": server.fake.hits_under("/3/") - start_hits,
    }


def noisy_png(width: int, height: int, seed: int) -> bytes:
    """A real RGB PNG of random pixels (incompressible, so its size is ~3 bytes per pixel)."""
    rows = bytearray()
    noise = hashlib.shake_256(seed.to_bytes(4, "big")).digest(width * 3 * height)
    for y in range(height):
        rows += b"\x00" + noise[y * width * 3:(y + 1) * width * 3]

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(bytes(rows), 1))
            + chunk(b"IEND", b""))


async def cache_throughput(images: int, side: int) -> dict[str, Any]:
    """AssetCache.store_bytes over distinct PNGs vs hashlib.sha256 over the same bytes."""
    from agent.cache import AssetCache
    from agent.store import SqliteDatabase

    blobs = [noisy_png(side, side, i) for i in range(images)]
    total = sum(len(b) for b in blobs)
    t0 = time.perf_counter()
    for blob in blobs:
        hashlib.sha256(blob).hexdigest()
    bare = time.perf_counter() - t0
    with tempfile.TemporaryDirectory(prefix="metarr-cache-bench-") as name:
        db = SqliteDatabase(Path(name) / "metarr.sqlite")
        await db.open()
        cache = AssetCache(db, Path(name) / "cache")
        try:
            t0 = time.perf_counter()
            for blob in blobs:
                await cache.store_bytes(blob)
            stored = time.perf_counter() - t0
            t0 = time.perf_counter()
            for blob in blobs:
                await cache.store_bytes(blob)
            again = time.perf_counter() - t0
        finally:
            await db.close()
    mb = total / 1e6
    return {"images": images, "mb": mb, "bare_mb_s": mb / bare, "store_mb_s": mb / stored,
            "again_mb_s": mb / again, "per_image_ms": stored / images * 1000}


class Timers:
    """Wraps async methods of live objects and adds up the seconds and calls spent in each."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self.calls: dict[str, int] = {}

    def wrap(self, obj: Any, method: str, label: str) -> None:
        """Time every call of obj.method under `label`."""
        real = getattr(obj, method)

        async def timed(*args: Any, **kwargs: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return await real(*args, **kwargs)
            finally:
                self.seconds[label] = self.seconds.get(label, 0.0) + time.perf_counter() - t0
                self.calls[label] = self.calls.get(label, 0) + 1

        setattr(obj, method, timed)

    def line(self) -> str:
        """`label n x ms` for every timer, then clear."""
        text = ", ".join(f"{k} {self.calls[k]}x {v * 1000:.1f} ms" for k, v in self.seconds.items())
        self.seconds, self.calls = {}, {}
        return text


async def profile_enrich(server: FakeServer) -> str:
    """Time the parts of single enrich jobs (full and emptied 40/10 s bucket), then cProfile one."""
    out = io.StringIO()
    with tempfile.TemporaryDirectory(prefix="metarr-profile-bench-") as name:
        async with make_agent(Path(name), server, 4, 1, 40) as agent:
            await scan(agent)
            ids = [r["id"] for r in await agent.db.fetchall("SELECT id FROM movies ORDER BY id")]
            enrich_item = Enricher(db=agent.db, cfg=agent.cfg, clock=agent.clock, cache=agent.cache,
                                   providers=agent.providers, prober=agent.prober, emit=agent.emit).enrich_item
            await enrich_item("movie", ids[0])  # warm-up: first connection, first cache folders
            tmdb = agent.providers.tmdb
            assert tmdb is not None
            timers = Timers()
            timers.wrap(tmdb.limiter, "acquire", "token bucket wait")
            timers.wrap(tmdb, "_fetch", "TMDB HTTP (incl. bucket)")
            timers.wrap(agent.cache, "fetch", "cache.fetch")
            timers.wrap(agent.db, "write", "db.write")
            for label, drain in (("full bucket", False), ("bucket emptied (as after a burst)", True)):
                while drain and tmdb.limiter.available() >= 1:
                    await tmdb.limiter.acquire()
                timers.line()
                t0 = time.perf_counter()
                await enrich_item("movie", ids[1 if not drain else 2])
                out.write(f"one enrich, {label}: {(time.perf_counter() - t0) * 1000:.1f} ms: {timers.line()}\n")
            tmdb.limiter._tokens = float(tmdb.limiter.capacity)
            prof = cProfile.Profile()
            prof.enable()
            await enrich_item("movie", ids[3])
            prof.disable()
            pstats.Stats(prof, stream=out).sort_stats("tottime").print_stats(12)
    return out.getvalue()


def report(results: dict[str, Any], limited: dict[str, Any] | None, cache: dict[str, Any],
           workers: int) -> str:
    """The RESULTS.md section."""
    r = results
    lines = [
        "## Publish", "",
        f"`.venv/bin/python bench/publish_bench.py --movies {r['movies']} --workers {workers}"
        f"{' --limited ' + str(limited['movies']) if limited else ''}` ({time.strftime('%Y-%m-%d')}, "
        f"{os.cpu_count()} CPUs, Python {platform.python_version()}); one process: the real Agent (queue, "
        "providers, cache, publisher) and the fake TMDB on 127.0.0.1 serving real JPEG/PNG bytes; the "
        "library is scanned first (not timed), which queues one enrich per movie at once (a burst).",
        "",
        f"- {r['movies']} movies, `providers.tmdb.rate_limit: {r['rate_limit']}` (the fake has no limit): "
        f"**{r['per_s']:.1f} movies/s** ({r['span']:.1f} s from first enrich start to last publish)",
        f"- enqueue -> publish completed: p50 {r['p50']:.1f} s, p99 {r['p99']:.1f} s (burst: all queued at t=0)",
        f"- service time per movie (enrich run + publish run): p50 {r['svc_p50'] * 1000:.0f} ms, "
        f"p99 {r['svc_p99'] * 1000:.0f} ms; enrich mean {r['enrich_mean'] * 1000:.0f} ms",
        f"- published {r['published']}/{r['movies']}, NFOs on disk {r['nfos']}, posters {r['posters']}, "
        f"failed jobs {r['failed']}, TMDB API requests {r['tmdb_requests']}",
    ]
    if limited:
        x = limited
        lines.append(
            f"- default `rate_limit: 40` (TMDB's limit), {x['movies']} movies: {x['per_s']:.1f} movies/s, "
            f"enrich mean {x['enrich_mean'] * 1000:.0f} ms, p50 {x['p50']:.1f} s, p99 {x['p99']:.1f} s "
            f"({x['tmdb_requests']} API requests): the first 40 requests are a burst, then 4 requests/s")
    c = cache
    lines.append(
        f"- cache store: {c['images']} distinct PNGs, {c['mb']:.1f} MB: `AssetCache.store_bytes` "
        f"{c['store_mb_s']:.0f} MB/s ({c['per_image_ms']:.1f} ms per image: temp file + fsync, hash, sniff, "
        f"rename + dir fsync, one row) vs bare `hashlib.sha256` {c['bare_mb_s']:.0f} MB/s; storing the same "
        f"bytes again (dedupe) {c['again_mb_s']:.0f} MB/s")
    return "\n".join(lines) + "\n"


async def main_async(args: argparse.Namespace) -> str:
    """Run every part and return the report."""
    async with FakeServer(max(args.movies, args.limited, 3)) as server:
        if args.profile:
            print(await profile_enrich(server))
        results = await pipeline(server, args.movies, args.workers, args.rate_limit)
        print(results)
        limited = None
        if args.limited:
            limited = await pipeline(server, args.limited, args.workers, 40)
            print(limited)
    cache = await cache_throughput(args.images, args.side)
    print(cache)
    return report(results, limited, cache, args.workers)


def main() -> None:
    """Parse arguments, run, print (and with --record append to bench/RESULTS.md)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--movies", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--rate-limit", type=int, default=100000, help="providers.tmdb.rate_limit for the main run")
    parser.add_argument("--limited", type=int, default=0, help="also run N movies at the default 40/10 s")
    parser.add_argument("--images", type=int, default=8)
    parser.add_argument("--side", type=int, default=600, help="PNG width = height (600 -> ~1.1 MB each)")
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--record", action="store_true", help="append the section to bench/RESULTS.md")
    args = parser.parse_args()
    text = asyncio.run(main_async(args))
    print(text)
    if args.record:
        with open(RESULTS, "a", encoding="utf-8") as fh:
            fh.write("\n" + text)


if __name__ == "__main__":
    main()
