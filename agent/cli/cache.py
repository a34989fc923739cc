"""`metarr-agent cache verify|gc`: check the artwork cache's files against their hashes, or collect garbage."""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Callable
from pathlib import Path

from agent.cache import AssetCache, GcReport, VerifyReport
from agent.config import Config, default_config_path, load_config
from agent.errors import UserError
from agent.process import DataDirLock
from agent.store import open_database

EXIT_OK, EXIT_PROBLEMS = 0, 1
ACTIONS = ("verify", "gc")


def open_cache_args(cfg: Config) -> tuple[str, Path]:
    """(store, cache root) of a config; a UserError when no SQLite database exists yet."""
    db_path = cfg.data_dir / "metarr.sqlite"
    if not cfg.shared_store and not db_path.exists():
        raise UserError(f"no database at {db_path}: start the agent once, or run `metarr-agent migrate`")
    return cfg.store_target, cfg.data_dir / "cache"


async def run_action(cfg: Config, action: str) -> VerifyReport | GcReport:
    """Open the database and the cache with the config's artwork settings and run one action."""
    db_path, root = open_cache_args(cfg)
    db = open_database(db_path)
    await db.open()
    cache = AssetCache(db, root, max_bytes=int(cfg.artwork.max_asset_mb * 1024 * 1024),
                       grace_seconds=cfg.artwork.gc_grace_days * 86400, baselines=cfg.data_dir / "published")
    try:
        return await (cache.verify() if action == "verify" else cache.gc())
    finally:
        await cache.close()
        await db.close()


def human_bytes(n: int) -> str:
    """A byte count for people (1.5 MB)."""
    size = float(n)
    for unit in ("bytes", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{n} bytes" if unit == "bytes" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} bytes"


def print_verify(report: VerifyReport) -> int:
    """Print what verify found; exit 1 if any asset was corrupt or missing."""
    print(f"checked {report.checked} asset(s): {len(report.mismatched)} corrupt, {len(report.missing)} missing")
    for problem in report.mismatched:
        print(f"  corrupt: {problem.path} (hashes to {problem.actual_sha256}); "
              f"quarantined to {problem.quarantined_to}")
    for problem in report.missing:
        print(f"  missing: {problem.path}")
    if not report.ok:
        print("the affected artwork is fetched again at the next enrich of its items")
    return EXIT_OK if report.ok else EXIT_PROBLEMS


def print_gc(report: GcReport) -> int:
    """Print what gc deleted."""
    print(f"deleted {report.assets_deleted} unreferenced asset(s), {report.orphans_deleted} orphan file(s), "
          f"{report.temps_deleted} stale temp file(s), {report.quarantine_deleted} quarantined file(s), "
          f"{report.baselines_deleted} copy(ies) of NFOs no longer published; "
          f"freed {human_bytes(report.bytes_freed)}")
    return EXIT_OK


def cmd_cache(args: argparse.Namespace) -> int:
    """Run `cache verify` or `cache gc` against the configured data_dir."""
    cfg = load_config(Path(args.config) if args.config else default_config_path())
    open_cache_args(cfg)  # no database: say so before the lock creates data_dir
    with DataDirLock(cfg.data_dir, f"run `cache {args.action}` (its daily cache_gc job collects garbage)"):
        report = asyncio.run(run_action(cfg, args.action))
    if isinstance(report, VerifyReport):
        return print_verify(report)
    return print_gc(report)


def add_commands(add: Callable[..., argparse.ArgumentParser]) -> None:
    """Register `cache` with the main parser."""
    p = add("cache", cmd_cache, "verify the artwork cache against its hashes (exit 1 on problems), or gc it")
    p.add_argument("action", choices=ACTIONS,
                   help="verify: re-hash every cached image, quarantine corrupt ones; "
                        "gc: delete unreferenced assets past the grace period, orphans, stale temps and "
                        "copies of NFOs the agent no longer publishes")
