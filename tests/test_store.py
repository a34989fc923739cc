"""The SQLite store: migrations, pragmas, refusal of newer databases, transactions, the `migrate` command."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from conftest import write_config

from agent.cli import main
from agent.store import Database, DatabaseTooNew, SqliteDatabase, migrate_file, schema_version
from agent.store import db as dbmod

# DESIGN section 9: "Tables, at least".
DESIGN_TABLES = (
    "libraries", "movies", "series", "seasons", "episodes", "cache_assets", "asset_references",
    "job_queue", "job_dependencies", "playback_state", "webhook_events", "media_player_groups",
    "media_players", "path_mappings",
)


def user_version(path: Path) -> int:
    """PRAGMA user_version read with a fresh stdlib connection."""
    conn = sqlite3.connect(path)
    try:
        return conn.execute("PRAGMA user_version").fetchone()[0]
    finally:
        conn.close()


def set_user_version(path: Path, version: int) -> None:
    """Stamp a database file with a schema version."""
    conn = sqlite3.connect(path)
    try:
        conn.execute(f"PRAGMA user_version = {version}")
        conn.commit()
    finally:
        conn.close()


def tables(conn: sqlite3.Connection) -> set[str]:
    """Names of every table in the schema."""
    return {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}


async def test_migrates_from_empty_with_every_design_table(tmp_path: Path) -> None:
    """A new file gets the whole schema: every table DESIGN section 9 names, at the code's version."""
    path = tmp_path / "data" / "metarr.sqlite"
    db = SqliteDatabase(path)
    await db.open()
    try:
        assert schema_version() >= 1
        assert await db.read(lambda c: c.execute("PRAGMA user_version").fetchone()[0]) == schema_version()
        found = await db.read(tables)
        missing = [t for t in DESIGN_TABLES if t not in found]
        assert not missing, f"tables missing: {missing}"
        columns = {r["name"] for r in await db.fetchall("PRAGMA table_info(cache_assets)")}
        assert {"sha256", "ext", "size", "mime", "width", "height", "source_url"} <= columns
    finally:
        await db.close()
    assert user_version(path) == schema_version()


async def test_wal_and_foreign_keys(db: Database) -> None:
    """WAL journal, foreign keys on for both connections and enforced."""
    assert (await db.fetchone("PRAGMA journal_mode"))[0] == "wal"
    assert (await db.fetchone("PRAGMA foreign_keys"))[0] == 1
    assert await db.write(lambda c: c.execute("PRAGMA foreign_keys").fetchone()[0]) == 1
    with pytest.raises(sqlite3.IntegrityError, match="FOREIGN KEY"):
        await db.execute("INSERT INTO movies (library_id, path, file, created_at, updated_at)"
                         " VALUES (999, '/x', '/x/x.mkv', 0, 0)")


async def test_reopen_is_a_no_op(tmp_path: Path) -> None:
    """Opening a current database again changes nothing: same version, data kept."""
    path = tmp_path / "metarr.sqlite"
    db = SqliteDatabase(path)
    await db.open()
    await db.execute("INSERT INTO libraries (name, kind, path, created_at) VALUES ('M', 'movies', '/m', 1)")
    await db.close()
    before = user_version(path)
    db = SqliteDatabase(path)
    await db.open()
    try:
        assert (await db.fetchone("SELECT name FROM libraries"))["name"] == "M"
    finally:
        await db.close()
    assert user_version(path) == before == schema_version()
    assert migrate_file(path) == (schema_version(), schema_version())


async def test_newer_database_is_refused(tmp_path: Path) -> None:
    """A database stamped by a newer agent is refused with a clear message, and left alone."""
    path = tmp_path / "metarr.sqlite"
    assert migrate_file(path) == (0, schema_version())
    too_new = schema_version() + 5
    set_user_version(path, too_new)
    db = SqliteDatabase(path)
    with pytest.raises(DatabaseTooNew) as info:
        await db.open()
    assert f"schema version {too_new}" in info.value.message
    assert f"only knows {schema_version()}" in info.value.message
    assert "upgrade metarr-agent" in info.value.message
    assert db._writer is None and db._reader is None
    assert user_version(path) == too_new


async def test_failed_migration_rolls_back(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A migration failing midway leaves neither its tables nor its version behind."""
    path = tmp_path / "metarr.sqlite"
    real = dbmod.migrations()
    broken = "CREATE TABLE half_done (id INTEGER PRIMARY KEY);\nINSERT INTO no_such_table VALUES (1);\n"
    monkeypatch.setattr(dbmod, "migrations", lambda: [*real, (len(real) + 1, "broken", broken)])
    db = SqliteDatabase(path)
    expected = rf"{len(real) + 1:04d}_broken failed and was rolled back"
    with pytest.raises(dbmod.MigrationFailed, match=expected):
        await db.open()
    assert user_version(path) == len(real)
    conn = sqlite3.connect(path)
    try:
        found = tables(conn)
    finally:
        conn.close()
    assert "half_done" not in found
    assert "libraries" in found


async def test_write_rolls_back_on_error(db: Database) -> None:
    """`write` is one transaction: an exception undoes every statement in it."""

    def two_inserts_then_fail(conn: sqlite3.Connection) -> None:
        conn.execute("INSERT INTO libraries (name, kind, path, created_at) VALUES ('A', 'movies', '/a', 1)")
        conn.execute("INSERT INTO libraries (name, kind, path, created_at) VALUES ('B', 'series', '/b', 1)")
        raise ValueError("boom")

    with pytest.raises(ValueError, match="boom"):
        await db.write(two_inserts_then_fail)
    assert (await db.fetchone("SELECT COUNT(*) FROM libraries"))[0] == 0
    await db.execute("INSERT INTO libraries (name, kind, path, created_at) VALUES ('C', 'movies', '/c', 1)")
    assert [r["name"] for r in await db.fetchall("SELECT name FROM libraries")] == ["C"]


async def test_reader_is_read_only(db: Database) -> None:
    """The read connection refuses writes."""
    with pytest.raises(sqlite3.OperationalError, match=r"readonly|read-only|query_only"):
        await db.read(lambda c: c.execute("DELETE FROM libraries"))


async def test_path_with_special_characters(tmp_path: Path) -> None:
    """A data folder with spaces, '?' and '#' in its name still opens both connections."""
    db = SqliteDatabase(tmp_path / "my data ?#%" / "metarr.sqlite")
    await db.open()
    try:
        sql = "INSERT INTO libraries (name, kind, path, created_at) VALUES ('M', 'movies', '/m', 1)"
        await db.execute(sql)
        assert (await db.fetchone("SELECT COUNT(*) FROM libraries"))[0] == 1
    finally:
        await db.close()


# ---------------------------------------------------------------- CLI


def test_migrate_command_prints_before_and_after(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`metarr-agent migrate` reports 0 -> N, then N -> N (already current)."""
    config = write_config(tmp_path)
    db_path = tmp_path / "data" / "metarr.sqlite"
    assert main(["migrate", "--config", str(config)]) == 0
    out = capsys.readouterr().out
    assert out.strip() == f"database {db_path}: schema 0 -> {schema_version()}"
    assert user_version(db_path) == schema_version()
    assert main(["migrate", "--config", str(config)]) == 0
    out = capsys.readouterr().out
    n = schema_version()
    assert out.strip() == f"database {db_path}: schema {n} -> {n} (already current)"


def test_migrate_command_refuses_newer_database(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`metarr-agent migrate` on a newer database: exit 1 and one line on stderr."""
    config = write_config(tmp_path)
    db_path = tmp_path / "data" / "metarr.sqlite"
    migrate_file(db_path)
    set_user_version(db_path, schema_version() + 1)
    assert main(["migrate", "--config", str(config)]) == 1
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].startswith("metarr-agent: error: the database is at schema version")
    assert "Traceback" not in captured.err
    assert user_version(db_path) == schema_version() + 1


def test_unusable_file_is_a_user_error_naming_it(tmp_path: Path) -> None:
    """`migrate` (and serve's check) on a file that is not SQLite: a UserError naming the file and the way out."""
    path = tmp_path / "metarr.sqlite"
    path.write_bytes(b"not a database\n" * 400)
    for check in (False, True):
        with pytest.raises(dbmod.DatabaseUnusable) as info:
            migrate_file(path, check=check)
        assert str(path) in info.value.message and "damaged" in info.value.message
        assert "backup" in info.value.message


def test_check_writes_once_and_keeps_the_data(tmp_path: Path) -> None:
    """serve's check on a good database: migrated, test-written, nothing else changed."""
    path = tmp_path / "metarr.sqlite"
    assert migrate_file(path, check=True) == (0, schema_version())
    assert migrate_file(path, check=True) == (schema_version(), schema_version())
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("SELECT COUNT(*) FROM meta WHERE key = 'agent.checked_at'").fetchone()[0] == 1
    finally:
        conn.close()
