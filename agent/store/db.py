"""SQLite access: one writer connection behind a lock, one read-only connection, forward-only migrations."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import aiosqlite

from agent.errors import AgentError, UserError
from agent.store.migrate import DatabaseTooNew, MigrationFailed, migrations, schema_version, split_sql

__all__ = ["DatabaseTooNew", "SqliteDatabase", "migrate_file", "migrations", "schema_version"]

log = logging.getLogger(__name__)
T = TypeVar("T")

MIN_SQLITE = (3, 35, 0)  # UPDATE ... RETURNING
BUSY_TIMEOUT_MS = 5000


class DatabaseUnusable(UserError):
    """The database file is damaged, read-only, on a full disk or locked: the agent cannot start from it."""


class DatabaseFull(AgentError):
    """A write failed because the disk holding the database is full (SQLITE_FULL / ENOSPC)."""

    status = 503
    default_message = "the database disk is full"


SQLITE_IOERR, SQLITE_FULL = 10, 13
LOW_SPACE = 1024 * 1024  # an I/O error with less than this left on the disk counts as a full disk
# primary SQLite result code -> what is wrong with the file and what the user can do about it
_UNUSABLE: dict[int, tuple[str, str]] = {
    11: ("is damaged", "restore it from a backup, or move it and its -wal/-shm files aside to start"
                       " with an empty database (then rescan)"),
    26: ("is damaged", "restore it from a backup, or move it and its -wal/-shm files aside to start"
                       " with an empty database (then rescan)"),
    8: ("cannot be written", "check its owner and mode, the immutable attribute (lsattr) and that {dir}"
                             " is not on a read-only mount"),
    3: ("cannot be written", "check its owner and mode and that {dir} is not on a read-only mount"),
    13: ("cannot be written: the disk is full", "free space on the disk holding {dir}"),
    14: ("cannot be opened", "check that {dir} exists and that the agent may create files in it"),
    10: ("cannot be read or written", "check the disk holding {dir}"),
    5: ("is locked by another program", "close it (an sqlite3 shell, a backup tool) and start again"),
    6: ("is locked by another program", "close it (an sqlite3 shell, a backup tool) and start again"),
}
_MESSAGES = ((13, "database or disk is full"), (11, "malformed"), (26, "not a database"), (8, "readonly database"))


def result_code(exc: BaseException) -> int | None:
    """The primary SQLite result code of an error (from the message when the code is not attached)."""
    code = getattr(exc, "sqlite_errorcode", None)
    if isinstance(code, int):
        return code & 0xFF
    text = str(exc)
    return next((c for c, words in _MESSAGES if words in text), None)


def is_disk_full(exc: BaseException, folder: Path | None = None) -> bool:
    """True for SQLITE_FULL and ENOSPC, and for an I/O error while `folder`'s disk has (almost) no space left.

    SQLite reports a full disk as SQLITE_FULL when the database or its WAL cannot grow, but as an
    I/O error (SQLITE_IOERR_SHMSIZE, ..._WRITE) when the -shm file cannot.
    """
    if isinstance(exc, OSError):
        return exc.errno == errno.ENOSPC
    if not isinstance(exc, sqlite3.Error):
        return False
    code = result_code(exc)
    return code == SQLITE_FULL or (code == SQLITE_IOERR and folder is not None and _space_left(folder) < LOW_SPACE)


def _space_left(folder: Path) -> int:
    """Bytes an ordinary process may still write on the disk holding `folder` (a large number if unknown)."""
    try:
        st = os.statvfs(folder)
    except OSError:
        return 1 << 62
    return st.f_bavail * st.f_frsize


def unusable(path: Path, exc: BaseException) -> DatabaseUnusable | None:
    """The user-facing refusal for an error that says the database file itself is unusable, else None."""
    code = SQLITE_FULL if is_disk_full(exc, path.parent) else result_code(exc)
    known = _UNUSABLE.get(code or -1)
    if known is None:
        return None
    what, todo = known
    return DatabaseUnusable(f"the database {path} {what} ({exc}); {todo.format(dir=path.parent)}")


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
            for statement in split_sql(sql):
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


class SqliteDatabase:
    """The agent's SQLite database: `write(fn)` runs fn(conn) in one transaction on the writer thread.

    aiosqlite owns one thread per connection; whole operations (several statements) run
    in that thread through `Connection._execute`, so a queue claim or a scan batch costs one
    thread hop instead of one per statement.
    """

    dialect = "sqlite"

    def __init__(self, path: Path) -> None:
        self.path = path
        self._writer: aiosqlite.Connection | None = None
        self._reader: aiosqlite.Connection | None = None
        self._lock = asyncio.Lock()
        self.full_since: float | None = None  # wall-clock time of the first write a full disk refused
        self.on_full: Callable[[str | None], None] | None = None  # told the warning text, then None when cleared

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
            try:
                result = await self._writer._execute(_in_transaction, self._writer._conn, fn, args)
            except sqlite3.Error as exc:
                if not is_disk_full(exc) and not (  # an I/O error counts when the disk has no room (statvfs off-loop)
                        result_code(exc) == SQLITE_IOERR
                        and await self._writer._execute(_space_left, self.path.parent) < LOW_SPACE):
                    raise
                self._disk_full(True)
                raise DatabaseFull(f"the database disk is full: cannot write {self.path}; "
                                   f"free space on the disk holding {self.path.parent}") from exc
            # a small write may fit in space SQLite already holds: the disk counts as full until it has room
            if self.full_since is not None and await self._writer._execute(_space_left, self.path.parent) >= LOW_SPACE:
                self._disk_full(False)
        return result

    async def write_concurrent(self, fn: Callable[..., T], *args: Any) -> T:
        """As `write`: SQLite has one writer, so there is nothing to do concurrently."""
        return await self.write(fn, *args)

    def listen(self, channel: str, callback: Callable[[str], None]) -> None:
        """Nothing to listen to: on SQLite this agent is the only one writing."""

    def _disk_full(self, full: bool) -> None:
        """Remember whether writes are refused for a full disk, and tell `on_full` when that changes."""
        if full == (self.full_since is not None):
            return
        self.full_since = time.time() if full else None
        if full:
            log.error("the disk holding %s is full: writes fail until space is freed", self.path)
        else:
            log.warning("the database accepts writes again: there is space on the disk holding %s", self.path)
        if self.on_full is not None:
            self.on_full(f"database disk full: nothing can be saved until space is freed on the disk holding "
                         f"{self.path.parent}" if full else None)

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
        conn.execute("COMMIT")
    except BaseException:
        # a failed COMMIT (a full disk) may leave the transaction open, or SQLite may have ended it already
        if conn.in_transaction:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
        raise
    return result


def migrate_file(path: Path, check: bool = False) -> tuple[int, int]:
    """Migrate the database at `path` synchronously; returns (before, after).

    With `check` (serve, before it listens) the file is also checked for damage and test-written,
    so a damaged, read-only or full database stops the start with one line saying what to do.
    A database file that cannot be used raises DatabaseUnusable (a user error) either way.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        conn = sqlite3.connect(path, isolation_level=None)
        try:
            _configure(conn, False)
            if check:
                _check_integrity(conn)
            result = migrate_sync(conn)
            if check:
                conn.execute("BEGIN IMMEDIATE")
                conn.execute("INSERT INTO meta (key, value) VALUES ('agent.checked_at', ?)"
                             " ON CONFLICT(key) DO UPDATE SET value = excluded.value", (str(time.time()),))
                conn.execute("COMMIT")
            return result
        finally:
            conn.close()
    except (sqlite3.Error, MigrationFailed) as exc:
        cause = exc.__cause__ if isinstance(exc, MigrationFailed) else exc
        refusal = unusable(path, cause) if cause is not None else None
        if refusal is None:
            raise
        raise refusal from None


def _check_integrity(conn: sqlite3.Connection) -> None:
    """Raise SQLITE_CORRUPT's error when a quick check of every page finds damage."""
    problems = [row[0] for row in conn.execute("PRAGMA quick_check(3)").fetchall()]
    if problems != ["ok"]:
        exc = sqlite3.DatabaseError(f"integrity check: {'; '.join(problems)}")
        exc.sqlite_errorcode = 11  # type: ignore[attr-defined]
        raise exc
