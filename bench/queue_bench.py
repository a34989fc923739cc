"""Queue throughput: this queue vs a bare stdlib sqlite3 claim/complete loop vs huey's SqliteHuey.

Each system enqueues and then processes N no-op jobs in a fresh WAL database at the same
`PRAGMA synchronous` setting; figures are jobs per second for enqueue, process and both.

    .venv/bin/python bench/queue_bench.py [--jobs 20000] [--sync NORMAL FULL] [--workers 2]

With `--backend postgresql` (issue 17) it starts a throwaway PostgreSQL cluster (tests/pgcluster.py) and
compares the agent's queue on PgDatabase with procrastinate, each on a fresh database of that cluster,
with 1, 2 and 4 worker *processes* (`--processes`; each runs `--workers` concurrent jobs): enqueue/s
(one producer process, batches of 500), process/s (N jobs already queued; from the workers' go signal
until all N are completed) and the latency from the enqueue call to the handler's start on an idle
queue (`--samples` jobs enqueued one at a time, each after the previous one ran).

    .venv/bin/python bench/queue_bench.py --backend postgresql [--jobs 2000] [--samples 200]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.metadata
import logging
import multiprocessing
import multiprocessing.connection
import os
import platform
import signal
import sqlite3
import statistics
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from agent.queue import JobContext, Queue
from agent.queue.model import JobSpec
from agent.store import SqliteDatabase
from agent.store import jobs as sql
from agent.store.db import migrate_sync

ROOT = Path(__file__).resolve().parent.parent
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
    db = SqliteDatabase(tmp / "agent.sqlite")
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
        db = SqliteDatabase(tmp / "single.sqlite")
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
        row = conn.execute(claim, {"now": now, "worker": "bare", "saturated": "[]", "lease": now + 30.0,
                                   "elsewhere": "[]", "stale": now - 60.0}).fetchone()
        if row is None:
            break
        conn.execute(sql.COMPLETE_SQL, (now, now, row["id"], "bare"))
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


# ---------------------------------------------------------------- PostgreSQL (issue 17)

PG_JOBS = 2000  # default N on PostgreSQL
PG_TYPE = "notify_players"  # a type any agent may claim (agent.store.jobs.ANYWHERE); others stay on their agent
PG_BATCH = 500  # enqueue batch (enqueue_many / batch_defer_async)
PG_WARMUP = 10  # latency samples run first and not counted (first plans, prepared statements, pools)
PG_SPACING = 0.02  # seconds between latency samples, after the previous job started
PG_SEQUENTIAL = 1000  # jobs enqueued one await at a time, no workers running
PG_TIMEOUT = 120.0  # longest wait for any phase before the run is called failed

_children: list[Any] = []  # every worker process started: reaped on the way out, whatever happens

# Each worker process talks to the bench over a pipe of its own (no shared locks: a worker that dies,
# even by SIGKILL, cannot wedge the others or the bench). The bench sends "go" (start working) and
# "stop"; a worker sends ("ready" | "started" | "done" | "error", its name, a value). A worker whose
# bench is gone reads EOF and exits.


async def _command(conn: Any) -> str:
    """The bench's next command, read without blocking the loop; SystemExit when the bench is gone."""
    loop = asyncio.get_running_loop()
    readable = loop.create_future()
    loop.add_reader(conn.fileno(), lambda: readable.done() or readable.set_result(None))
    try:
        await readable
    finally:
        loop.remove_reader(conn.fileno())
    try:
        return conn.recv()
    except EOFError:
        raise SystemExit("the bench process is gone") from None


async def _await_command(conn: Any, want: str) -> None:
    """Wait for `want` from the bench."""
    got = await _command(conn)
    if got != want:
        raise RuntimeError(f"expected {want!r} from the bench, got {got!r}")


def _child(kind: str, url: str, name: str, workers: int, conn: Any) -> None:
    """A worker process (the agent's queue or a procrastinate worker): ready, wait for go, work until stop."""
    runner = _agent_child if kind == "agent" else _procrastinate_child
    try:
        ran = asyncio.run(runner(url, name, workers, conn))
    except BaseException:
        with contextlib.suppress(OSError):
            conn.send(("error", name, traceback.format_exc()))
        raise
    conn.send(("done", name, ran))


async def _agent_child(url: str, name: str, workers: int, conn: Any) -> int:
    """One agent: its own PgDatabase and Queue (named `name`) with a no-op handler; returns the bulk jobs it ran."""
    from agent.store import PgDatabase

    db = PgDatabase(url)
    await db.open()
    queue = Queue(db, workers=workers, agent=name)
    ran = 0

    async def noop(ctx: JobContext) -> None:
        """Does nothing; a latency sample reports when it started."""
        nonlocal ran
        started = time.time()
        t0 = ctx.payload.get("t0")
        if t0 is None:
            ran += 1
        else:
            conn.send(("started", name, started - t0))

    queue.register(PG_TYPE, noop)
    try:
        conn.send(("ready", name, None))
        await _await_command(conn, "go")
        await queue.start()
        try:
            await _await_command(conn, "stop")
        finally:
            await queue.stop()
    finally:
        await db.close()
    return ran


def _procrastinate_app(url: str) -> Any:
    """A procrastinate App on `url` with its psycopg connector (a pool of async connections)."""
    import procrastinate

    return procrastinate.App(connector=procrastinate.PsycopgConnector(conninfo=url))


async def _procrastinate_child(url: str, name: str, workers: int, conn: Any) -> int:
    """One procrastinate worker (concurrency = `workers`, LISTEN/NOTIFY on) with a no-op task."""
    app = _procrastinate_app(url)
    ran = 0

    @app.task(name="noop")
    async def noop(i: int = 0, t0: float | None = None) -> None:
        """Does nothing; a latency sample reports when it started."""
        nonlocal ran
        started = time.time()
        if t0 is None:
            ran += 1
        else:
            conn.send(("started", name, started - t0))

    await app.connector.open_async()
    try:
        conn.send(("ready", name, None))
        await _await_command(conn, "go")
        worker = asyncio.create_task(app.run_worker_async(concurrency=workers, name=name, wait=True,
                                                          install_signal_handlers=False))
        stopper = asyncio.create_task(_await_command(conn, "stop"))
        try:
            await asyncio.wait([worker, stopper], return_when=asyncio.FIRST_COMPLETED)
            if worker.done():
                worker.result()
                raise RuntimeError("the procrastinate worker stopped by itself")
        finally:
            stopper.cancel()
            worker.cancel()
            for task in (stopper, worker):
                with contextlib.suppress(asyncio.CancelledError):
                    await task
    finally:
        await app.close_async()
    return ran


class _AgentSide:
    """The producer side of the agent's queue: a Queue that is never started (it only enqueues)."""

    label, kind = "metarr queue", "agent"
    status_sql = "SELECT status, count(*) FROM job_queue GROUP BY status"
    analyze_sql = "ANALYZE job_queue"
    done = "completed"

    async def open(self, url: str) -> None:
        """Connect and migrate (before any worker process starts)."""
        from agent.store import PgDatabase

        self.db = PgDatabase(url)
        await self.db.open()
        self.queue = Queue(self.db, agent="bench-producer")

    async def many(self, payloads: list[dict[str, Any]]) -> None:
        """One enqueue_many (one transaction)."""
        await self.queue.enqueue_many(JobSpec(PG_TYPE, p) for p in payloads)

    async def one(self, payload: dict[str, Any]) -> None:
        """One enqueue (committed when it returns)."""
        await self.queue.enqueue(PG_TYPE, payload)

    async def close(self) -> None:
        """Close the store."""
        await self.db.close()


class _ProcrastinateSide:
    """The producer side of procrastinate: an App that defers the no-op task."""

    label, kind = "procrastinate", "procrastinate"
    status_sql = "SELECT status::text, count(*) FROM procrastinate_jobs GROUP BY status"
    analyze_sql = "ANALYZE procrastinate_jobs"
    done = "succeeded"

    async def open(self, url: str) -> None:
        """Connect and apply procrastinate's schema (before any worker process starts)."""
        self.app = _procrastinate_app(url)

        @self.app.task(name="noop")
        async def noop(i: int = 0, t0: float | None = None) -> None:
            """Only its name matters here: the workers run their own."""

        self.task = noop
        await self.app.connector.open_async()
        await self.app.schema_manager.apply_schema_async()

    async def many(self, payloads: list[dict[str, Any]]) -> None:
        """One batch_defer_async (one INSERT)."""
        await self.task.batch_defer_async(*payloads)

    async def one(self, payload: dict[str, Any]) -> None:
        """One defer_async."""
        await self.task.defer_async(**payload)

    async def close(self) -> None:
        """Close the pool."""
        await self.app.close_async()


async def _expect(conns: dict[str, Any], kind: str, count: int, timeout: float = PG_TIMEOUT) -> dict[str, Any]:
    """Collect `count` messages of `kind` from the worker processes ({name: value}; a list for "started").

    A worker that exits (its pipe reads EOF) before saying `kind`, or says "error", fails the run.
    """
    loop = asyncio.get_running_loop()
    waiting = dict(conns)
    got: dict[str, Any] = {}
    seen = 0
    deadline = time.monotonic() + timeout
    while seen < count:
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out after {timeout:g} s waiting for {kind!r} ({seen} of {count})")
        ready = await loop.run_in_executor(None, multiprocessing.connection.wait, list(waiting.values()), 0.2)
        for conn in ready:
            name = next(k for k, c in waiting.items() if c is conn)
            try:
                what, _, value = conn.recv()
            except EOFError:
                raise RuntimeError(f"worker process {name} exited while the bench waited for {kind!r}") from None
            if what == "error":
                raise RuntimeError(f"worker process {name} failed:\n{value}")
            if what != kind:
                continue
            seen += 1
            if kind == "started":
                got.setdefault(name, []).append(value)
            else:
                got[name] = value
                del waiting[name]  # one each (a "done" worker then exits: its pipe reads EOF)
    return got


def _tell(conns: dict[str, Any], command: str) -> None:
    """Send a command to every worker process that can still hear it."""
    for conn in conns.values():
        with contextlib.suppress(OSError):
            conn.send(command)


async def _wait_done(watch: Any, side: Any, total: int, procs: list[Any]) -> None:
    """Poll the job table (every 2 ms) until `total` jobs are done; a failed job or a dead worker is an error."""
    deadline = time.monotonic() + PG_TIMEOUT
    while True:
        counts = dict(watch.execute(side.status_sql).fetchall())
        if counts.get(side.done, 0) >= total:
            break
        others = {k: v for k, v in counts.items() if k in ("failed", "cancelled", "aborted")}
        if others:
            raise RuntimeError(f"{side.label}: jobs ended badly: {others}")
        dead = [p.name for p in procs if p.exitcode is not None]
        if dead:
            raise RuntimeError(f"{side.label}: worker process(es) {', '.join(dead)} exited early")
        if time.monotonic() > deadline:
            raise RuntimeError(f"{side.label}: only {counts} after {PG_TIMEOUT:g} s")
        await asyncio.sleep(0.002)


def _reap(procs: list[Any]) -> None:
    """Make sure every worker process started here has exited (given time, then terminated, then killed)."""
    for p in procs:
        if p.pid is None:
            continue
        p.join(15)
        if p.exitcode is None:
            p.terminate()
            p.join(5)
        if p.exitcode is None:
            p.kill()
            p.join(5)


async def _pg_config(side: Any, url: str, nprocs: int, n: int, workers: int, samples: int, ctx: Any,
                     analyze: bool = False) -> dict[str, Any]:
    """One backend with `nprocs` worker processes on a fresh database: enqueue, process, latency.

    With `analyze`, the job table's planner statistics are refreshed between enqueue and processing.
    """
    import psycopg

    await side.open(url)
    conns: dict[str, Any] = {}
    procs = []
    try:
        for i in range(nprocs):
            name = f"{side.kind}-{i}"
            conns[name], theirs = ctx.Pipe()
            proc = ctx.Process(target=_child, name=name, daemon=True, args=(side.kind, url, name, workers, theirs))
            procs.append(proc)
            _children.append(proc)
            proc.start()
            theirs.close()  # only the worker holds its end: its exit reads as EOF here
        await _expect(conns, "ready", nprocs)
        t0 = time.perf_counter()
        for start in range(0, n, PG_BATCH):
            await side.many([{"i": i} for i in range(start, min(n, start + PG_BATCH))])
        enqueue_s = time.perf_counter() - t0
        with psycopg.connect(url, autocommit=True) as watch:
            if analyze:
                watch.execute(side.analyze_sql)
            t1 = time.perf_counter()
            _tell(conns, "go")
            await _wait_done(watch, side, n, procs)
            process_s = time.perf_counter() - t1
            await asyncio.sleep(0.2)
            latencies: list[float] = []
            calls: list[float] = []
            for i in range(PG_WARMUP + samples):
                t = time.time()
                await side.one({"i": n + i, "t0": t})
                call = time.time() - t
                started = await _expect(conns, "started", 1, timeout=30)
                if i >= PG_WARMUP:
                    latencies += [v for vs in started.values() for v in vs]
                    calls.append(call)
                await asyncio.sleep(PG_SPACING)
            await _wait_done(watch, side, n + PG_WARMUP + samples, procs)
        _tell(conns, "stop")
        ran = await _expect(conns, "done", nprocs, timeout=60)
    finally:
        _tell(conns, "stop")
        _reap(procs)
        for conn in conns.values():
            conn.close()
        await side.close()
    return {"backend": side.label, "processes": nprocs, "enqueue": n / enqueue_s, "process": n / process_s,
            "latency": latencies, "call": calls, "ran": [ran[p.name] for p in procs]}


async def _pg_sequential(side: Any, url: str, m: int) -> float:
    """Jobs per second enqueued one await at a time (each committed when its call returns); no workers."""
    await side.open(url)
    try:
        for i in range(PG_WARMUP):
            await side.one({"i": -1 - i})
        t0 = time.perf_counter()
        for i in range(m):
            await side.one({"i": i})
        return m / (time.perf_counter() - t0)
    finally:
        await side.close()


def _pct(values: list[float], q: int) -> float:
    """The q-th percentile (linear interpolation between samples) in milliseconds."""
    if len(values) < 2:
        return 1000 * values[0]
    return 1000 * statistics.quantiles(values, n=100, method="inclusive")[q - 1]


def _sigterm(signo: int, _frame: Any) -> None:
    """SIGTERM: unwind (so worker processes are reaped and the cluster stops)."""
    raise SystemExit(128 + signo)


def main_pg(args: argparse.Namespace) -> int:
    """The PostgreSQL comparison on one throwaway cluster; the cluster stops and every worker exits, even on error."""
    import psycopg

    sys.path.insert(0, str(ROOT / "tests"))
    from pgcluster import Cluster

    signal.signal(signal.SIGTERM, _sigterm)
    # "App is instantiated in the main Python module": true, and harmless here (every task is named)
    logging.getLogger("procrastinate.blueprints").setLevel(logging.ERROR)
    n = args.jobs or PG_JOBS
    ctx = multiprocessing.get_context("spawn")  # no inherited event loop, threads or connections
    cluster = Cluster()
    rows: list[dict[str, Any]] = []
    sequential: dict[str, float] = {}
    try:
        cluster.start()
        with psycopg.connect(cluster.url(), autocommit=True) as conn:
            server = conn.execute("SHOW server_version").fetchone()[0]  # type: ignore[index]
            settings = dict(conn.execute("SELECT name, setting FROM pg_settings WHERE name IN"
                                         " ('fsync', 'synchronous_commit')").fetchall())
        print(f"machine: {os.cpu_count()} cores ({platform.machine()}), load average {os.getloadavg()[0]:.2f};"
              f" Python {platform.python_version()}, PostgreSQL {server} (throwaway cluster, Unix socket,"
              f" fsync={settings.get('fsync')}, synchronous_commit={settings.get('synchronous_commit')}),"
              f" psycopg {psycopg.__version__}, procrastinate {importlib.metadata.version('procrastinate')}")
        print(f"{n:,} no-op jobs per run, {args.workers} concurrent jobs per process, {args.samples} latency samples"
              f" (after {PG_WARMUP} warm-up), a fresh database per run"
              f"{'; ANALYZE after the bulk enqueue' if args.analyze else ''}", flush=True)
        for nprocs in args.processes:  # the two backends alternate, so drift in the box's load hits both
            for side_cls in (_AgentSide, _ProcrastinateSide):
                url = cluster.new_database("bench")
                row = asyncio.run(_pg_config(side_cls(), url, nprocs, n, args.workers, args.samples, ctx,
                                             args.analyze))
                rows.append(row)
                print(f"  done: {row['backend']}, {nprocs} process(es)", file=sys.stderr, flush=True)
        for side_cls in (_AgentSide, _ProcrastinateSide):
            sequential[side_cls.label] = asyncio.run(
                _pg_sequential(side_cls(), cluster.new_database("seq"), PG_SEQUENTIAL))
    finally:
        _reap(_children)
        cluster.stop()
    print(f"{'backend':<14} {'processes':>9} {'enqueue/s':>10} {'process/s':>10}"
          f" {'p50 ms':>7} {'p95 ms':>7} {'p99 ms':>7}   jobs per process")
    for row in sorted(rows, key=lambda r: (r["backend"] != "metarr queue", r["processes"])):
        lat = row["latency"]
        print(f"{row['backend']:<14} {row['processes']:>9} {row['enqueue']:>10,.0f} {row['process']:>10,.0f}"
              f" {_pct(lat, 50):>7.1f} {_pct(lat, 95):>7.1f} {_pct(lat, 99):>7.1f}"
              f"   {'/'.join(str(r) for r in row['ran'])}")
    print("latency = enqueue call -> handler start, idle workers; the enqueue call alone (p50 of all runs):")
    for label in sequential:
        calls = [c for r in rows if r["backend"] == label for c in r["call"]]
        print(f"  {label}: enqueue call p50 {statistics.median(calls) * 1000:.1f} ms;"
              f" one await at a time, no workers: {sequential[label]:,.0f}/s")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run every system at every synchronous level and print the figures."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--backend", choices=["sqlite", "postgresql"], default="sqlite")
    ap.add_argument("--jobs", type=int, default=None, help=f"default 20000 (SQLite), {PG_JOBS} (PostgreSQL)")
    ap.add_argument("--sync", nargs="+", default=["NORMAL", "FULL"], choices=["NORMAL", "FULL"])
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--runs", type=int, default=1, help="best of this many runs per system")
    ap.add_argument("--single", action="store_true",
                    help="also time one enqueue() call per job (sequential, and 500 concurrent at a time)")
    ap.add_argument("--processes", type=int, nargs="+", default=[1, 2, 4],
                    help="PostgreSQL: worker process counts to run")
    ap.add_argument("--samples", type=int, default=200, help="PostgreSQL: latency samples per run")
    ap.add_argument("--analyze", action="store_true",
                    help="PostgreSQL: ANALYZE the job table after the bulk enqueue (fresh planner statistics)")
    args = ap.parse_args(argv)
    if args.backend == "postgresql":
        return main_pg(args)
    n = args.jobs or 20000
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
