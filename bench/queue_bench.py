"""Queue throughput: this queue vs a bare stdlib sqlite3 claim/complete loop vs huey's SqliteHuey.

Each system enqueues and then processes N no-op jobs in a fresh WAL database at the same
`PRAGMA synchronous` setting; figures are jobs per second for enqueue, process and both.

    .venv/bin/python bench/queue_bench.py [--jobs 20000] [--sync NORMAL FULL] [--workers 2]
"""

from __future__ import annotations

import argparse
import asyncio
import platform
import sqlite3
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from agent.queue import JobContext, Queue
from agent.queue.model import JobSpec
from agent.store import Database
from agent.store import jobs as sql
from agent.store.db import migrate_sync

Result = tuple[float, float]  # (enqueue seconds, process seconds)
ENQUEUE_BATCH = 500


def set_synchronous(conn: sqlite3.Connection, level: str) -> None:
    """Set and check PRAGMA synchronous (outside any transaction)."""
    conn.execute(f"PRAGMA synchronous = {level}")
    got = conn.execute("PRAGMA synchronous").fetchone()[0]
    want = {"OFF": 0, "NORMAL": 1, "FULL": 2}[level]
    if got != want:
        raise RuntimeError(f"synchronous is {got}, wanted {want}")


async def bench_queue(tmp: Path, n: int, level: str, workers: int) -> Result:
    """This queue: enqueue_many in batches, then run_until_idle with `workers` workers."""
    db = Database(tmp / "agent.sqlite")
    await db.open()
    writer = db._writer  # the bench sets the pragma on the writer connection, outside a transaction
    assert writer is not None
    await writer._execute(set_synchronous, writer._conn, level)
    queue = Queue(db, workers=workers)

    async def noop(ctx: JobContext) -> None:
        """A job that does nothing."""

    queue.register("noop", noop)
    t0 = time.perf_counter()
    for start in range(0, n, ENQUEUE_BATCH):
        stop = min(n, start + ENQUEUE_BATCH)
        await queue.enqueue_many(JobSpec("noop", {"i": i}) for i in range(start, stop))
    t1 = time.perf_counter()
    await queue.run_until_idle()
    t2 = time.perf_counter()
    done = (await db.fetchone("SELECT COUNT(*) FROM job_queue WHERE status = 'completed'"))[0]
    await db.close()
    if done != n:
        raise RuntimeError(f"queue completed {done} of {n} jobs")
    return t1 - t0, t2 - t1


def bench_queue_single(tmp: Path, n: int, level: str, workers: int, burst: int = 1) -> Result:
    """This queue with one `enqueue()` call per job, awaited one at a time or `burst` at a time (gather)."""

    async def run() -> Result:
        """Enqueue one by one, then drain."""
        db = Database(tmp / "single.sqlite")
        await db.open()
        writer = db._writer
        assert writer is not None
        await writer._execute(set_synchronous, writer._conn, level)
        queue = Queue(db, workers=workers)

        async def noop(ctx: JobContext) -> None:
            """A job that does nothing."""

        queue.register("noop", noop)
        t0 = time.perf_counter()
        for start in range(0, n, burst):
            stop = min(n, start + burst)
            await asyncio.gather(*(queue.enqueue("noop", {"i": i}) for i in range(start, stop)))
        t1 = time.perf_counter()
        await queue.run_until_idle()
        t2 = time.perf_counter()
        await db.close()
        return t1 - t0, t2 - t1

    return asyncio.run(run())


MINIMAL_CLAIM = """
UPDATE job_queue SET status = 'running', attempts = attempts + 1, started_at = :now, updated_at = :now,
       worker = :worker
 WHERE id = (SELECT id FROM job_queue INDEXED BY ix_job_claim
              WHERE status = 'pending' AND run_after <= :now ORDER BY priority, id LIMIT 1)
RETURNING *
"""


def bench_bare(tmp: Path, n: int, level: str, claim: str = sql.CLAIM_SQL) -> Result:
    """Stdlib sqlite3 over the same schema: one autocommitted statement per step (insert, claim, complete)."""
    conn = sqlite3.connect(tmp / "bare.sqlite", isolation_level=None)
    conn.row_factory = sqlite3.Row
    conn.execute("PRAGMA journal_mode = WAL")
    migrate_sync(conn)
    set_synchronous(conn, level)
    t0 = time.perf_counter()
    for i in range(n):
        conn.execute("INSERT INTO job_queue (type, priority, payload, max_retries, run_after, created_at,"
                     " updated_at) VALUES ('noop', 5, ?, 3, ?, ?, ?)", (f'{{"i": {i}}}', t0, t0, t0))
    t1 = time.perf_counter()
    done = 0
    while True:
        now = time.time()
        row = conn.execute(claim, {"now": now, "worker": "bare", "saturated": "[]"}).fetchone()
        if row is None:
            break
        conn.execute(sql.COMPLETE_SQL, (now, now, row["id"]))
        done += 1
    t2 = time.perf_counter()
    conn.close()
    if done != n:
        raise RuntimeError(f"bare loop completed {done} of {n} jobs")
    return t1 - t0, t2 - t1


def bench_huey(tmp: Path, n: int, level: str) -> Result:
    """huey's SqliteHuey: enqueue task calls, then dequeue + execute in-process (what a worker does)."""
    from huey import SqliteHuey
    from huey.storage import SqliteStorage

    class Storage(SqliteStorage):
        """SqliteStorage at the same synchronous level as the others (its fsync flag offers OFF/FULL only)."""

        def _create_connection(self) -> sqlite3.Connection:
            """Huey's connection plus our PRAGMA synchronous."""
            conn = super()._create_connection()
            set_synchronous(conn, level)
            return conn

    class Huey(SqliteHuey):
        """SqliteHuey over that storage."""

        storage_class = Storage

    huey = Huey("bench", filename=str(tmp / "huey.sqlite"), results=False)
    counter = {"done": 0}

    @huey.task()
    def noop(i: int) -> None:
        """A job that does nothing (counts itself)."""
        counter["done"] += 1

    t0 = time.perf_counter()
    for i in range(n):
        noop(i)
    t1 = time.perf_counter()
    while (task := huey.dequeue()) is not None:
        huey.execute(task)
    t2 = time.perf_counter()
    if counter["done"] != n:
        raise RuntimeError(f"huey ran {counter['done']} of {n} tasks")
    return t1 - t0, t2 - t1


def line(name: str, n: int, res: Result) -> str:
    """One row of the report."""
    enq, proc = res
    return (f"  {name:<37} enqueue {n / enq:>8,.0f}/s  process {n / proc:>8,.0f}/s"
            f"  total {n / (enq + proc):>8,.0f}/s")


def best(runs: int, fn: Callable[[], Result]) -> Result:
    """The fastest of `runs` runs (by total time)."""
    return min((fn() for _ in range(runs)), key=lambda r: r[0] + r[1])


def fresh(fn: Callable[[Path], Result]) -> Callable[[], Result]:
    """Wrap fn to run in a fresh temp dir."""

    def run() -> Result:
        """One run."""
        with tempfile.TemporaryDirectory() as d:
            return fn(Path(d))

    return run


def main(argv: list[str] | None = None) -> int:
    """Run every system at every synchronous level and print the figures."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--jobs", type=int, default=20000)
    ap.add_argument("--sync", nargs="+", default=["NORMAL", "FULL"], choices=["NORMAL", "FULL"])
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--runs", type=int, default=1, help="best of this many runs per system")
    ap.add_argument("--single", action="store_true",
                    help="also time one enqueue() call per job (sequential, and 500 concurrent at a time)")
    args = ap.parse_args(argv)
    n = args.jobs
    print(f"{n:,} no-op jobs; Python {platform.python_version()}, SQLite {sqlite3.sqlite_version}, "
          f"{platform.machine()}, WAL, workers={args.workers}")
    for level in args.sync:
        print(f"synchronous = {level}")
        rows: dict[str, Result] = {}
        systems: dict[str, Callable[[Path], Result]] = {
            "metarr queue (enqueue_many)": lambda d, lv=level: asyncio.run(
                bench_queue(d, n, lv, args.workers)),
            "bare sqlite3 loop": lambda d, lv=level: bench_bare(d, n, lv),
            "bare sqlite3 loop, minimal claim": lambda d, lv=level: bench_bare(d, n, lv, MINIMAL_CLAIM),
            "huey SqliteHuey (in-process)": lambda d, lv=level: bench_huey(d, n, lv),
        }
        if args.single:
            systems["metarr queue (enqueue one by one)"] = (
                lambda d, lv=level: bench_queue_single(d, n, lv, args.workers))
            systems["metarr queue (gather of 500 enqueue)"] = (
                lambda d, lv=level: bench_queue_single(d, n, lv, args.workers, burst=500))
        for name, fn in systems.items():
            rows[name] = best(args.runs, fresh(fn))
        for name, res in rows.items():
            print(line(name, n, res))
        ours = rows["metarr queue (enqueue_many)"]
        for other in [k for k in rows if not k.startswith("metarr")]:
            theirs = rows[other]
            print(f"  queue / {other}: process {theirs[1] / ours[1]:.2f}x,"
                  f" total {sum(theirs) / sum(ours):.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
