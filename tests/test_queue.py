"""The job queue against a real SQLite file: order, retries, dedupe, dependencies, limits, cancel, stop."""

from __future__ import annotations

import asyncio
import logging
import random
import sqlite3
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from conftest import wait_for

from agent.clock import FakeClock
from agent.errors import Conflict, PermanentFailure, RetryLater, UserError
from agent.queue import JobContext, Queue
from agent.queue.model import BACKOFF_BASE, BACKOFF_CAP, JobSpec, Priority, Status, backoff_delay
from agent.store import Database
from agent.store import jobs as sql

Events = list[tuple[str, dict[str, Any]]]


@pytest.fixture
def events() -> Events:
    """Every event the queue emitted, in order."""
    return []


@pytest.fixture
async def make_queue(db: Database, clock: FakeClock, events: Events) -> AsyncIterator[Callable[..., Queue]]:
    """Build queues over the test database that record their events; stops them afterwards."""
    made: list[Queue] = []

    def factory(**kw: Any) -> Queue:
        """A queue with a fake clock, a seeded rng and an event recorder."""
        kw.setdefault("rng", random.Random(7))
        q = Queue(db, clock, emit=lambda t, d: events.append((t, d)), **kw)
        made.append(q)
        return q

    yield factory
    for q in made:
        await q.stop()


async def status_of(db: Database, job_id: int) -> str:
    """The stored status of one job."""
    return (await db.fetchone("SELECT status FROM job_queue WHERE id = ?", (job_id,)))["status"]


async def test_priority_first_then_oldest_first(make_queue: Callable[..., Queue]) -> None:
    """Lower priority numbers run first; equal priorities run in enqueue order."""
    q = make_queue(workers=1)
    ran: list[str] = []

    async def handler(ctx: JobContext) -> None:
        """Record the job's name."""
        ran.append(ctx.payload["name"])

    q.register("t", handler)
    for name, pri in [("low", Priority.LOW), ("n1", Priority.NORMAL), ("crit", Priority.CRITICAL),
                      ("n2", Priority.NORMAL), ("high", Priority.HIGH), ("n3", Priority.NORMAL)]:
        await q.enqueue("t", {"name": name}, priority=pri)
    await q.run_until_idle()
    assert ran == ["crit", "high", "n1", "n2", "n3", "low"]


async def test_follow_ups_run_with_their_chain(make_queue: Callable[..., Queue]) -> None:
    """A follow-up runs before unrelated equal-priority jobs queued after its chain started."""
    q = make_queue(workers=1)
    ran: list[str] = []

    async def handler(ctx: JobContext) -> None:
        """Record the job's name; the first step of each chain queues a second and a third."""
        name = ctx.payload["name"]
        ran.append(name)
        if name.endswith("-1"):
            step = await ctx.enqueue("t", {"name": name[:-1] + "2"})
            assert step.chain == ctx.job.id
        elif name.endswith("-2"):
            step = await ctx.enqueue("t", {"name": name[:-1] + "3"})
            assert step.chain == ctx.job.chain  # the chain keeps its root
    q.register("t", handler)
    for movie in ("a", "b", "c"):
        await q.enqueue("t", {"name": f"{movie}-1"})
    await q.run_until_idle()
    assert ran == ["a-1", "a-2", "a-3", "b-1", "b-2", "b-3", "c-1", "c-2", "c-3"]
    with pytest.raises(UserError, match="chain"):
        await q.enqueue("t", chain=0)


async def test_enqueue_rejects_bad_input(make_queue: Callable[..., Queue]) -> None:
    """Bad priorities, delays, dependencies and payloads are clear UserErrors, not crashes."""
    q = make_queue()
    with pytest.raises(UserError, match="priority"):
        await q.enqueue("t", priority=0)
    with pytest.raises(UserError, match="delay"):
        await q.enqueue("t", delay=-1)
    with pytest.raises(UserError, match="do not exist"):
        await q.enqueue("t", depends_on=[999])
    with pytest.raises(UserError, match="JSON"):
        await q.enqueue("t", {"x": object()})
    with pytest.raises(UserError, match="type"):
        await q.enqueue("")


async def test_concurrent_enqueues_share_one_transaction_but_fail_alone(
        make_queue: Callable[..., Queue], db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    """A burst of enqueues is one write; a bad one among them fails alone."""
    q = make_queue()
    writes = 0
    real_write = db.write

    async def counting(fn: Callable[..., Any], *args: Any) -> Any:
        """Count writer-thread hops."""
        nonlocal writes
        writes += 1
        return await real_write(fn, *args)

    monkeypatch.setattr(db, "write", counting)
    results = await asyncio.gather(q.enqueue("t", {"n": 1}), q.enqueue("t", depends_on=[999]),
                                   q.enqueue("t", {"n": 3}), return_exceptions=True)
    assert writes == 1
    assert isinstance(results[1], UserError) and "do not exist" in str(results[1])
    good = [r for r in results if not isinstance(r, BaseException)]
    assert [j.payload for j in good] == [{"n": 1}, {"n": 3}]
    assert (await db.fetchone("SELECT COUNT(*) FROM job_queue"))[0] == 2


async def test_enqueue_many_is_one_batch(make_queue: Callable[..., Queue], db: Database) -> None:
    """enqueue_many inserts all jobs (deduping within the batch) and is all-or-nothing."""
    q = make_queue()
    jobs = await q.enqueue_many([JobSpec("t", {"i": 1}), JobSpec("t", {"i": 2}, dedupe_key="k"),
                                 JobSpec("t", {"i": 3}, dedupe_key="k")])
    assert jobs[1].id == jobs[2].id and jobs[0].id != jobs[1].id
    with pytest.raises(UserError):
        await q.enqueue_many([JobSpec("t", {"i": 4}), JobSpec("t", depends_on=[12345])])
    assert (await db.fetchone("SELECT COUNT(*) FROM job_queue"))[0] == 2


async def test_backoff_grows_is_capped_and_exposed(make_queue: Callable[..., Queue],
                                                   clock: FakeClock) -> None:
    """Failures retry after base*2^(n-1) scaled by 0.5..1 jitter, capped; next_retry_at is shown."""
    q = make_queue(max_retries=5)
    calls = 0

    async def boom(ctx: JobContext) -> None:
        """Always fail (transiently)."""
        nonlocal calls
        calls += 1
        raise RuntimeError("upstream down")

    q.register("t", boom)
    job = await q.enqueue("t")
    delays = []
    for attempt in range(1, 6):
        await q.run_until_idle()
        stored = await q.get(job.id)
        assert stored.status == Status.PENDING and stored.attempts == attempt
        delay = stored.run_after - clock.now()
        raw = min(BACKOFF_CAP, BACKOFF_BASE * 2 ** (attempt - 1))
        assert raw / 2 <= delay <= raw
        assert stored.to_dict()["next_retry_at"] is not None
        assert "RuntimeError: upstream down" in stored.error
        delays.append(delay)
        clock.advance(delay - 0.5)
        await q.run_until_idle()
        assert calls == attempt  # not yet due
        clock.advance(0.5)
    assert delays[-1] > delays[0]
    # the schedule is a pure function of the seeded rng, and the cap holds far out
    rng_a, rng_b = random.Random(3), random.Random(3)
    assert [backoff_delay(n, rng_a) for n in range(1, 20)] == [backoff_delay(n, rng_b) for n in range(1, 20)]
    assert all(BACKOFF_CAP / 2 <= backoff_delay(n, random.Random(n)) <= BACKOFF_CAP for n in range(10, 30))


async def test_retry_later_delay_is_honoured_exactly(make_queue: Callable[..., Queue],
                                                     clock: FakeClock) -> None:
    """RetryLater(delay) (HTTP 429 Retry-After) schedules exactly that delay, without jitter."""
    q = make_queue()
    calls = 0

    async def limited(ctx: JobContext) -> str:
        """Rate limited on the first call."""
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RetryLater("HTTP 429 from TMDB", delay=42)
        return "ok"

    q.register("t", limited)
    job = await q.enqueue("t")
    await q.run_until_idle()
    stored = await q.get(job.id)
    assert stored.run_after == clock.now() + 42
    assert stored.error == "HTTP 429 from TMDB"
    clock.advance(41.9)
    await q.run_until_idle()
    assert calls == 1
    clock.advance(0.1)
    await q.run_until_idle()
    done = await q.get(job.id)
    assert (done.status, done.result, done.attempts) == (Status.COMPLETED, "ok", 2)


async def test_dead_letter_after_max_retries_is_kept_and_retryable(
        make_queue: Callable[..., Queue], clock: FakeClock, events: Events) -> None:
    """After max_retries the job stays failed, listed, retryable and never pruned."""
    q = make_queue(prune_after=60.0)
    fail = True

    async def flaky(ctx: JobContext) -> None:
        """Fail while `fail` is set."""
        if fail:
            raise RetryLater("busy", delay=1)

    q.register("t", flaky)
    job = await q.enqueue("t", max_retries=2)
    for _ in range(3):
        await q.run_until_idle()
        clock.advance(1)
    dead = await q.get(job.id)
    assert (dead.status, dead.attempts) == (Status.FAILED, 3)
    assert [e[1]["will_retry"] for e in events if e[0] == "job:failed"] == [True, True, False]
    assert q.counters["retried"] == 2 and q.counters["failed"] == 1
    listed, total = await q.list(status="failed")
    assert total == 1 and listed[0].id == job.id
    clock.advance(3600)
    await q.prune()
    assert (await q.get(job.id)).status == Status.FAILED
    fail = False
    again = await q.retry(job.id)
    assert (again.status, again.attempts) == (Status.PENDING, 0)
    await q.run_until_idle()
    assert (await q.get(job.id)).status == Status.COMPLETED
    with pytest.raises(Conflict):
        await q.retry(job.id)


async def test_permanent_failure_and_unknown_type_do_not_retry(make_queue: Callable[..., Queue]) -> None:
    """PermanentFailure and a type without a handler fail at once."""
    q = make_queue()

    async def bad(ctx: JobContext) -> None:
        """Fail for good."""
        raise PermanentFailure("file is not a movie")

    q.register("bad", bad)
    a = await q.enqueue("bad")
    b = await q.enqueue("nobody-handles-this")
    await q.run_until_idle()
    ja, jb = await q.get(a.id), await q.get(b.id)
    assert (ja.status, ja.attempts, ja.error) == (Status.FAILED, 1, "file is not a movie")
    assert jb.status == Status.FAILED and "no handler registered" in (jb.error or "")


async def test_dedupe_under_concurrent_enqueue(make_queue: Callable[..., Queue], db: Database) -> None:
    """Many concurrent enqueues with one key make one row; the index itself rejects a raw duplicate."""
    q = make_queue()
    jobs = await asyncio.gather(*(q.enqueue("enrich", {"n": i}, dedupe_key="enrich:movie:1")
                                  for i in range(40)))
    assert len({j.id for j in jobs}) == 1
    assert (await db.fetchone("SELECT COUNT(*) FROM job_queue WHERE dedupe_key = 'enrich:movie:1'"))[0] == 1
    with pytest.raises(sqlite3.IntegrityError, match="UNIQUE"):
        await db.execute("INSERT INTO job_queue (type, dedupe_key, created_at, updated_at)"
                         " VALUES ('enrich', 'enrich:movie:1', 0, 0)")
    # asking again at a more urgent priority raises the pending job's priority
    again = await q.enqueue("enrich", dedupe_key="enrich:movie:1", priority=Priority.CRITICAL)
    assert again.id == jobs[0].id and again.priority == Priority.CRITICAL


async def test_dedupe_against_pending_only_and_superseded_retry(
        make_queue: Callable[..., Queue], events: Events) -> None:
    """A running job does not absorb new work; if it then needs a retry, the newer pending twin does it."""
    q = make_queue(workers=1)
    release = asyncio.Event()
    runs: list[int] = []

    async def handler(ctx: JobContext) -> None:
        """The first run waits, then asks for a retry."""
        runs.append(ctx.job.id)
        if len(runs) == 1:
            await release.wait()
            raise RetryLater("try again", delay=0)

    q.register("t", handler)
    first = await q.enqueue("t", dedupe_key="k", lock_key="k")
    task = asyncio.create_task(q.run_until_idle())
    await wait_for(lambda: runs)
    second = await q.enqueue("t", dedupe_key="k", lock_key="k")
    follower = await q.enqueue("after", depends_on=[first.id])
    assert second.id != first.id
    release.set()
    await asyncio.wait_for(task, 5)
    assert runs == [first.id, second.id]
    superseded = await q.get(first.id)
    assert superseded.status == Status.CANCELLED
    assert f"superseded by pending job {second.id}" in (superseded.error or "")
    assert (await q.get(follower.id)).depends_on == [second.id]
    assert ("job:cancelled", {"job_id": first.id, "type": "t", "error": superseded.error,
                              "will_retry": False}) in events


async def test_dependency_chain_runs_in_order(make_queue: Callable[..., Queue]) -> None:
    """A job waits for its dependencies even when it has a more urgent priority."""
    q = make_queue(workers=3)
    ran: list[str] = []

    async def handler(ctx: JobContext) -> None:
        """Record the name."""
        ran.append(ctx.payload["name"])

    q.register("t", handler)
    a = await q.enqueue("t", {"name": "a"}, priority=Priority.LOW)
    b = await q.enqueue("t", {"name": "b"}, priority=Priority.CRITICAL, depends_on=[a.id])
    await q.enqueue("t", {"name": "c"}, priority=Priority.CRITICAL, depends_on=[b.id])
    await q.run_until_idle()
    assert ran == ["a", "b", "c"]


async def test_permanent_failure_fails_dependents_naming_them(
        make_queue: Callable[..., Queue], events: Events) -> None:
    """A -> B -> C: A fails permanently, so B and C fail, each naming the job it waited on."""
    q = make_queue()

    async def handler(ctx: JobContext) -> None:
        """A fails for good."""
        if ctx.payload["name"] == "a":
            raise PermanentFailure("bad input")

    q.register("t", handler)
    a = await q.enqueue("t", {"name": "a"})
    b = await q.enqueue("t", {"name": "b"}, depends_on=[a.id])
    c = await q.enqueue("t", {"name": "c"}, depends_on=[b.id])
    await q.run_until_idle()
    jb, jc = await q.get(b.id), await q.get(c.id)
    assert jb.status == Status.FAILED and jb.error == f"dependency job {a.id} (t) failed"
    assert jc.status == Status.FAILED and jc.error == f"dependency job {b.id} (t) failed"
    assert jb.attempts == 0 and jc.attempts == 0
    failed = [d["job_id"] for t, d in events if t == "job:failed"]
    assert failed == [a.id, b.id, c.id]
    # a job enqueued after its dependency is dead fails at once
    d = await q.enqueue("t", {"name": "d"}, depends_on=[a.id])
    assert d.status == Status.FAILED and str(a.id) in (d.error or "")


async def test_cancelling_a_pending_dependency_fails_dependents(make_queue: Callable[..., Queue]) -> None:
    """Cancelling a pending job fails the jobs waiting on it."""
    q = make_queue()
    a = await q.enqueue("t", delay=60)
    b = await q.enqueue("t", depends_on=[a.id])
    await q.cancel(a.id)
    jb = await q.get(b.id)
    assert jb.status == Status.FAILED and jb.error == f"dependency job {a.id} (t) cancelled"


async def test_per_type_limit_with_real_concurrency(make_queue: Callable[..., Queue]) -> None:
    """No more than limits[type] of a type run at once, while other types use the free workers."""
    q = make_queue(workers=5, limits={"slow": 2})
    gate = asyncio.Event()
    now_running = {"slow": 0, "fast": 0}
    peak = {"slow": 0, "fast": 0}
    fast_done = 0

    async def slow(ctx: JobContext) -> None:
        """Hold a slot until the gate opens."""
        now_running["slow"] += 1
        peak["slow"] = max(peak["slow"], now_running["slow"])
        await gate.wait()
        now_running["slow"] -= 1

    async def fast(ctx: JobContext) -> None:
        """Count concurrency and finish."""
        nonlocal fast_done
        now_running["fast"] += 1
        peak["fast"] = max(peak["fast"], now_running["fast"])
        await asyncio.sleep(0)
        now_running["fast"] -= 1
        fast_done += 1

    q.register("slow", slow)
    q.register("fast", fast)
    for _ in range(6):
        await q.enqueue("slow")
    for _ in range(4):
        await q.enqueue("fast", priority=Priority.LOW)
    task = asyncio.create_task(q.run_until_idle())
    await wait_for(lambda: fast_done == 4)
    assert now_running["slow"] == 2
    gate.set()
    await asyncio.wait_for(task, 5)
    assert peak["slow"] == 2 and peak["fast"] >= 2


async def test_lock_key_serialises_jobs(make_queue: Callable[..., Queue]) -> None:
    """Jobs sharing a lock_key never overlap; a different key runs alongside."""
    q = make_queue(workers=4)
    gate = asyncio.Event()
    holding: dict[str, int] = {}
    peak: dict[str, int] = {}
    started: list[str] = []

    async def scan(ctx: JobContext) -> None:
        """Hold the library's lock until the gate opens."""
        lib = ctx.payload["lib"]
        started.append(lib)
        holding[lib] = holding.get(lib, 0) + 1
        peak[lib] = max(peak.get(lib, 0), holding[lib])
        await gate.wait()
        holding[lib] -= 1

    q.register("scan", scan)
    for lib in ["movies", "movies", "movies", "tv"]:
        await q.enqueue("scan", {"lib": lib}, lock_key=f"scan:{lib}")
    task = asyncio.create_task(q.run_until_idle())
    await wait_for(lambda: sorted(started) == ["movies", "tv"])
    gate.set()
    await asyncio.wait_for(task, 5)
    assert started.count("movies") == 3 and peak == {"movies": 1, "tv": 1}


async def test_timeout_fails_the_attempt(make_queue: Callable[..., Queue]) -> None:
    """A handler running past its type's timeout is interrupted and recorded as timed out."""
    q = make_queue()
    interrupted = asyncio.Event()

    async def hang(ctx: JobContext) -> None:
        """Never finish on its own."""
        try:
            await asyncio.Event().wait()
        finally:
            interrupted.set()

    q.register("hang", hang, timeout=0.05)
    job = await q.enqueue("hang", max_retries=0)
    await asyncio.wait_for(q.run_until_idle(), 5)
    stored = await q.get(job.id)
    assert interrupted.is_set()
    assert stored.status == Status.FAILED and stored.error == "timed out after 0.05 s"


async def test_cancel_pending_job(make_queue: Callable[..., Queue], events: Events) -> None:
    """A pending job is cancelled at once and never runs; a finished one cannot be cancelled."""
    q = make_queue()
    ran: list[int] = []

    async def handler(ctx: JobContext) -> None:
        """Record the run."""
        ran.append(ctx.job.id)

    q.register("t", handler)
    a = await q.enqueue("t")
    b = await q.enqueue("t")
    cancelled = await q.cancel(a.id)
    assert cancelled.status == Status.CANCELLED
    await q.run_until_idle()
    assert ran == [b.id]
    assert ("job:cancelled", {"job_id": a.id, "type": "t"}) in events
    with pytest.raises(Conflict, match="completed"):
        await q.cancel(b.id)


async def test_cancel_running_job_stops_at_checkpoint(make_queue: Callable[..., Queue], db: Database) -> None:
    """A running job stops at its next progress checkpoint and is recorded as cancelled."""
    q = make_queue()
    step = asyncio.Event()
    reached: list[int] = []

    async def long(ctx: JobContext) -> None:
        """Ten steps with a checkpoint after each."""
        for i in range(10):
            reached.append(i)
            await step.wait()
            step.clear()
            await ctx.progress((i + 1) / 10, f"step {i + 1}")

    q.register("long", long)
    job = await q.enqueue("long")
    task = asyncio.create_task(q.run_until_idle())
    await wait_for(lambda: reached == [0])
    with pytest.raises(Conflict, match="running"):
        await q.cancel(job.id)  # DELETE semantics: a running job is not deleted
    requested = await q.cancel(job.id, allow_running=True)
    assert requested.status == Status.RUNNING
    step.set()
    await asyncio.wait_for(task, 5)
    stored = await q.get(job.id)
    assert stored.status == Status.CANCELLED and reached == [0]
    assert stored.progress == 0.1  # the checkpoint's progress was saved before it stopped


async def test_progress_is_saved_and_emitted(make_queue: Callable[..., Queue], events: Events) -> None:
    """ctx.progress stores the fraction and message and emits job:progress."""
    q = make_queue()

    async def handler(ctx: JobContext) -> None:
        """Report twice."""
        await ctx.progress(0.5, "half")
        await ctx.progress(2.0, "clamped")

    q.register("t", handler)
    job = await q.enqueue("t")
    await q.run_until_idle()
    progress = [d for t, d in events if t == "job:progress"]
    assert [(p["progress"], p["message"]) for p in progress] == [(0.5, "half"), (1.0, "clamped")]
    assert (await q.get(job.id)).progress == 1.0


async def test_events_in_order_for_fail_once_then_succeed(make_queue: Callable[..., Queue],
                                                          events: Events) -> None:
    """queued, started, failed(will_retry), started, completed, then a coalesced queue:stats."""
    q = make_queue()
    calls = 0

    async def flaky(ctx: JobContext) -> dict[str, int]:
        """Fail the first time."""
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RetryLater("503", delay=0)
        return {"calls": calls}

    q.register("t", flaky)
    job = await q.enqueue("t")
    await q.run_until_idle()
    kinds = [(t, d.get("will_retry")) for t, d in events
             if t.startswith("job:") and d.get("job_id") == job.id]
    assert kinds == [("job:queued", None), ("job:started", None), ("job:failed", True), ("job:started", None),
                     ("job:completed", None)]
    assert events[-1][0] == "job:completed" and events[-1][1]["result"] == {"calls": 2}
    await wait_for(lambda: any(t == "queue:stats" for t, _ in events))
    stats = [d for t, d in events if t == "queue:stats"][-1]
    assert stats == {"pending": 0, "running": 0, "failed": 0}


async def test_prune_removes_old_completed_keeps_failed(make_queue: Callable[..., Queue],
                                                        clock: FakeClock) -> None:
    """Completed jobs older than prune_after are deleted; failed ones stay; recent completed stay."""
    q = make_queue(prune_after=86400.0)

    async def handler(ctx: JobContext) -> None:
        """Fail when asked to."""
        if ctx.payload.get("fail"):
            raise PermanentFailure("no")

    q.register("t", handler)
    old_ok = await q.enqueue("t")
    old_bad = await q.enqueue("t", {"fail": True})
    await q.run_until_idle()
    clock.advance(2 * 86400)
    new_ok = await q.enqueue("t")
    await q.run_until_idle()  # the dispatcher prunes on its own (hourly)
    assert {j.id for j in (await q.list())[0]} == {old_bad.id, new_ok.id}
    assert old_ok.id not in {j.id for j in (await q.list())[0]}
    clock.advance(2 * 86400)
    assert await q.prune() == 1
    assert {j.id for j in (await q.list())[0]} == {old_bad.id}


async def test_recover_requeues_jobs_left_running(make_queue: Callable[..., Queue], db: Database,
                                                  caplog: pytest.LogCaptureFixture) -> None:
    """Jobs a crash left running are pending again at start, with the count logged."""
    q = make_queue()
    a, b = await q.enqueue("t"), await q.enqueue("t")
    claimed, _ = await db.write(sql.flush_and_claim, [], 2, "dead-worker", [], {}, {}, q.clock.now())
    assert {j.id for j in claimed} == {a.id, b.id}
    ran: list[int] = []

    async def handler(ctx: JobContext) -> None:
        """Record the run."""
        ran.append(ctx.job.id)

    q.register("t", handler)
    with caplog.at_level(logging.WARNING, logger="agent.queue"):
        await q.start()
    assert "re-queued 2 job(s)" in caplog.text
    await wait_for(lambda: len(ran) == 2)
    await q.stop()
    for job_id in (a.id, b.id):
        stored = await q.get(job_id)
        assert stored.status == Status.COMPLETED and stored.attempts == 2  # the crashed attempt counts


async def test_recover_with_a_pending_twin_supersedes(make_queue: Callable[..., Queue], db: Database) -> None:
    """A crashed running job whose dedupe_key has a newer pending job does not break recovery."""
    q = make_queue()
    old = await q.enqueue("t", dedupe_key="k")
    await db.write(sql.flush_and_claim, [], 1, "dead-worker", [], {}, {}, q.clock.now())
    new = await q.enqueue("t", dedupe_key="k")
    assert await q.recover() == 1
    assert (await q.get(old.id)).status == Status.CANCELLED
    assert (await q.get(new.id)).status == Status.PENDING


async def test_graceful_stop_requeues_unfinished_job_without_using_an_attempt(
        make_queue: Callable[..., Queue]) -> None:
    """stop() waits the grace period, then re-queues the job it interrupted with its attempt refunded."""
    q = make_queue(grace=0.05)
    started = asyncio.Event()
    finish = asyncio.Event()

    async def handler(ctx: JobContext) -> str:
        """Block until released (the second run is released at once)."""
        started.set()
        await finish.wait()
        return "done"

    q.register("t", handler)
    job = await q.enqueue("t")
    await q.start()
    await asyncio.wait_for(started.wait(), 5)
    await q.stop()
    stored = await q.get(job.id)
    assert (stored.status, stored.attempts, stored.message) == (Status.PENDING, 0, "interrupted by shutdown")
    finish.set()
    q2 = Queue(q.db, q.clock)
    q2.register("t", handler)
    await q2.run_until_idle()
    again = await q2.get(job.id)
    assert (again.status, again.attempts, again.result) == (Status.COMPLETED, 1, "done")


async def test_stop_writes_outcomes_finished_during_grace(make_queue: Callable[..., Queue]) -> None:
    """A job that finishes inside the grace period is recorded as completed, not re-queued."""
    q = make_queue(grace=5.0)
    started = asyncio.Event()

    async def handler(ctx: JobContext) -> str:
        """Finish shortly after stop begins."""
        started.set()
        await asyncio.sleep(0.02)
        return "finished"

    q.register("t", handler)
    job = await q.enqueue("t")
    await q.start()
    await asyncio.wait_for(started.wait(), 5)
    await q.stop()
    stored = await q.get(job.id)
    assert (stored.status, stored.result) == (Status.COMPLETED, "finished")


async def test_enqueue_wakes_a_started_queue_at_once(make_queue: Callable[..., Queue]) -> None:
    """With the dispatcher idle, an enqueue starts the job without waiting for the poll."""
    q = make_queue()
    done = asyncio.Event()

    async def handler(ctx: JobContext) -> None:
        """Signal completion."""
        done.set()

    q.register("t", handler)
    await q.start()
    await asyncio.sleep(0.01)
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    await q.enqueue("t")
    await asyncio.wait_for(done.wait(), 5)
    assert loop.time() - t0 < 0.5  # the idle poll is 1 s: this was a wake-up, not the poll


async def test_dispatcher_survives_a_failed_write(make_queue: Callable[..., Queue],
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """A write that fails (disk full, locked) is rolled back and retried; the outcome is not lost."""
    q = make_queue()
    real = sql.flush_and_claim
    failures = {"left": 1}

    def flaky_write(conn: sqlite3.Connection, outcomes: list, *args: Any) -> Any:
        """Fail the first write that carries an outcome."""
        if outcomes and failures["left"]:
            failures["left"] -= 1
            conn.execute("UPDATE job_queue SET error = 'half-written'")  # proves the rollback
            raise sqlite3.OperationalError("database or disk is full")
        return real(conn, outcomes, *args)

    monkeypatch.setattr(sql, "flush_and_claim", flaky_write)
    monkeypatch.setattr("agent.queue.worker.POLL_SECONDS", 0.01)

    async def handler(ctx: JobContext) -> str:
        """Succeed."""
        return "ok"

    q.register("t", handler)
    job = await q.enqueue("t")
    await asyncio.wait_for(q.run_until_idle(), 5)
    stored = await q.get(job.id)
    assert (stored.status, stored.result, stored.error, stored.attempts) == (Status.COMPLETED, "ok", None, 1)
    assert failures["left"] == 0


async def test_result_that_is_not_json_fails_the_job_not_the_queue(make_queue: Callable[..., Queue]) -> None:
    """A handler returning something JSON cannot hold fails its job; the next job still runs."""
    q = make_queue()

    async def odd(ctx: JobContext) -> object:
        """Return a Python object."""
        return object() if ctx.payload["odd"] else {"fine": True}

    q.register("t", odd)
    bad = await q.enqueue("t", {"odd": True})
    good = await q.enqueue("t", {"odd": False})
    await asyncio.wait_for(q.run_until_idle(), 5)
    jb, jg = await q.get(bad.id), await q.get(good.id)
    assert jb.status == Status.FAILED and "not JSON" in (jb.error or "")
    assert (jg.status, jg.result) == (Status.COMPLETED, {"fine": True})
