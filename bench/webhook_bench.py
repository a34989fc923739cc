"""Webhook benchmark: 1,000 Radarr Download webhooks for distinct movies against the real agent.

The agent runs as its own process (`python -m agent serve`) with every real job handler, a temp
Movies library holding the 1,000 movie folders, Radarr's `/movies` mapped onto it, and TMDB
pointed at the local fake (tests/fakes/tmdb.py) served from this process. A load client on
127.0.0.1 posts the webhooks with bounded concurrency; a poller thread watches for each movie's
NFO. Reported: accepted/s, reply latency p50/p99, webhook-to-NFO-on-disk p50/p99 and how many
were processed (must equal the count sent).

    .venv/bin/python bench/webhook_bench.py [--movies 1000] [--concurrency 20] [--workers 4] [--record]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import aiohttp
import yaml
from aiohttp import web

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from fakes.tmdb import FakeTmdb, sample_movie  # noqa: E402

API_KEY = "bench-key-0123456789"
TEMPLATE = ROOT / "tests" / "payloads" / "radarr" / "download.json"
RESULTS = ROOT / "bench" / "RESULTS.md"


def free_port() -> int:
    """A free TCP port on loopback."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def movie_name(i: int) -> tuple[str, int, str]:
    """(title, year, folder name) of the i-th bench movie."""
    title, year = f"Bench Movie {i:04d}", 1950 + i % 70
    return title, year, f"{title} ({year})"


def build_library(root: Path, n: int) -> None:
    """Create n movie folders, each with a small video file (the import already happened)."""
    for i in range(n):
        _, _, folder = movie_name(i)
        (root / folder).mkdir(parents=True)
        (root / folder / f"{folder}.mkv").write_bytes(b"\x1aE\xdf\xa3bench" + i.to_bytes(4, "big"))


def payload(i: int, template: dict[str, Any]) -> bytes:
    """A Radarr Download webhook for movie i, as Radarr spells it (no artwork URLs: no internet)."""
    title, year, folder = movie_name(i)
    data = json.loads(json.dumps(template))
    tmdb, imdb = 100000 + i, f"tt{9000000 + i:07d}"
    data["movie"].update({"id": i + 1, "title": title, "year": year, "folderPath": f"/movies/{folder}",
                          "tmdbId": tmdb, "imdbId": imdb, "images": []})
    data["remoteMovie"].update({"tmdbId": tmdb, "imdbId": imdb, "title": title, "year": year})
    data["movieFile"].update({"id": i + 1, "relativePath": f"{folder}.mkv",
                              "path": f"/movies/{folder}/{folder}.mkv"})
    return json.dumps(data).encode()


def write_config(tmp: Path, library: Path, port: int, tmdb_url: str, fake: FakeTmdb, workers: int,
                 rate_limit: int = 40) -> Path:
    """The agent's config: one Movies library, Radarr mapping, TMDB at the fake, no players."""
    cfg = {
        "server": {"host": "127.0.0.1", "port": port, "api_key": API_KEY},
        "data_dir": str(tmp / "data"),
        "log_level": "warning",
        "jobs": {"workers": workers},
        "libraries": [{"name": "Movies", "kind": "movies", "path": str(library), "watch": "off"}],
        "providers": {"tmdb": {"api_key": fake.api_key, "base_url": f"{tmdb_url}/3",
                               "image_base_url": f"{tmdb_url}/t/p/original", "rate_limit": rate_limit}},
        "sources": {"radarr": {"path_mappings": [{"remote": "/movies", "local": str(library)}]}},
    }
    path = tmp / "agent.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False), encoding="utf-8")
    return path


class NfoPoller(threading.Thread):
    """Watches for each movie's NFO and notes when it first appears."""

    def __init__(self, paths: dict[int, Path]) -> None:
        super().__init__(daemon=True)
        self.pending = dict(paths)
        self.seen: dict[int, float] = {}
        self.stop_flag = threading.Event()

    def run(self) -> None:
        """Poll every 50 ms until everything is seen or stopped."""
        while self.pending and not self.stop_flag.is_set():
            for i, path in list(self.pending.items()):
                if path.exists():
                    self.seen[i] = time.perf_counter()
                    del self.pending[i]
            time.sleep(0.05)


def pct(values: list[float], q: float) -> float:
    """The q-th percentile (nearest rank) in milliseconds."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))] * 1000


async def wait_healthy(url: str, proc: subprocess.Popen[bytes], timeout: float = 60) -> None:
    """Wait for GET /api/health to answer."""
    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"agent exited with {proc.returncode}")
            try:
                async with session.get(f"{url}/api/health") as resp:
                    if resp.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
    raise RuntimeError("agent did not become healthy")


async def run(n: int, concurrency: int, workers: int, timeout: float, rate_limit: int = 40) -> dict[str, Any]:
    """Start the fake TMDB and the agent, post n webhooks, wait for n NFOs."""
    template = json.loads(TEMPLATE.read_text(encoding="utf-8"))
    fake = FakeTmdb(movies={100000 + i: sample_movie(100000 + i, movie_name(i)[0], movie_name(i)[1],
                                                     imdb_id=f"tt{9000000 + i:07d}", collection=None, cast=5)
                            for i in range(n)})
    runner = web.AppRunner(fake.app)
    await runner.setup()
    tmdb_port = free_port()
    await web.TCPSite(runner, "127.0.0.1", tmdb_port).start()
    with tempfile.TemporaryDirectory(prefix="metarr-webhook-bench-") as tmp_name:
        tmp = Path(tmp_name)
        library = tmp / "movies"
        build_library(library, n)
        port = free_port()
        cfg = write_config(tmp, library, port, f"http://127.0.0.1:{tmdb_port}", fake, workers, rate_limit)
        log = open(tmp / "agent.log", "wb")  # noqa: SIM115 - closed in finally
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        proc = subprocess.Popen([sys.executable, "-m", "agent", "serve", "--config", str(cfg)], cwd=ROOT,
                                stdout=log, stderr=subprocess.STDOUT, env=env)
        url = f"http://127.0.0.1:{port}"
        try:
            await wait_healthy(url, proc)
            bodies = [payload(i, template) for i in range(n)]
            nfos = {i: library / movie_name(i)[2] / f"{movie_name(i)[2]}.nfo" for i in range(n)}
            poller = NfoPoller(nfos)
            poller.start()
            sent: dict[int, float] = {}
            latency: list[float] = []
            statuses: dict[int, int] = {}
            gate = asyncio.Semaphore(concurrency)
            headers = {"X-Api-Key": API_KEY, "Content-Type": "application/json"}
            async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency)) as session:

                async def one(i: int) -> None:
                    """Post one webhook and time the reply."""
                    async with gate:
                        sent[i] = t = time.perf_counter()
                        post = session.post(f"{url}/api/webhooks/radarr", data=bodies[i], headers=headers)
                        async with post as r:
                            await r.read()
                            statuses[r.status] = statuses.get(r.status, 0) + 1
                        latency.append(time.perf_counter() - t)

                t0 = time.perf_counter()
                await asyncio.gather(*(one(i) for i in range(n)))
                send_seconds = time.perf_counter() - t0
                deadline = time.monotonic() + timeout
                while poller.pending and time.monotonic() < deadline and proc.poll() is None:
                    await asyncio.sleep(0.1)
                poller.stop_flag.set()
                drain_seconds = time.perf_counter() - t0
                async with session.get(f"{url}/api/jobs?status=failed&limit=5", headers=headers) as r:
                    failed = await r.json()
                async with session.get(f"{url}/api/health", headers=headers) as r:
                    health = await r.json()
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
            log.close()
            breakdown = job_breakdown(tmp / "data" / "metarr.sqlite")
            agent_log = (tmp / "agent.log").read_text(encoding="utf-8", errors="replace")[-3000:]
            await runner.cleanup()
    to_nfo = [poller.seen[i] - sent[i] for i in poller.seen]
    return {
        "sent": n, "statuses": statuses, "send_seconds": send_seconds, "accepted_per_s": n / send_seconds,
        "reply_p50_ms": pct(latency, 50), "reply_p99_ms": pct(latency, 99),
        "processed": len(poller.seen), "drain_seconds": drain_seconds,
        "nfo_p50_ms": pct(to_nfo, 50) if to_nfo else None, "nfo_p99_ms": pct(to_nfo, 99) if to_nfo else None,
        "nfo_mean_ms": statistics.fmean(to_nfo) * 1000 if to_nfo else None,
        "failed_jobs": failed.get("total"),
        "failed_sample": [(j["type"], j["error"]) for j in failed["items"]],
        "queue": health.get("queue"), "jobs": breakdown, "tmdb_requests": sum(fake.hits.values()),
        "agent_log_tail": agent_log,
    }


def job_breakdown(db_path: Path) -> dict[str, dict[str, float]]:
    """Per job type: count, mean run time and busy span (first start to last finish), from the agent's db."""
    if not db_path.exists():
        return {}
    conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    try:
        rows = conn.execute(
            "SELECT type, COUNT(*), AVG(completed_at - started_at), MIN(started_at), MAX(completed_at)"
            " FROM job_queue WHERE status = 'completed' GROUP BY type").fetchall()
        first = conn.execute("SELECT MIN(created_at) FROM job_queue").fetchone()[0] or 0.0
    finally:
        conn.close()
    return {t: {"count": c, "mean_ms": (avg or 0) * 1000, "from_s": (lo or first) - first,
                "to_s": (hi or first) - first} for t, c, avg, lo, hi in rows}


def report(r: dict[str, Any], concurrency: int, workers: int, rate_limit: int = 40) -> str:
    """The RESULTS.md section."""
    nfo = (f"p50 {r['nfo_p50_ms'] / 1000:.1f} s, p99 {r['nfo_p99_ms'] / 1000:.1f} s"
           if r["nfo_p50_ms"] is not None else "none seen")
    lines = [
        "## Webhooks",
        "",
        f"`.venv/bin/python bench/webhook_bench.py --movies {r['sent']} --concurrency {concurrency} "
        f"--workers {workers} --rate-limit {rate_limit}` ({time.strftime('%Y-%m-%d')}, {os.cpu_count()} CPUs, Python "
        f"{platform.python_version()}); the agent is a separate process with its real handlers, TMDB is the "
        "local fake, "
        f"the {r['sent']} movie folders exist in a temp library.",
        "",
        f"- sent {r['sent']} Radarr Download webhooks, answers {r['statuses']}",
        f"- accepted: {r['accepted_per_s']:.0f}/s ({r['send_seconds']:.2f} s for all); reply latency "
        f"p50 {r['reply_p50_ms']:.1f} ms, p99 {r['reply_p99_ms']:.1f} ms",
        f"- webhook -> NFO on disk: {nfo} (a burst: every webhook is queued before the first NFO; "
        f"all {r['processed']} done {r['drain_seconds']:.1f} s after the first post)",
        f"- processed: {r['processed']} of {r['sent']} "
        f"({'all' if r['processed'] == r['sent'] else 'NOT all'}); failed jobs: {r['failed_jobs']}; "
        f"TMDB requests: {r['tmdb_requests']}",
    ]
    for type_, b in sorted(r["jobs"].items(), key=lambda kv: kv[1]["from_s"]):
        lines.append(f"  - {type_}: {b['count']} jobs, mean run {b['mean_ms']:.0f} ms, "
                     f"busy from {b['from_s']:.1f} s to {b['to_s']:.1f} s")
    if r["failed_sample"]:
        lines.append(f"- failed job sample: {r['failed_sample']}")
    return "\n".join(lines) + "\n"


def record(section: str) -> None:
    """Replace or append the `## Webhooks` section of bench/RESULTS.md, leaving other sections alone."""
    text = RESULTS.read_text(encoding="utf-8") if RESULTS.exists() else "# Benchmark results\n"
    start = text.find("## Webhooks")
    if start == -1:
        text = text.rstrip("\n") + "\n\n" + section
    else:
        end = text.find("\n## ", start + 1)
        text = text[:start] + section + (text[end + 1:] if end != -1 else "")
    RESULTS.write_text(text, encoding="utf-8")


def main() -> int:
    """Parse arguments, run, print (and optionally record) the results."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--movies", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=20)
    parser.add_argument("--workers", type=int, default=4, help="the agent's jobs.workers")
    parser.add_argument("--timeout", type=float, default=900, help="seconds to wait for every NFO")
    parser.add_argument("--rate-limit", type=int, default=40,
                        help="providers.tmdb.rate_limit (requests per 10 s); 40 is the real TMDB's limit")
    parser.add_argument("--record", action="store_true", help="write the section into bench/RESULTS.md")
    args = parser.parse_args()
    result = asyncio.run(run(args.movies, args.concurrency, args.workers, args.timeout, args.rate_limit))
    section = report(result, args.concurrency, args.workers, args.rate_limit)
    print(section)
    if result["processed"] != result["sent"]:
        print("agent log tail:\n" + result["agent_log_tail"], file=sys.stderr)
    if args.record:
        record(section)
    return 0 if result["processed"] == result["sent"] else 1


if __name__ == "__main__":
    sys.exit(main())
