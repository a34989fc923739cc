"""SQLite access: one writer connection behind a lock, one read-only connection, forward-only migrations."""

from __future__ import annotations

import asyncio
import logging
import re
import sqlite3
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

import aiosqlite

from agent.errors import UserError

log = logging.getLogger(__name__)
T = TypeVar("T")

MIN_SQLITE = (3, 35, 0)  # UPDATE ... RETURNING
BUSY_TIMEOUT_MS = 5000


class DatabaseTooNew(UserError):
    """The database was written by a newer agent than this one."""


class MigrationFailed(RuntimeError):
    """A migration raised; it was rolled back and the schema stays at the version before it."""


def migrations() -> list[tuple[int, str, str]]:
    """Return (version, name, sql) for every packaged migration, in order."""
    out = []
    for entry in resources.files("agent.store").joinpath("migrations").iterdir():
        match = re.match(r"^(\d{4})_(.+)\.sql$", entry.name)
        if match:
            out.append((int(match.group(1)), match.group(2), entry.read_text(encoding="utf-8")))
    out.sort()
    for expected, (version, name, _) in enumerate(out, start=1):
        if version != expected:
            raise RuntimeError(f"migration numbering has a gap at {version:04d}_{name}")
    return out


def schema_version() -> int:
    """The schema version this code expects."""
    return len(migrations())


def _configure(conn: sqlite3.Connection, readonly: bool) -> None:
    """Apply connection pragmas."""
    conn.row_factory = sqlite3.Row
    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    conn.execute("PRAGMA foreign_keys = ON")
    if not readonly:
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")
    else:
        conn.execute("PRAGMA query_only = ON")


def migrate_sync(conn: sqlite3.Connection) -> tuple[int, int]:
    """Bring the schema up to date on a stdlib connection; returns (before, after)."""
    if sqlite3.sqlite_version_info < MIN_SQLITE:
        raise UserError(f"SQLite {sqlite3.sqlite_version} is too old; the agent needs 3.35 or newer")
    current = conn.execute("PRAGMA user_version").fetchone()[0]
    steps = migrations()
    if current > len(steps):
        raise DatabaseTooNew(
            f"the database is at schema version {current} but this agent only knows {len(steps)}; "
            "upgrade metarr-agent (or restore a backup made by this version)"
        )
    for version, name, sql in steps[current:]:
        log.info("applying migration %04d_%s", version, name)
        conn.execute("BEGIN IMMEDIATE")
        try:
            for statement in _split_sql(sql):
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {version}")
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            conn.execute("ROLLBACK")
            raise MigrationFailed(f"migration {version:04d}_{name} failed and was rolled back "
                                  f"(schema stays at version {version - 1}): {exc}") from exc
        except BaseException:
            conn.execute("ROLLBACK")
            raise
    return current, len(steps)


def _split_sql(sql: str) -> list[str]:
    """Split a migration into statements (executescript would commit implicitly)."""
    statements, buf = [], []
    for line in sql.splitlines():
        stripped = line.strip()
        if stripped.startswith("--") or not stripped:
            continue
        buf.append(line)
        if sqlite3.complete_statement("\n".join(buf)):
            statements.append("\n".join(buf))
            buf = []
    if buf and "\n".join(buf).strip():
        statements.append("\n".join(buf))
    return statements


class Database:
    """The agent's database: `write(fn)` runs fn(conn) in one transaction on the writer thread.

    aiosqlite owns one thread per connection; whole operations (several statements) run
    in that thread through `Connection._execute`, so a queue claim or a scan batch costs one
    thread hop instead of one per statement.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._writer: aiosqlite.Connection | None = None
        self._reader: aiosqlite.Connection | None = None
        self._lock = asyncio.Lock()

    async def open(self) -> None:
        """Open both connections and apply migrations."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._writer = await aiosqlite.connect(self.path, isolation_level=None)
            await self._writer._execute(_configure, self._writer._conn, False)
            await self._writer._execute(migrate_sync, self._writer._conn)
            uri = f"{self.path.resolve().as_uri()}?mode=ro"  # percent-encodes spaces, ? and #
            self._reader = await aiosqlite.connect(uri, uri=True, isolation_level=None)
            await self._reader._execute(_configure, self._reader._conn, True)
        except BaseException:
            await self.close()  # a refused or failed open leaves no thread or file handle behind
            raise

    async def close(self) -> None:
        """Close both connections."""
        for conn in (self._reader, self._writer):
            if conn is not None:
                await conn.close()
        self._reader = self._writer = None

    async def write(self, fn: Callable[..., T], *args: Any) -> T:
        """Run `fn(conn, *args)` inside BEGIN IMMEDIATE ... COMMIT on the writer thread."""
        if self._writer is None:
            raise RuntimeError("database is closed")
        async with self._lock:
            return await self._writer._execute(_in_transaction, self._writer._conn, fn, args)

    async def read(self, fn: Callable[..., T], *args: Any) -> T:
        """Run `fn(conn, *args)` on the read-only connection."""
        if self._reader is None:
            raise RuntimeError("database is closed")
        return await self._reader._execute(fn, self._reader._conn, *args)

    async def fetchall(self, sql: str, params: tuple | dict = ()) -> list[sqlite3.Row]:
        """Run a read query and return all rows."""
        return await self.read(lambda c: c.execute(sql, params).fetchall())

    async def fetchone(self, sql: str, params: tuple | dict = ()) -> sqlite3.Row | None:
        """Run a read query and return the first row or None."""
        return await self.read(lambda c: c.execute(sql, params).fetchone())

    async def execute(self, sql: str, params: tuple | dict = ()) -> int:
        """Run one write statement in its own transaction; returns lastrowid."""
        return await self.write(lambda c: c.execute(sql, params).lastrowid)


def _in_transaction(conn: sqlite3.Connection, fn: Callable[..., T], args: tuple) -> T:
    """Wrap fn in an immediate transaction; roll back on any error."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        result = fn(conn, *args)
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
    return result


def migrate_file(path: Path) -> tuple[int, int]:
    """Migrate the database at `path` synchronously (CLI `migrate`); returns (before, after)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        _configure(conn, False)
        return migrate_sync(conn)
    finally:
        conn.close()
