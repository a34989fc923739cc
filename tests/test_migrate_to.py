"""`metarr-agent migrate --to URL`: an SQLite store copied whole into an empty PostgreSQL, the file untouched.

The SQLite store is a real one: the agent scans and enriches a movie and a show against a fake TMDB (items,
artwork in the cache with its references, published files, provider answers, completed jobs), then the
test adds what a scan does not make through the store's own functions: a locked field, a playback
capture, a failed, a running and a pending job. The copy is checked table by table, then the agent is
opened on PostgreSQL and must list the same items.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import subprocess
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import psycopg
import pytest
from conftest import HEADERS, make_config, only_scan, open_test_agent, subprocess_env, write_config
from fakes.tmdb import FakeTmdb, sample_fanart_movie, sample_movie, sample_show

from agent.clock import FakeClock
from agent.config import Config
from agent.errors import UserError
from agent.process import DataDirLock
from agent.queue.model import JobSpec, Outcome, Status
from agent.store import PgDatabase, SqliteDatabase, jobs, players, schema_version
from agent.store import config as store_config
from agent.store.copy import copy_sqlite_to_postgres

REPO = Path(__file__).resolve().parent.parent
AGENT = "box1"
MATRIX = "The Matrix (1999)"
SHOW = "Game of Thrones (2011)"
FAILED_ERROR = "TMDB answered 500 three times\nsecond line of the error"
Factory = Callable[..., Awaitable[Any]]


@pytest.fixture
def fake() -> FakeTmdb:
    """A fake TMDB + fanart.tv with The Matrix and Game of Thrones."""
    return FakeTmdb(movies={603: sample_movie()}, shows={1399: sample_show()},
                    fanart_movies={603: sample_fanart_movie()})


def agent_config(tmp_path: Path, fake: FakeTmdb, fake_url: str, store_url: str = "") -> Config:
    """The config of agent box1 on tmp_path's libraries: on SQLite (no url) or on PostgreSQL."""
    providers = {"tmdb": {"api_key": fake.api_key, "base_url": f"{fake_url}/3",
                          "image_base_url": f"{fake_url}/t/p/original"},
                 "fanart": {"api_key": fake.fanart_key, "base_url": f"{fake_url}/v3"}}
    return make_config(tmp_path, extra={"providers": providers, "agent": {"name": AGENT},
                                        "store": {"url": store_url}})


def sqlite_file(tmp_path: Path) -> Path:
    """The config's SQLite store."""
    return tmp_path / "data" / "metarr.sqlite"


def sqlite_counts(path: Path) -> dict[str, int]:
    """Rows per table of an SQLite file (read-only)."""
    conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    try:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'"
                                             " AND name NOT LIKE 'sqlite_%'")]
        return {t: conn.execute(f'SELECT COUNT(*) FROM "{t}"').fetchone()[0] for t in tables}
    finally:
        conn.close()


def pg_rows(url: str, query: str, params: tuple = ()) -> list[tuple]:
    """Rows of a query on PostgreSQL, as tuples."""
    with psycopg.connect(url) as conn:
        return conn.execute(query, params).fetchall()  # type: ignore[arg-type]


def pg_counts(url: str, tables: list[str]) -> dict[str, int]:
    """Rows per table on PostgreSQL (absent tables count 0)."""
    present = {r[0] for r in pg_rows(url, "SELECT table_name FROM information_schema.tables"
                                          " WHERE table_schema = current_schema()")}
    return {t: pg_rows(url, f'SELECT COUNT(*) FROM "{t}"')[0][0] if t in present else 0 for t in tables}


def fingerprint(path: Path) -> tuple[str, int]:
    """The file's bytes (sha256) and mtime."""
    return hashlib.sha256(path.read_bytes()).hexdigest(), path.stat().st_mtime_ns


def spec(type_: str, payload: dict[str, Any], **kw: Any) -> dict[str, Any]:
    """A job's insert parameters."""
    return JobSpec(type_, payload, **kw).row(3)


async def scan(client: Any, library: str) -> None:
    """POST a scan and drain the queue; nothing may fail."""
    resp = await client.post(f"/api/libraries/{library}/scan", headers=HEADERS)
    assert resp.status in (200, 202), await resp.text()
    await client.agent.queue.run_until_idle()
    failed, _ = await client.agent.queue.list(status="failed")
    assert not failed, [(j.type, j.error) for j in failed]


async def get(client: Any, url: str) -> Any:
    """GET JSON with the key."""
    resp = await client.get(url, headers=HEADERS)
    assert resp.status == 200, await resp.text()
    return await resp.json()


async def build_sqlite_store(tmp_path: Path, make_client: Factory, cfg: Config) -> dict[str, Any]:
    """Run the agent on SQLite over a movie and a show, then add locks, a capture and jobs; what was made."""
    movie = tmp_path / "media" / "movies" / MATRIX
    movie.mkdir(parents=True)
    (movie / f"{MATRIX}.mkv").write_bytes(b"\x1aE\xdf\xa3 matrix video")
    season = tmp_path / "media" / "tv" / SHOW / "Season 01"
    season.mkdir(parents=True)
    for n in (1, 2):
        (season / f"Game of Thrones - S01E0{n}.mkv").write_bytes(b"episode %d" % n)
    clock = FakeClock()
    client = await make_client(cfg, clock=clock)
    await scan(client, "Movies")
    await scan(client, "TV")
    [matrix] = (await get(client, "/api/movies"))["items"]
    resp = await client.post(f"/api/movies/{matrix['id']}/lock", json={"fields": ["title"], "locked": True},
                             headers=HEADERS)
    assert resp.status == 200, await resp.text()
    db, now = client.agent.db, clock.now()
    capture = {"old_file": str(movie / f"{MATRIX}.mkv"), "player_item_id": 42, "position": 1234.5,
               "total": 8160.0, "playcount": 1, "lastplayed": "2024-05-01 20:15:00", "was_playing": 0,
               "player_user": "u1", "played": 1}
    await db.write(players.replace_captures, "living-room", "movie", matrix["id"], [capture], now, now + 86400)
    # a failed job (claimed, then failed with its error), a running one, and a pending one waiting on it
    failed, _ = await db.write(jobs.insert, spec("cache_gc", {}, priority=1, dedupe_key="cache_gc"), now)
    [claimed], _ = await db.write(jobs.flush_and_claim, [], 1, AGENT, [], {}, {}, now, 300.0)
    assert claimed.id == failed.id
    await db.write(jobs.record, Outcome(failed.id, Status.FAILED, error=FAILED_ERROR), now, AGENT)
    running, _ = await db.write(jobs.insert, spec("scan", {"library": "Movies"}, priority=1,
                                                   lock_key="scan:Movies"), now)
    [claimed], _ = await db.write(jobs.flush_and_claim, [], 1, AGENT, [], {}, {}, now, 300.0)
    assert claimed.id == running.id
    pending, _ = await db.write(jobs.insert, spec("enrich", {"entity": "movie", "id": matrix["id"]},
                                                   depends_on=[running.id], delay=3600.0), now)
    listing = {kind: (await get(client, f"/api/{kind}"))["items"] for kind in ("movies", "series")}
    await client.close()  # the agent stops: the SQLite file is complete and closed
    return {"matrix": matrix["id"], "failed": failed.id, "running": running.id, "pending": pending.id,
            "listing": listing}


async def test_copy_to_postgres_then_the_agent_runs_on_it(tmp_path: Path, make_client: Factory, fake: FakeTmdb,
                                                         fake_url: str, pg_url: str) -> None:
    """Every table arrives with its rows and ids; the file is untouched; the agent on PostgreSQL sees it all."""
    made = await build_sqlite_store(tmp_path, make_client, agent_config(tmp_path, fake, fake_url))
    path = sqlite_file(tmp_path)
    before = fingerprint(path)
    expected = sqlite_counts(path)
    for table in ("movies", "series", "seasons", "episodes", "cache_assets", "asset_references",
                  "published_files", "provider_cache", "job_queue", "job_dependencies", "playback_state"):
        assert expected[table] > 0, f"the SQLite store has no {table}: the copy of that table is not tested"

    counts = copy_sqlite_to_postgres(path, pg_url, AGENT)

    assert counts == expected
    assert pg_counts(pg_url, list(expected)) == expected
    assert fingerprint(path) == before, "the SQLite file changed"
    assert pg_rows(pg_url, "SELECT version FROM schema_version") == [(schema_version(),)]
    # a lock, a failed job's error, a capture's numbers: the values, not only the counts
    [(locked,)] = pg_rows(pg_url, "SELECT locked_fields FROM movies WHERE id = %s", (made["matrix"],))
    assert "title" in locked
    assert pg_rows(pg_url, "SELECT status, error FROM job_queue WHERE id = %s", (made["failed"],)) == [
        ("failed", FAILED_ERROR)]
    assert pg_rows(pg_url, "SELECT position, total, playcount, player_user, played FROM playback_state") == [
        (1234.5, 8160.0, 1, "u1", 1)]
    # the running job is pending again, nobody's; the jobs that may run belong to this agent
    assert pg_rows(pg_url, "SELECT status, worker, lease_until, agent FROM job_queue WHERE id = %s",
                   (made["running"],)) == [("pending", None, None, AGENT)]
    assert pg_rows(pg_url, "SELECT status, agent FROM job_queue WHERE id = %s", (made["pending"],)) == [
        ("pending", AGENT)]
    assert pg_rows(pg_url, "SELECT depends_on FROM job_dependencies WHERE job_id = %s", (made["pending"],)) == [
        (made["running"],)]
    assert {r[0] for r in pg_rows(pg_url, "SELECT agent FROM libraries")} == {AGENT}
    # a job about no library is this agent's, its keys marked as its own (as if queued on PostgreSQL)
    assert pg_rows(pg_url, "SELECT agent, dedupe_key FROM job_queue WHERE id = %s", (made["failed"],)) == [
        (AGENT, f"cache_gc@{AGENT}")]
    assert pg_rows(pg_url, "SELECT lock_key FROM job_queue WHERE id = %s", (made["running"],)) == [("scan:Movies",)]
    # ids continue past the copied ones (identity sequences moved): a new library and a new job fit
    db = PgDatabase(pg_url)
    await db.open()
    try:
        await db.write(store_config.put_library, "Elsewhere", "movies", "/srv/elsewhere", 1.0, "box2")
        job, created = await db.write(jobs.insert, spec("cache_gc", {}, dedupe_key="fresh"), 1.0)
        assert created
    finally:
        await db.close()
    top_library = pg_rows(pg_url, "SELECT MAX(id) FROM libraries WHERE name != 'Elsewhere'")[0][0]
    assert pg_rows(pg_url, "SELECT id FROM libraries WHERE name = 'Elsewhere'")[0][0] > top_library
    assert job.id > max(made["failed"], made["running"], made["pending"])

    # the store is in use now: copying again is refused, and changes nothing
    with pytest.raises(UserError, match=r"already holds data \(in libraries, movies"):
        copy_sqlite_to_postgres(path, pg_url, AGENT)
    assert pg_counts(pg_url, ["movies"]) == {"movies": expected["movies"]}

    # the agent on PostgreSQL lists the same items as it did on SQLite
    clock = FakeClock()
    pg_client = await make_client(agent_config(tmp_path, fake, fake_url, store_url=pg_url), clock=clock)
    for kind, items in made["listing"].items():
        assert (await get(pg_client, f"/api/{kind}"))["items"] == items
    detail = await get(pg_client, f"/api/movies/{made['matrix']}")
    assert detail["title"] == "The Matrix" and "title" in detail["locked_fields"]
    # and works on it: the interrupted scan runs, then the enrich that waited on it, the failed job on retry
    clock.advance(3601)
    resp = await pg_client.post(f"/api/jobs/{made['failed']}/retry", headers=HEADERS)
    assert resp.status in (200, 202), await resp.text()
    await pg_client.agent.queue.run_until_idle()
    for job_id in (made["running"], made["pending"], made["failed"]):
        job = await pg_client.agent.queue.get(job_id)
        assert job.status == Status.COMPLETED, (job.type, job.status, job.error)
    await scan(pg_client, "Movies")
    def summary(items: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
        return [(i["id"], i["title"], i["status"], i["file"]) for i in items]

    assert summary((await get(pg_client, "/api/movies"))["items"]) == summary(made["listing"]["movies"])
    assert fingerprint(path) == before


# ---------------------------------------------------------------- refusals


async def small_store(tmp_path: Path) -> Path:
    """An SQLite store at the current schema with one library and one movie, written by the store's functions."""
    path = tmp_path / "small" / "metarr.sqlite"
    db = SqliteDatabase(path)
    await db.open()
    try:
        await db.write(store_config.put_library, "Movies", "movies", "/srv/movies", 1.0)
        await db.execute("INSERT INTO movies (library_id, path, file, title, year, created_at, updated_at)"
                         " VALUES (1, '/srv/movies/A', '/srv/movies/A/a.mkv', 'A', 1999, 1.0, 1.0)")
    finally:
        await db.close()
    return path


def poke(path: Path, statement: str) -> None:
    """Change the SQLite file behind the store's back (what a damaged or hand-edited file holds)."""
    conn = sqlite3.connect(path)
    try:
        conn.execute(statement)
        conn.commit()
    finally:
        conn.close()


def test_missing_file_is_refused(tmp_path: Path, pg_url: str) -> None:
    """No file: nothing to copy, said plainly."""
    with pytest.raises(UserError, match="no SQLite database at"):
        copy_sqlite_to_postgres(tmp_path / "nope.sqlite", pg_url, AGENT)


async def test_other_schema_version_is_refused(tmp_path: Path, pg_url: str) -> None:
    """A file at an older schema: run `metarr-agent migrate` first; a newer one: upgrade. PostgreSQL untouched."""
    path = await small_store(tmp_path)
    poke(path, f"PRAGMA user_version = {schema_version() - 1}")
    with pytest.raises(UserError, match=r"schema version \d+.*run `metarr-agent migrate` \(without --to\) first"):
        copy_sqlite_to_postgres(path, pg_url, AGENT)
    poke(path, f"PRAGMA user_version = {schema_version() + 1}")
    with pytest.raises(UserError, match="newer than this metarr-agent"):
        copy_sqlite_to_postgres(path, pg_url, AGENT)
    assert pg_rows(pg_url, "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = 'public'") == [(0,)]


async def test_unreachable_target_names_the_url_without_its_password(tmp_path: Path) -> None:
    """A server that is not there: one line naming the URL, password masked."""
    path = await small_store(tmp_path)
    url = f"postgresql://metarr:s3cret-pw@/metarr?host={tmp_path / 'no-server'}"
    with pytest.raises(UserError, match=r"cannot reach the database postgresql://metarr:\*\*\*@") as caught:
        copy_sqlite_to_postgres(path, url, AGENT)
    assert "s3cret-pw" not in caught.value.message


async def test_a_value_postgresql_cannot_take_is_reported_and_nothing_is_copied(tmp_path: Path,
                                                                                 pg_url: str) -> None:
    """SQLite keeps a float in an INTEGER column; the copy names the row and column and leaves no row behind."""
    path = await small_store(tmp_path)
    poke(path, "UPDATE movies SET year = 1999.5")
    with pytest.raises(UserError, match=r"movies id=1: column year holds 1999\.5 \(float\).*bigint"):
        copy_sqlite_to_postgres(path, pg_url, AGENT)
    assert set(pg_counts(pg_url, ["libraries", "movies"]).values()) == {0}
    poke(path, "UPDATE movies SET year = 1999")  # corrected: the copy goes through into the same database
    poke(path, "UPDATE movies SET missing_since = 5")  # an int in a REAL column is a number like any other
    assert copy_sqlite_to_postgres(path, pg_url, None)["movies"] == 1
    assert pg_rows(pg_url, "SELECT year, missing_since FROM movies") == [(1999, 5.0)]
    assert pg_rows(pg_url, "SELECT agent FROM libraries") == [(None,)]  # no name: left for an agent to adopt


async def test_a_column_missing_on_one_side_is_refused(tmp_path: Path, pg_url: str) -> None:
    """The same schema version with another column: refused by name, nothing copied."""
    path = await small_store(tmp_path)
    poke(path, "ALTER TABLE movies ADD COLUMN rating_extra TEXT")
    with pytest.raises(UserError, match="movies has no column rating_extra in PostgreSQL"):
        copy_sqlite_to_postgres(path, pg_url, AGENT)
    assert set(pg_counts(pg_url, ["libraries", "movies"]).values()) == {0}


# ---------------------------------------------------------------- the command


def cli(*argv: str) -> subprocess.CompletedProcess[str]:
    """Run `python -m agent ARGV` from the repository."""
    return subprocess.run([sys.executable, "-m", "agent", *argv], cwd=REPO, env=subprocess_env(),
                          capture_output=True, text=True, timeout=60)


async def test_cli_migrate_to(tmp_path: Path, pg_url: str) -> None:
    """`migrate --to URL`: refused while the agent runs and for a non-URL; then a line per table and the config
    line with the password masked; exit 0, the SQLite file untouched."""
    config = write_config(tmp_path, {"agent": {"name": AGENT}, "store": {"url": ""}})
    cfg = make_config(tmp_path, {"agent": {"name": AGENT}, "store": {"url": ""}})
    movie = tmp_path / "media" / "movies" / MATRIX
    movie.mkdir(parents=True)
    (movie / f"{MATRIX}.mkv").write_bytes(b"video")
    async with open_test_agent(cfg) as agent:
        only_scan(agent)
        await agent.queue.enqueue("scan", {"library": "Movies"})
        await agent.queue.run_until_idle()
    path = sqlite_file(tmp_path)
    before = fingerprint(path)
    url = pg_url.replace("postgresql://postgres@", "postgresql://postgres:s3cret-pw@")  # trust auth ignores it

    bad = cli("migrate", "--to", str(tmp_path / "other.sqlite"), "--config", str(config))
    assert bad.returncode == 1 and "--to must be a postgresql:// URL" in bad.stderr, bad.stderr
    with DataDirLock(cfg.data_dir):
        busy = cli("migrate", "--to", url, "--config", str(config))
    assert busy.returncode == 1 and "another agent" in busy.stderr and "run `metarr-agent migrate`" in busy.stderr

    done = cli("migrate", "--to", url, "--config", str(config))
    assert done.returncode == 0, done.stderr
    lines = dict(line.split(None, 1) for line in done.stdout.splitlines()[:-1])
    counts = sqlite_counts(path)
    assert {table: int(text.split()[0]) for table, text in lines.items()} == counts
    assert counts["movies"] == 1 and counts["job_queue"] >= 2
    final = done.stdout.splitlines()[-1]
    assert "store: {url: postgresql://postgres:***@" in final and "left untouched" in final
    assert "s3cret-pw" not in done.stdout + done.stderr
    assert pg_rows(pg_url, "SELECT title, agent FROM movies JOIN libraries l ON l.id = library_id") == [
        ("The Matrix", AGENT)]
    assert fingerprint(path) == before

    again = cli("migrate", "--to", url, "--config", str(config))
    assert again.returncode == 1 and "already holds data" in again.stderr, again.stderr
    assert os.path.exists(path) and fingerprint(path) == before
