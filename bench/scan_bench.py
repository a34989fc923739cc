"""Scan benchmark: 10,000 movies + 2,000 shows x 10 episodes, full scan and unchanged rescan vs a bare walk.

Run: .venv/bin/python bench/scan_bench.py [--movies N] [--shows N] [--runs N] [--record]
Targets: full scan within 10x of an os.scandir + stat walk, unchanged rescan within 2x, messy names
no slower than guessit alone, peak RSS under 150 MB. --record appends the figures to bench/RESULTS.md.
Each of --runs runs is: bare walk, full scan into a fresh database, unchanged rescan, bare walk; a
ratio is a run's scan time over the mean of its two walks, and the median of the runs' ratios is
reported (this box's shared CPU moves single figures by 30% or more).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import random
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from agent.config import parse_config
from agent.jobs.scan import build_request, scan_parts
from agent.library import naming
from agent.library.scan import run_scan
from agent.root import open_agent

WORDS = ("Silent", "Red", "River", "Night", "Empire", "Glass", "Winter", "Storm", "Echo", "Last", "Golden",
         "Shadow", "Iron", "Paper", "Moon", "Hidden", "City", "Ghost", "Wild", "Blue", "Code", "Lost")
QUALITIES = ("1080p.BluRay.x264-SPARKS", "2160p.WEB-DL.DDP5.1.HEVC-NTb", "720p.HDTV.x264-KILLERS",
             "1080p.WEBRip.x265-RARBG", "DVDRip.XviD-DiAMOND")


def title(rng: random.Random, i: int) -> str:
    """A made-up, unique title."""
    return f"{rng.choice(WORDS)} {rng.choice(WORDS)} {i}"


def messy_name(rng: random.Random, i: int) -> str:
    """A scene-style release name (dots, quality tags, a group), sometimes without a year."""
    words = title(rng, i).replace(" ", ".")
    year = rng.randint(1950, 2024)
    if i % 3 == 0:
        return f"{words}.{rng.choice(QUALITIES)}"
    return f"{words}.{year}.{rng.choice(QUALITIES)}"


def build_tree(root: Path, movies: int, shows: int, episodes: int, messy_share: float, seed: int = 7
               ) -> list[str]:
    """Write the synthetic library (empty files); returns the messy movie folder names."""
    rng = random.Random(seed)
    movie_root, tv_root = root / "movies", root / "tv"
    messy: list[str] = []
    for i in range(movies):
        if rng.random() < messy_share:
            name = messy_name(rng, i)
            messy.append(name)
            folder = movie_root / name
            folder.mkdir(parents=True)
            (folder / f"{name}.mkv").touch()
            continue
        name = f"{title(rng, i)} ({rng.randint(1950, 2024)})"
        folder = movie_root / name
        folder.mkdir(parents=True)
        (folder / f"{name} Bluray-1080p.mkv").touch()
        if i % 4 == 0:
            (folder / "poster.jpg").touch()
            (folder / "fanart.jpg").touch()
    for s in range(shows):
        show = f"{title(rng, s)} ({rng.randint(1990, 2024)})"
        season = tv_root / show / "Season 01"
        season.mkdir(parents=True)
        for e in range(1, episodes + 1):
            (season / f"{show} - S01E{e:02d} - Episode {e} WEBDL-1080p.mkv").touch()
    return messy


def bare_walk(root: Path) -> int:
    """os.scandir + stat of every entry: the floor any scan has to pay."""
    count = 0
    stack = [str(root)]
    while stack:
        with os.scandir(stack.pop()) as it:
            for entry in it:
                entry.stat()
                count += 1
                if entry.is_dir():
                    stack.append(entry.path)
    return count


def config_for(root: Path, data: str = "data") -> Any:
    """A config with the two synthetic libraries and a data dir beside them."""
    text = (f"data_dir: {root / data}\nlibraries:\n"
            f"  - {{name: Movies, kind: movies, path: {root / 'movies'}, watch: 'off'}}\n"
            f"  - {{name: TV, kind: series, path: {root / 'tv'}, watch: 'off'}}\n")
    return parse_config(text, root / "agent.yaml")


async def timed_scans(root: Path, data: str = "data") -> dict[str, Any]:
    """Full scan then unchanged rescan of both libraries into a fresh data dir; seconds and counts."""
    out: dict[str, Any] = {}
    async with open_agent(config_for(root, data), start_workers=False, background=False) as agent:
        for label in ("full", "rescan"):
            started = time.perf_counter()
            totals = {"added": 0, "unchanged": 0, "updated": 0}
            for name in ("Movies", "TV"):
                report = await run_scan(scan_parts(agent), build_request(agent.cfg, {"library": name, "source": "cli"}))
                for key in totals:
                    totals[key] += getattr(report, key)
            out[label] = (time.perf_counter() - started, totals)
        jobs = await agent.db.fetchone("SELECT COUNT(*) AS n FROM job_queue")
        out["jobs"] = jobs["n"]
    return out


def timed_walk(root: Path) -> tuple[float, int]:
    """Seconds and entries of one bare walk of both libraries (the data dirs beside them left out)."""
    started = time.perf_counter()
    entries = bare_walk(root / "movies") + bare_walk(root / "tv")
    return time.perf_counter() - started, entries


def clear_name_caches() -> None:
    """Forget every parsed name (the naming module's memos), so a run parses the tree's names again."""
    for value in vars(naming).values():
        if callable(getattr(value, "cache_clear", None)):
            value.cache_clear()


def name_rates(messy: list[str]) -> tuple[float, float]:
    """Names per second: our parse_movie_name vs guessit alone, both on a cold cache."""
    from guessit import guessit

    naming.parse_strict.cache_clear()
    naming._guess_movie.cache_clear()
    started = time.perf_counter()
    for name in messy:
        naming.parse_movie_name(name, name)
    ours = len(messy) / (time.perf_counter() - started)
    started = time.perf_counter()
    for name in messy:
        guessit(name, {"type": "movie"})
    alone = len(messy) / (time.perf_counter() - started)
    return ours, alone


def main() -> int:
    """Build, measure, print, optionally record."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--movies", type=int, default=10_000)
    parser.add_argument("--shows", type=int, default=2_000)
    parser.add_argument("--episodes", type=int, default=10)
    parser.add_argument("--messy", type=float, default=0.15, help="share of scene-style movie names")
    parser.add_argument("--runs", type=int, default=3, help="full scan + rescan repetitions (median reported)")
    parser.add_argument("--record", action="store_true", help="append the results to bench/RESULTS.md")
    args = parser.parse_args()
    if args.runs < 1 or args.movies < 1 or args.shows < 1 or args.episodes < 1:
        parser.error("--runs, --movies, --shows and --episodes must each be at least 1")
    logging.basicConfig(level=logging.WARNING)
    with tempfile.TemporaryDirectory(prefix="metarr-scan-bench-") as tmp:
        root = Path(tmp)
        started = time.perf_counter()
        messy = build_tree(root, args.movies, args.shows, args.episodes, args.messy)
        build = time.perf_counter() - started
        timed_walk(root)  # warm the dentry cache so both sides read from memory
        walks: list[float] = []
        runs: list[dict[str, Any]] = []
        for run in range(args.runs):  # this box's CPU is shared: each run is walk, full scan, rescan, walk
            clear_name_caches()  # every full scan parses every name afresh, as for a library never seen
            walk, entries = timed_walk(root)
            scans = asyncio.run(timed_scans(root, f"data-{run}"))
            after, _ = timed_walk(root)
            walks += [walk, after]
            runs.append({**scans, "walk": (walk + after) / 2})
        ours, alone = name_rates(messy)
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    walk = statistics.median(walks)
    full = statistics.median(r["full"][0] for r in runs)
    rescan = statistics.median(r["rescan"][0] for r in runs)
    # The ratios pair each run's scans with that run's own walks (before and after), so the host
    # slowing down or speeding up between runs moves both sides; the median of those is reported.
    full_ratio = statistics.median(r["full"][0] / r["walk"] for r in runs)
    rescan_ratio = statistics.median(r["rescan"][0] / r["walk"] for r in runs)
    full_counts, rescan_counts = runs[0]["full"][1], runs[0]["rescan"][1]
    per_run = "; ".join(
        f"{r['full'][0]:.2f} s = {r['full'][0] / r['walk']:.1f}x / {r['rescan'][0]:.2f} s = "
        f"{r['rescan'][0] / r['walk']:.1f}x" for r in runs
    )
    lines = [
        f"tree: {args.movies} movies ({len(messy)} scene-style names), {args.shows} shows x {args.episodes} "
        f"episodes, {entries} entries (built in {build:.1f} s)",
        f"bare scandir+stat walk: {walk:.3f} s (median of {len(walks)}: before and after each run)",
        f"full scan: {full:.2f} s, {full_ratio:.1f}x the walk (target <= 10x; medians of {args.runs} runs,"
        f" each into a fresh database, each against its own walks); {full_counts}",
        f"unchanged rescan: {rescan:.2f} s, {rescan_ratio:.1f}x the walk (target <= 2x); {rescan_counts}",
        f"each run, full / rescan against that run's walks: {per_run}"
        " (name memos cleared before each run; the first also imports guessit for the one name it still"
        " answers)",
        f"jobs queued (enrich follow-ups of the first scan only): {runs[0]['jobs']}",
        f"messy names: ours {ours:,.0f}/s vs guessit alone {alone:,.0f}/s"
        f" = {ours / alone:.1f}x (target >= 1x)",
        f"peak RSS: {rss_mb:.0f} MB (target < 150 MB)",
    ]
    print("\n".join(lines))
    if args.record:
        results = Path(__file__).resolve().parent / "RESULTS.md"
        stamp = time.strftime("%Y-%m-%d")
        block = f"\n## Scan\n\n`.venv/bin/python bench/scan_bench.py` ({stamp}, {os.cpu_count()} CPUs):\n\n"
        block += "\n".join(f"- {line}" for line in lines) + "\n"
        with results.open("a", encoding="utf-8") as fh:
            fh.write(block)
    return 0


if __name__ == "__main__":
    sys.exit(main())
