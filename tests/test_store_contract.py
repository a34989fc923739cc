"""One contract for the store and its queue, held by both backends: SQLite always, PostgreSQL when installed.

Each test runs once per backend (the `store` fixture). The whole suite can also run on PostgreSQL with
METARR_TEST_STORE=postgresql; these are the guarantees CI checks on both every time.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from conftest import HEADERS, make_config, open_test_agent, pg_database

from agent.clock import FakeClock
from agent.errors import UserError
from agent.queue import Queue
from agent.queue.model import Outcome, Status
from agent.store import Database, PgDatabase, SqliteDatabase, api, check_store, schema_version
from agent.store import jobs as sql
from agent.store.dialect import to_postgres
from agent.store.pg import connect


@pytest.fixture(params=["sqlite", "postgresql"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Database]:
    """A migrated, empty store on each backend."""
    db: Database = (SqliteDatabase(tmp_path / "metarr.sqlite") if request.param == "sqlite"
                    else PgDatabase(pg_database()))
    await db.open()
    yield db
    await db.close()


def queue_on(db: Database, clock: FakeClock, **kw: object) -> Queue:
    return Queue(db, clock, workers=2, agent="contract", **kw)  # type: ignore[arg-type]


# ---------------------------------------------------------------- schema


def _sqlite_columns(path: Path) -> dict[str, set[str]]:
    conn = sqlite3.connect(path)
    try:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'"
                                             " AND name NOT LIKE 'sqlite_%'")]
        return {t: {r[1] for r in conn.execute(f"PRAGMA table_info({t})")} for t in tables}
    finally:
        conn.close()


async def test_both_backends_build_the_same_schema(tmp_path: Path) -> None:
    """The numbered migrations give the same tables and columns on both, at the same version."""
    lite = SqliteDatabase(tmp_path / "metarr.sqlite")
    await lite.open()
    await lite.close()
    url = pg_database()
    pg = PgDatabase(url)
    await pg.open()
    await pg.close()
    raw = connect(url)
    try:
        cols: dict[str, set[str]] = {}
        for table, column in raw.execute("SELECT table_name, column_name FROM information_schema.columns"
                                         " WHERE table_schema = current_schema()").fetchall():
            cols.setdefault(table, set()).add(column)
        version = raw.execute("SELECT version FROM schema_version").fetchone()[0]
    finally:
        raw.close()
    cols.pop("schema_version")
    assert cols == _sqlite_columns(tmp_path / "metarr.sqlite")
    assert version == schema_version()


def test_the_dialect_rewrites_what_differs() -> None:
    text, returns_id = to_postgres("INSERT OR IGNORE INTO job_dependencies (job_id, depends_on) VALUES (?, ?)")
    assert text == "INSERT INTO job_dependencies (job_id, depends_on) VALUES (%s, %s) ON CONFLICT DO NOTHING"
    assert not returns_id
    text, returns_id = to_postgres("INSERT INTO libraries (name) VALUES (:name)")
    assert text == "INSERT INTO libraries (name) VALUES (%(name)s) RETURNING id" and returns_id
    text, _ = to_postgres("SELECT 1 FROM t INDEXED BY ix WHERE a LIKE '%?%' AND b IS ? AND c IS NOT ? -- why?")
    assert text == "SELECT 1 FROM t  WHERE a ILIKE '%%?%%' AND b IS NOT DISTINCT FROM %s AND c IS DISTINCT FROM %s "
    text, _ = to_postgres("SELECT json_extract(payload, '$.id') FROM j WHERE t NOT IN (SELECT value FROM"
                          " json_each(:sat))")
    assert "(payload::jsonb ->> 'id')" in text and "json_array_elements_text(%(sat)s::json) AS value" in text


# ---------------------------------------------------------------- the queue


async def test_dedupe_priority_and_order(store: Database) -> None:
    """A pending twin is returned (made more urgent); claims go by priority, then chain, then id."""
    clock = FakeClock()
    q = queue_on(store, clock)
    ran: list[str] = []

    async def handler(ctx: object) -> None:
        ran.append(ctx.job.payload["n"])  # type: ignore[attr-defined]

    q.register("t", handler)
    q.workers = 1
    a = await q.enqueue("t", {"n": "a"}, priority=5)
    b = await q.enqueue("t", {"n": "b"}, priority=5, dedupe_key="k")
    again = await q.enqueue("t", {"n": "b2"}, priority=2, dedupe_key="k")
    c = await q.enqueue("t", {"n": "c"}, priority=5, chain=a.id)
    assert again.id == b.id and again.priority == 2
    await q.run_until_idle()
    assert ran == ["b", "a", "c"]
    for job in (a, b, c):
        assert (await q.get(job.id)).status == Status.COMPLETED


async def test_dependencies_locks_and_cascades(store: Database) -> None:
    """A job waits for its dependency; a failed dependency fails its dependents, naming it; one per lock key."""
    clock = FakeClock()
    q = queue_on(store, clock, max_retries=0)
    running: set[str] = set()
    overlap: list[str] = []

    async def work(ctx: object) -> None:
        key = ctx.job.lock_key  # type: ignore[attr-defined]
        if key in running:
            overlap.append(key)
        running.add(key)
        await asyncio.sleep(0)
        running.discard(key)
        if ctx.job.payload.get("fail"):  # type: ignore[attr-defined]
            raise RuntimeError("boom")

    q.register("w", work)
    first = await q.enqueue("w", {"fail": True}, lock_key="L")
    second = await q.enqueue("w", {}, lock_key="L")
    child = await q.enqueue("w", {}, depends_on=[first.id])
    grandchild = await q.enqueue("w", {}, depends_on=[child.id])
    await q.run_until_idle()
    assert overlap == []
    assert (await q.get(first.id)).status == Status.FAILED
    assert (await q.get(second.id)).status == Status.COMPLETED
    failed = await q.get(grandchild.id)
    assert failed.status == Status.FAILED and f"dependency job {child.id}" in (failed.error or "")


async def test_retry_backoff_then_dead_letter_then_retry(store: Database) -> None:
    """A failing job is retried after a delay, stays failed after its retries, and can be retried by hand."""
    clock = FakeClock()
    q = queue_on(store, clock, max_retries=1)
    calls = 0

    async def flaky(ctx: object) -> None:
        nonlocal calls
        calls += 1
        raise RuntimeError("down")

    q.register("f", flaky)
    job = await q.enqueue("f", {})
    await q.run_until_idle()
    waiting = await q.get(job.id)
    assert waiting.status == Status.PENDING and waiting.run_after > clock.now()
    clock.advance(3600)
    await q.run_until_idle()
    dead = await q.get(job.id)
    assert dead.status == Status.FAILED and dead.attempts == 2 and "down" in (dead.error or "")
    assert (await q.retry(job.id)).status == Status.PENDING
    assert (await q.stats())["pending"] == 1


async def test_crash_recovery_and_leases(store: Database) -> None:
    """A job left running is re-queued at start; on a shared store an expired lease frees it for another agent,
    and the agent that lost it can no longer write its outcome."""
    clock = FakeClock()
    q = Queue(store, clock, agent="gone")
    job = await q.enqueue("x", {})  # bound to "gone", the agent that queued it (no library to say otherwise)
    claimed, _ = await store.write(sql.flush_and_claim, [], 1, "gone", [], {}, {}, clock.now(), 30.0)
    assert [j.id for j in claimed] == [job.id]
    if store.dialect == "postgresql":
        # another agent's heartbeat takes it back once the lease has run out, not before
        lost, _ = await store.write(sql.expire, [], clock.now() + 10)
        assert lost == []
        assert (await store.write(sql.expire, [job.id], clock.now() + 31))[0] == []  # held: never taken back
        lost, _ = await store.write(sql.expire, [], clock.now() + 31)
        assert lost == [(job.id, "gone")]
    else:
        count, _ = await store.write(sql.recover, clock.now())
        assert count == 1
    back = await q.get(job.id)
    assert back.status == Status.PENDING and back.worker is None
    await store.write(sql.flush_and_claim, [Outcome(job.id, Status.COMPLETED)], 0, "gone", [], {}, {}, clock.now())
    assert (await q.get(job.id)).status == Status.PENDING  # the old holder's late outcome is not written


async def test_listing_search_and_counts(store: Database, tmp_path: Path) -> None:
    """The read models answer the same on both: paged job lists, and title search that ignores case."""
    clock = FakeClock()
    q = queue_on(store, clock)
    for n in range(5):
        await q.enqueue("t", {"n": n})
    jobs, total = await store.read(sql.listing, "pending", "t", 2, 0)
    assert total == 5 and [j.payload["n"] for j in jobs] == [4, 3]
    assert await store.read(sql.stats) == {"pending": 5, "running": 0, "failed": 0}
    assert await store.read(api.libraries) == []


# ---------------------------------------------------------------- the agent on each store


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest) -> str:
    return request.param


async def test_a_library_scanned_and_published_on_each_store(tmp_path: Path, backend: str) -> None:
    """The real agent on each store: a scan finds a movie, an NFO lands beside it, the API finds it by any case."""
    extra = ({"store": {"url": pg_database()}, "agent": {"name": "nas1"}} if backend == "postgresql"
             else {"store": {"url": ""}})
    cfg = make_config(tmp_path, extra)
    folder = cfg.libraries[0].path / "The Matrix (1999)"
    folder.mkdir()
    (folder / "The Matrix (1999).mkv").write_bytes(b"\0" * 64)
    async with open_test_agent(cfg, FakeClock()) as services:
        await services.queue.enqueue("scan", {"library": "Movies"})
        await services.queue.run_until_idle()
        assert (folder / "The Matrix (1999).nfo").is_file()
        found, total = await services.db.read(api.list_items, api.ListQuery("movie", text="MATRIX"))
        assert total == 1 and found[0]["title"] == "The Matrix"
        libraries = await services.db.read(api.libraries)
        owner = "nas1" if backend == "postgresql" else None
        assert [(r["name"], r["agent"]) for r in libraries] == [("Movies", owner), ("TV", owner)]


async def test_a_claim_walks_the_claim_index_even_with_stale_statistics(monkeypatch: pytest.MonkeyPatch) -> None:
    """PostgreSQL: a burst queued after the last ANALYZE is claimed through ix_job_claim, not by sorting every
    pending job (200-400 ms a round of 8 claims at 20,000 pending before claim_plan, 4-14 ms with it)."""
    db = PgDatabase(pg_database())
    await db.open()
    try:
        specs = [{"type": "t", "payload": {"n": n}, "priority": 5, "max_retries": 3} for n in range(3000)]
        await db.write(sql.insert_many, specs, 0.0)
        params = {"now": 1.0, "worker": "a", "lease": 31.0, "saturated": "[]", "elsewhere": "[]", "stale": 0.0}

        def plan(conn: object) -> str:
            sql.claim_plan(conn)  # type: ignore[arg-type]
            rows = conn.execute("EXPLAIN " + sql.CLAIM_SQL_PG, params).fetchall()  # type: ignore[attr-defined]
            return "\n".join(r[0] for r in rows)

        # (without claim_plan the plan here is a Sort over every pending row, unless autovacuum analysed the
        # table meanwhile: not asserted, it depends on when autovacuum runs)
        text = await db.write_concurrent(plan)
        assert "ix_job_claim" in text and "Sort" not in text, text
        used: list[object] = []
        real = sql.claim_plan
        monkeypatch.setattr(sql, "claim_plan", lambda conn: (used.append(conn), real(conn)))
        claimed, _ = await db.write_concurrent(sql.flush_and_claim, [], 2, "a", [], {}, {}, 1.0, 30.0)
        assert len(claimed) == 2 and len(used) == 1  # every claiming round sets the plan up
    finally:
        await db.close()


async def test_agents_route_on_each_store(tmp_path: Path, backend: str, make_client: Any) -> None:
    """GET /api/agents: one agent on SQLite (shared false); on PostgreSQL every agent that shares the store,
    each with its libraries, and /api/libraries names each library's agent."""
    if backend == "sqlite":
        client = await make_client(make_config(tmp_path, {"agent": {"name": "box"}, "store": {"url": ""}}))
        body = await (await client.get("/api/agents", headers=HEADERS)).json()
        assert body["shared"] is False and [a["name"] for a in body["items"]] == ["box"]
        assert body["items"][0]["state"] == "up" and body["items"][0]["self"] is True
        return
    url = pg_database()
    (tmp_path / "films-b").mkdir()
    films = {"name": "Films B", "kind": "movies", "path": str(tmp_path / "films-b"), "watch": "off"}
    other = make_config(tmp_path / "other", {"store": {"url": url}, "agent": {"name": "nas2"}}, libraries=[films])
    async with open_test_agent(other, FakeClock()):
        pass  # nas2 registered its library, then stopped cleanly
    client = await make_client(make_config(tmp_path / "me", {"store": {"url": url}, "agent": {"name": "nas1"}}))
    body = await (await client.get("/api/agents", headers=HEADERS)).json()
    by_name = {a["name"]: a for a in body["items"]}
    assert body["shared"] is True and set(by_name) == {"nas1", "nas2"}
    assert by_name["nas1"]["state"] == "up" and by_name["nas1"]["libraries"] == ["Movies", "TV"]
    assert by_name["nas2"]["state"] == "stopped" and by_name["nas2"]["libraries"] == ["Films B"]
    libraries = (await (await client.get("/api/libraries", headers=HEADERS)).json())["items"]
    assert {lib["name"]: lib["agent"] for lib in libraries} == {"Films B": "nas2", "Movies": "nas1", "TV": "nas1"}
    # a scan of nas2's library asked of nas1 is queued for nas2
    reply = await (await client.post("/api/libraries/Films B/scan", headers=HEADERS)).json()
    assert reply["agent"] == "nas2"


async def test_player_jobs_wait_for_an_agent_with_players_then_run_anywhere(store: Database) -> None:
    """An agent without players leaves player jobs to agents that have them, for two leases; then it runs them
    itself, so a scan waiting on a playback capture never waits for ever when no agent has players."""
    clock = FakeClock()
    q = queue_on(store, clock)
    job = await q.enqueue("notify_players", {"entity": "movie", "id": 1, "update": "Modified"})
    elsewhere = ["notify_players", "playback_capture", "playback_restore"]
    now = clock.now()
    early, _ = await store.write(sql.flush_and_claim, [], 1, "bare", [], {}, {}, now + 59, 30.0, elsewhere)
    assert early == []
    late, _ = await store.write(sql.flush_and_claim, [], 1, "bare", [], {}, {}, now + 61, 30.0, elsewhere)
    assert [j.id for j in late] == [job.id]


async def test_a_notify_folding_into_a_pending_one_brings_its_artwork(store: Database) -> None:
    """The images players must drop from their caches survive a merge: a notify queued while another for the
    same item is pending (fields first, artwork after), and one superseded after its agent stopped."""
    clock = FakeClock()
    q = queue_on(store, clock)
    first = await q.enqueue("notify_players", {"entity": "movie", "id": 1, "update": "Modified"},
                            dedupe_key="notify:movie:1")
    second = await q.enqueue("notify_players", {"entity": "movie", "id": 1, "update": "Created",
                                                "art": ["/m/poster.jpg"]}, dedupe_key="notify:movie:1")
    assert second.id == first.id
    claimed, _ = await store.write(sql.flush_and_claim, [], 1, "gone", [], {}, {}, clock.now(), 30.0)
    assert [j.id for j in claimed] == [first.id]
    third = await q.enqueue("notify_players", {"entity": "movie", "id": 1, "update": "Modified",
                                               "art": ["/m/fanart.jpg"]}, dedupe_key="notify:movie:1")
    await store.write(sql.recover, clock.now())  # the running one is superseded by the pending third
    assert (await q.get(first.id)).status == Status.CANCELLED
    merged = await q.get(third.id)
    assert merged.payload["update"] == "Created"
    assert merged.payload["art"] == ["/m/fanart.jpg", "/m/poster.jpg"]


def test_an_unreachable_postgresql_is_one_clear_line(tmp_path: Path) -> None:
    """store.url naming a server that is not there: a UserError on one line, the password masked."""
    sock = tmp_path / "nothing-listens-here"
    with pytest.raises(UserError) as caught:
        check_store(f"postgresql://metarr:s3cret@/metarr?host={sock}")
    message = str(caught.value)
    assert "cannot reach the database" in message and "check store.url" in message
    assert "s3cret" not in message and "\n" not in message
