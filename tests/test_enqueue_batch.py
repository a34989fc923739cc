"""The one batch enqueue (agent.store.jobs.insert_batch), through Queue.enqueue_many and the scanner's path.

Each behaviour runs over both entry points: the queue's API (JobSpec in, Job out) and the scan's
own write transaction (spec dicts in, (id, created) out), so neither can drift from the other.
"""

from __future__ import annotations

import json
import random
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from agent.clock import FakeClock
from agent.errors import UserError
from agent.hints import HintImage, Hints
from agent.library.scanner import Scanner, ScanRequest
from agent.queue import Queue
from agent.queue.model import JobSpec, Priority
from agent.store import Database
from agent.store import jobs as jobs_sql

Place = Callable[[list[JobSpec]], Awaitable[list[int]]]


@pytest.fixture
async def queue(db: Database, clock: FakeClock) -> AsyncIterator[Queue]:
    """A queue over the test database (never started: these tests only enqueue)."""
    q = Queue(db, clock, emit=lambda t, d: None, rng=random.Random(7))
    yield q
    await q.stop()


@pytest.fixture(params=["enqueue_many", "scanner"])
def place(request: pytest.FixtureRequest, queue: Queue, db: Database, clock: FakeClock) -> Place:
    """Enqueue specs through one entry point; returns the placed job ids in order."""

    async def through_queue(specs: list[JobSpec]) -> list[int]:
        """Queue.enqueue_many: the API callers use."""
        try:
            return [job.id for job in await queue.enqueue_many(specs)]
        except UserError as exc:
            raise ValueError(exc.message) from None

    async def through_scan(specs: list[JobSpec]) -> list[int]:
        """insert_batch inside a write transaction, as Scanner.flush_jobs runs it."""
        rows = [s.row(queue.max_retries) for s in specs]
        placed = await db.write(jobs_sql.insert_batch, rows, clock.now())
        return [job_id for job_id, _ in placed]

    return through_queue if request.param == "enqueue_many" else through_scan


async def row(db: Database, job_id: int) -> dict[str, Any]:
    """One job row as a dict."""
    found = await db.fetchone("SELECT * FROM job_queue WHERE id = ?", (job_id,))
    assert found is not None
    return dict(found)


async def count(db: Database) -> int:
    """How many jobs the table holds."""
    return int((await db.fetchone("SELECT COUNT(*) AS n FROM job_queue"))["n"])


async def test_dedupe_joins_the_pending_job_and_the_same_key_twice_is_one_job(place: Place, db: Database) -> None:
    """A key with a pending job joins it; the same new key twice in one batch is one job."""
    (old,) = await place([JobSpec("enrich", {"n": 0}, dedupe_key="k")])
    ids = await place([
        JobSpec("enrich", {"n": 1}, dedupe_key="k"),
        JobSpec("enrich", {"n": 2}, dedupe_key="fresh"),
        JobSpec("enrich", {"n": 3}, dedupe_key="fresh"),
        JobSpec("enrich", {"n": 4}),
    ])
    assert ids[0] == old and ids[1] == ids[2] and len({old, ids[1], ids[3]}) == 3
    assert await count(db) == 3
    assert json.loads((await row(db, old))["payload"]) == {"n": 0}  # the pending job keeps its payload
    assert json.loads((await row(db, ids[1]))["payload"]) == {"n": 2}


async def test_dedupe_hit_makes_the_pending_job_more_urgent_never_less(place: Place, db: Database) -> None:
    """A more urgent ask raises the pending job's priority; a less urgent one leaves it; in-batch twins too."""
    (old,) = await place([JobSpec("enrich", dedupe_key="k", priority=50)])
    await place([JobSpec("enrich", dedupe_key="k", priority=10)])
    assert (await row(db, old))["priority"] == 10
    await place([JobSpec("enrich", dedupe_key="k", priority=80)])
    assert (await row(db, old))["priority"] == 10
    ids = await place([JobSpec("enrich", dedupe_key="twin", priority=40),
                       JobSpec("enrich", dedupe_key="twin", priority=Priority.HIGH)])
    assert ids[0] == ids[1] and (await row(db, ids[0]))["priority"] == Priority.HIGH


async def test_dependencies_are_recorded_checked_and_dead_ones_fail_the_job(place: Place, db: Database) -> None:
    """depends_on is stored; a missing job refuses the whole batch; a failed dependency fails the new job."""
    (first,) = await place([JobSpec("scan")])
    (waits,) = await place([JobSpec("enrich", depends_on=[first])])
    deps = await db.fetchall("SELECT depends_on FROM job_dependencies WHERE job_id = ?", (waits,))
    assert [r["depends_on"] for r in deps] == [first]
    before = await count(db)
    with pytest.raises(ValueError, match=r"depends_on names jobs that do not exist: \[12345\]"):
        await place([JobSpec("enrich", {"i": 1}), JobSpec("enrich", depends_on=[12345])])
    assert await count(db) == before  # all or none
    await db.execute("UPDATE job_queue SET status = 'failed' WHERE id = ?", (first,))
    (doomed,) = await place([JobSpec("publish", depends_on=[first])])
    found = await row(db, doomed)
    assert found["status"] == "failed" and found["error"] == f"dependency job {first} (scan) failed"


async def test_chain_delay_lock_and_retries_are_stored(place: Place, db: Database, clock: FakeClock) -> None:
    """Every JobSpec field reaches the row."""
    (parent,) = await place([JobSpec("scan")])
    (job_id,) = await place([JobSpec("enrich", priority=7, max_retries=9, dedupe_key="d", lock_key="l",
                                     delay=30.0, chain=parent)])
    found = await row(db, job_id)
    assert (found["type"], found["priority"], found["max_retries"], found["dedupe_key"], found["lock_key"],
            found["chain"], found["status"]) == ("enrich", 7, 9, "d", "l", parent, "pending")
    assert found["run_after"] == pytest.approx(clock.now() + 30.0)


async def test_payload_json_round_trips(place: Place, db: Database) -> None:
    """The stored payload text is json.dumps of the payload (the enrich shape formatted directly included)."""
    payloads: list[dict[str, Any]] = [
        {"entity": "episode", "id": 42, "priority": 1, "update": "Modified"},
        {"entity": "movie", "id": 7, "priority": 50, "update": "Created", "hints": {"title": 'Say "hi"'}},
        {"entity": 'x"y', "id": 1, "priority": 5, "update": "Created"},
        {"entity": "movie", "id": True, "priority": 5, "update": "Created"},
        {"path": "/films/Amélie (2001)/ünïcode ☃.mkv", "nested": {"a": [1, 2.5, None, False]}},
        {},
    ]
    ids = await place([JobSpec("enrich", p) for p in payloads])
    for job_id, payload in zip(ids, payloads, strict=True):
        text = (await row(db, job_id))["payload"]
        assert text == json.dumps(payload) and json.loads(text) == payload


async def test_enqueue_many_returns_the_stored_jobs(queue: Queue, db: Database) -> None:
    """enqueue_many's Jobs are the rows as stored: a dedupe hit comes back with its raised priority and deps."""
    (first,) = await queue.enqueue_many([JobSpec("scan")])
    (pending,) = await queue.enqueue_many([JobSpec("enrich", {"a": 1}, dedupe_key="k", priority=60,
                                                   depends_on=[first.id])])
    again, other = await queue.enqueue_many([JobSpec("enrich", {"a": 2}, dedupe_key="k", priority=20),
                                             JobSpec("publish", {"b": 1})])
    assert again.id == pending.id and again.priority == 20 and again.payload == {"a": 1}
    assert again.depends_on == [first.id]
    assert other.payload == {"b": 1} and other.id == pending.id + 1


async def test_batch_places_jobs_as_one_by_one_inserts_would(db: Database) -> None:
    """insert_batch places jobs exactly as agent.store.jobs.insert would, one by one, in a few statements."""
    now = 1000.0

    def spec(key: str, priority: int, after: int | None = None) -> dict[str, Any]:
        """An enrich-like spec."""
        out: dict[str, Any] = {"type": "enrich", "payload": {"k": key}, "priority": priority, "max_retries": 3,
                               "dedupe_key": key, "lock_key": None, "depends_on": [], "delay": 0.0, "chain": 7}
        if after is not None:
            out["after"] = after
        return out

    def run(conn: sqlite3.Connection) -> tuple[list[tuple[int, bool]], list[tuple[int, int]], list[tuple[Any, ...]]]:
        """Insert a batch over one already pending job; return placements, dependencies and rows."""
        old, _ = jobs_sql.insert(conn, spec("pending", 50), now)
        placed = jobs_sql.insert_batch(
            conn,
            [spec("show", 50), spec("ep1", 50, after=0), spec("pending", 10, after=0), spec("show", 40),
             spec("ep2", 50, after=3)],
            now,
        )
        deps = [tuple(r) for r in conn.execute("SELECT job_id, depends_on FROM job_dependencies ORDER BY job_id")]
        found = [
            tuple(r)
            for r in conn.execute("SELECT id, dedupe_key, priority, status, chain FROM job_queue ORDER BY id")
        ]
        assert placed[2] == (old.id, False)
        return placed, deps, found

    placed, deps, found = await db.write(run)
    show, ep1, ep2 = placed[0][0], placed[1][0], placed[4][0]
    assert placed == [(show, True), (ep1, True), (placed[2][0], False), (show, False), (ep2, True)]
    assert deps == [(ep1, show), (ep2, show)]
    assert [(key, priority, status, chain) for _, key, priority, status, chain in found] == [
        ("pending", 10, "pending", 7),  # a more urgent ask raises the pending job's priority
        ("show", 40, "pending", 7),  # the same key twice in a batch: one job, the more urgent priority
        ("ep1", 50, "pending", 7),
        ("ep2", 50, "pending", 7),
    ]


async def test_scanner_enrich_jobs_carry_typed_hints(db: Database, tmp_path: Path) -> None:
    """The scanner's follow-ups go through insert_batch in its transaction; hints travel as to_payload(); each
    enrich job starts its item's chain (NULL), as enqueue_enrich's do."""
    hints = Hints(title="Arrival", year=2016, ids={"tmdb_id": 329865, "imdb_id": "tt2543164"},
                  images=(HintImage("poster", "http://127.0.0.1/p.jpg"),))
    req = ScanRequest(library="Movies", kind="movies", root=tmp_path, hints=hints, source="webhook",
                      priority=1)
    scanner = Scanner(req, now=1000.0, grace=0.0, max_retries=2)
    scanner.follow("movie", 11, True, True, hints=True)
    scanner.follow("movie", 12, False, False)  # a webhook scan re-enriches an unchanged item too
    scanner.follow("movie", 11, False, True)  # the same item again: joins its pending job
    created = await db.write(scanner.flush_jobs)
    assert len(created) == 2 and scanner.report.jobs == created
    found = [dict(r) for r in await db.fetchall("SELECT * FROM job_queue ORDER BY id")]
    assert [(r["type"], r["dedupe_key"], r["priority"], r["max_retries"], r["chain"]) for r in found] == [
        ("enrich", "enrich:movie:11", 1, 2, None),
        ("enrich", "enrich:movie:12", 1, 2, None),
    ]
    first = json.loads(found[0]["payload"])
    assert first == {"entity": "movie", "id": 11, "priority": 1, "update": "Created",
                     "hints": hints.to_payload()}
    assert Hints.from_payload(first["hints"]) == hints
    assert "hints" not in json.loads(found[1]["payload"])
    assert scanner.hint_ids() == {"tmdb_id": 329865, "imdb_id": "tt2543164"}
