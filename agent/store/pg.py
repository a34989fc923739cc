"""PostgreSQL as the store: the same operations, schema and migrations as SQLite, shared by several agents.

Why psycopg 3 (sync connections on their own threads, plus one async connection to LISTEN): every store
operation is a synchronous function `fn(conn, ...)` that runs whole on the connection's thread, one
thread hop per operation. psycopg lets the same functions run on PostgreSQL unchanged, behind a thin
adapter (`PgConn`) that speaks the sqlite3 connection's interface; asyncpg would need every operation
written a second time as a coroutine. psycopg's binary wheel carries libpq, so nothing is installed
by hand, and its async connection delivers NOTIFY without polling.

Writes keep SQLite's guarantee that the store was written for: one writer at a time. Each write
transaction first takes a transaction-scoped advisory lock (`pg_advisory_xact_lock`), so dedupe
merges, job ids, dependency rewiring and the config mirror behave exactly as on one box, whichever
agent writes. The queue's claim is the exception (`write_concurrent`): it takes rows with
`FOR UPDATE SKIP LOCKED` and does not wait for other agents' claims; one running job per lock key is
kept by a unique index (migration 0009).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import re
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Final, TypeVar

import psycopg
import psycopg.errors
from psycopg.adapt import Dumper, Loader

from agent.errors import UserError
from agent.store.dialect import ddl_to_postgres, to_postgres
from agent.store.migrate import DatabaseTooNew, MigrationFailed, migrations, split_sql

log = logging.getLogger(__name__)
T = TypeVar("T")

WRITE_LOCK: Final = 0x6D657461  # the advisory lock every serialised write takes ("meta")
MIGRATE_LOCK: Final = 0x6D696772  # held while one agent migrates ("migr")
JOBS_CHANNEL: Final = "metarr_jobs"  # NOTIFY: new or due work
EVENTS_CHANNEL: Final = "metarr_events"  # NOTIFY: an event for every agent's /ws
CONNECT_TIMEOUT: Final = 10
RECONNECT_MAX: Final = 30.0


def redact(url: str) -> str:
    """The URL without its password, for messages and logs."""
    url = re.sub(r"(://[^:/@]+):[^@/]*@", r"\1:***@", url)
    return re.sub(r"([?&]password=)[^&]*", r"\1***", url)


class _UnknownText(Dumper):
    """ints and bools go as untyped text: PostgreSQL infers each from where it is used, as SQLite would."""

    oid = 0

    def dump(self, obj: Any) -> bytes:
        return str(int(obj)).encode()


class _NumberLoader(Loader):
    """numeric (SUM of bigint, AVG) as int when whole, else float, as SQLite returns them."""

    def load(self, data: Any) -> int | float:
        text = bytes(data).decode()
        return int(text) if re.fullmatch(r"-?\d+", text) else float(text)


class Row:
    """One result row, read by index or by column name, like sqlite3.Row (`dict(row)` works)."""

    __slots__ = ("_index", "_values")

    def __init__(self, values: Sequence[Any], index: dict[str, int]) -> None:
        self._values = tuple(values)
        self._index = index

    def __getitem__(self, key: int | str | slice) -> Any:
        if isinstance(key, str):
            return self._values[self._index[key]]
        return self._values[key]

    def keys(self) -> list[str]:
        return list(self._index)

    def __iter__(self) -> Iterator[Any]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Row) and self._values == other._values

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Row({dict(zip(self._index, self._values, strict=True))!r})"


def _row_factory(cursor: psycopg.Cursor[Any]) -> Callable[[Sequence[Any]], Row]:
    index = {col.name: i for i, col in enumerate(cursor.description or ())}
    return lambda values: Row(values, index)


class PgCursor:
    """The part of sqlite3.Cursor the store uses."""

    def __init__(self, cur: psycopg.Cursor[Row], returns_id: bool) -> None:
        self._cur = cur
        self.rowcount = cur.rowcount
        self.lastrowid: int | None = None
        self._first: Row | None = None
        if returns_id:
            self._first = cur.fetchone()
            self.lastrowid = self._first[0] if self._first is not None else None

    def fetchone(self) -> Row | None:
        if self._cur.description is None:
            return None
        return self._cur.fetchone()

    def fetchall(self) -> list[Row]:
        if self._cur.description is None:
            return []
        return self._cur.fetchall()

    def __iter__(self) -> Iterator[Row]:
        return iter(self.fetchall())


class PgConn:
    """A psycopg connection behind the sqlite3.Connection interface the store's functions are written to."""

    dialect: Final = "postgresql"

    def __init__(self, raw: psycopg.Connection[Row]) -> None:
        self.raw = raw
        self.serialized = False

    def execute(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> PgCursor:
        text, returns_id = to_postgres(sql)
        cur = self.raw.cursor()
        with _as_sqlite_errors():
            cur.execute(text, _params(params))  # type: ignore[arg-type]  # translated store SQL
        return PgCursor(cur, returns_id)

    def executemany(self, sql: str, seq: Sequence[Sequence[Any]]) -> PgCursor:
        text, _ = to_postgres(sql, many=True)
        cur = self.raw.cursor()
        with _as_sqlite_errors():
            cur.executemany(text, [_params(p) for p in seq])  # type: ignore[arg-type]
        return PgCursor(cur, False)

    @property
    def in_transaction(self) -> bool:
        return self.raw.info.transaction_status != psycopg.pq.TransactionStatus.IDLE

    def serialize(self) -> None:
        """Take the store's write lock for the rest of this transaction (other agents' writes wait)."""
        if not self.serialized:
            self.raw.execute("SELECT pg_advisory_xact_lock(%s)", (WRITE_LOCK,))
            self.serialized = True

    def notify(self, channel: str, payload: str = "") -> None:
        """Send NOTIFY when this transaction commits."""
        self.raw.execute("SELECT pg_notify(%s, %s)", (channel, payload))


@contextlib.contextmanager
def _as_sqlite_errors() -> Iterator[None]:
    """A broken constraint raises sqlite3.IntegrityError on both backends (the store catches that one)."""
    try:
        yield
    except psycopg.errors.IntegrityError as exc:
        raise sqlite3.IntegrityError(str(exc).strip()) from exc


def one_line(exc: BaseException) -> str:
    """libpq's message (several lines, tabs) as one line."""
    return " ".join(str(exc).split())


def _params(params: Sequence[Any] | dict[str, Any]) -> Sequence[Any] | dict[str, Any]:
    return params if isinstance(params, dict) else tuple(params)


def connect(url: str, autocommit: bool = True) -> psycopg.Connection[Row]:
    """A configured sync connection."""
    raw: psycopg.Connection[Row] = psycopg.connect(url, autocommit=autocommit, row_factory=_row_factory,
                                                   connect_timeout=CONNECT_TIMEOUT)
    _adapt(raw)
    raw.execute("SET TIME ZONE 'UTC'")
    return raw


def _adapt(raw: psycopg.Connection[Any] | psycopg.AsyncConnection[Any]) -> None:
    raw.adapters.register_dumper(int, _UnknownText)
    raw.adapters.register_dumper(bool, _UnknownText)
    raw.adapters.register_loader("numeric", _NumberLoader)


def migrate_sync(raw: psycopg.Connection[Row]) -> tuple[int, int]:
    """Bring the schema up to date (one transaction per migration, one agent at a time); (before, after)."""
    steps = migrations()
    with raw.transaction():
        raw.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATE_LOCK,))
        raw.execute("CREATE TABLE IF NOT EXISTS schema_version (version BIGINT NOT NULL)")
        row = raw.execute("SELECT version FROM schema_version").fetchone()
        if row is None:
            raw.execute("INSERT INTO schema_version (version) VALUES (0)")
            current = 0
        else:
            current = int(row[0])
    if current > len(steps):
        raise DatabaseTooNew(
            f"the database is at schema version {current} but this agent only knows {len(steps)}; "
            "upgrade metarr-agent (or restore a backup made by this version)")
    before = current
    for version, name, sql in steps:
        with raw.transaction():
            raw.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATE_LOCK,))
            current = int(raw.execute("SELECT version FROM schema_version").fetchone()[0])  # type: ignore[index]
            if current >= version:
                continue  # another agent applied it meanwhile
            log.info("applying migration %04d_%s (PostgreSQL)", version, name)
            try:
                with raw.transaction():
                    for statement in split_sql(sql):
                        raw.execute(ddl_to_postgres(statement))  # type: ignore[arg-type]  # packaged DDL
                    sync_identities(raw)
                    raw.execute("UPDATE schema_version SET version = %s", (version,))
            except psycopg.Error as exc:
                raise MigrationFailed(f"migration {version:04d}_{name} failed and was rolled back "
                                      f"(schema stays at version {version - 1}): {exc}") from exc
    return before, len(steps)


def sync_identities(raw: psycopg.Connection[Any]) -> None:
    """Move each identity sequence past the largest id (rows copied with their ids do not advance it)."""
    for (table,) in raw.execute(
            "SELECT table_name FROM information_schema.columns WHERE table_schema = current_schema()"
            " AND column_name = 'id' AND is_identity = 'YES'").fetchall():
        raw.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'),"
                    f" GREATEST((SELECT MAX(id) FROM {table}), 1), (SELECT MAX(id) FROM {table}) IS NOT NULL)")


def check_url(url: str) -> tuple[int, int]:
    """Connect and migrate (before the agent starts); an unreachable server is a UserError saying so."""
    try:
        raw = connect(url)
    except psycopg.OperationalError as exc:
        raise UserError(f"cannot reach the database {redact(url)}: {one_line(exc)}; check store.url and that"
                        " PostgreSQL is running") from None
    try:
        return migrate_sync(raw)
    finally:
        raw.close()


class _Connection:
    """One connection with a thread of its own; operations run there whole."""

    def __init__(self, url: str, name: str, again: bool) -> None:
        self.url = url
        self.again = again  # run an operation again on a new connection when the old one broke under it
        self.raw: psycopg.Connection[Row] | None = None
        self._pool = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"pg-{name}")

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._pool, self._call, fn, args)

    def _call(self, fn: Callable[..., T], args: tuple[Any, ...]) -> T:
        if self.raw is None or self.raw.closed:
            self.raw = connect(self.url)
        try:
            return fn(self.raw, *args)
        except psycopg.OperationalError:
            if not self.raw.closed and not self.raw.broken:
                raise
            log.warning("the connection to %s was lost; connecting again", redact(self.url))
            self.raw = None  # the next operation connects afresh
            if not self.again:
                # a write is not run twice: the server may have committed it before the connection broke
                # (its caller retries what it must; a claim lost this way is freed by its lease)
                raise
            self.raw = connect(self.url)
            return fn(self.raw, *args)

    async def close(self) -> None:
        def shut() -> None:
            if self.raw is not None:
                self.raw.close()
                self.raw = None
        with contextlib.suppress(RuntimeError):
            await asyncio.get_running_loop().run_in_executor(self._pool, shut)
        self._pool.shutdown(wait=True)


def _transaction(raw: psycopg.Connection[Row], fn: Callable[..., T], args: tuple[Any, ...],
                 serialized: bool) -> T:
    with raw.transaction():
        conn = PgConn(raw)
        if serialized:
            conn.serialize()
        return fn(conn, *args)


def _read(raw: psycopg.Connection[Row], fn: Callable[..., T], args: tuple[Any, ...]) -> T:
    return fn(PgConn(raw), *args)


class PgDatabase:
    """The store on PostgreSQL: `write(fn)` runs fn(conn) in one serialised transaction."""

    dialect: Final = "postgresql"

    def __init__(self, url: str) -> None:
        self.url = url
        self.path = redact(url)  # what messages name (the SQLite store names its file)
        self.full_since: float | None = None  # PostgreSQL reports its own disk: never set here
        self.on_full: Callable[[str | None], None] | None = None
        self._writer: _Connection | None = None
        self._reader: _Connection | None = None
        self._lock = asyncio.Lock()
        self._listener: asyncio.Task[None] | None = None
        self._callbacks: dict[str, list[Callable[[str], None]]] = {}

    async def open(self) -> None:
        """Connect, migrate, and start listening."""
        writer, reader = _Connection(self.url, "writer", again=False), _Connection(self.url, "reader", again=True)
        try:
            await writer.run(migrate_sync)
        except psycopg.OperationalError as exc:
            await writer.close()
            await reader.close()
            raise UserError(f"cannot reach the database {self.path}: {one_line(exc)}; check store.url and"
                            " that PostgreSQL is running") from None
        except BaseException:
            await writer.close()
            await reader.close()
            raise
        self._writer, self._reader = writer, reader

    async def close(self) -> None:
        """Stop listening and close both connections."""
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._listener
            self._listener = None
        for conn in (self._reader, self._writer):
            if conn is not None:
                await conn.close()
        self._reader = self._writer = None

    async def write(self, fn: Callable[..., T], *args: Any) -> T:
        """Run `fn(conn, *args)` in one transaction holding the store's write lock."""
        return await self._write(fn, args, True)

    async def write_concurrent(self, fn: Callable[..., T], *args: Any) -> T:
        """Run `fn(conn, *args)` in one transaction without the write lock (fn calls conn.serialize() if it must)."""
        return await self._write(fn, args, False)

    async def _write(self, fn: Callable[..., T], args: tuple[Any, ...], serialized: bool) -> T:
        if self._writer is None:
            raise RuntimeError("database is closed")
        async with self._lock:
            return await self._writer.run(_transaction, fn, args, serialized)

    async def read(self, fn: Callable[..., T], *args: Any) -> T:
        """Run `fn(conn, *args)` on the reading connection (each statement sees the latest commits)."""
        if self._reader is None:
            raise RuntimeError("database is closed")
        return await self._reader.run(_read, fn, args)

    async def fetchall(self, sql: str, params: tuple | dict = ()) -> list[Row]:
        return await self.read(lambda c: c.execute(sql, params).fetchall())

    async def fetchone(self, sql: str, params: tuple | dict = ()) -> Row | None:
        return await self.read(lambda c: c.execute(sql, params).fetchone())

    async def execute(self, sql: str, params: tuple | dict = ()) -> int:
        return await self.write(lambda c: c.execute(sql, params).lastrowid)

    # ------------------------------------------------------------------ LISTEN / NOTIFY
    def listen(self, channel: str, callback: Callable[[str], None]) -> None:
        """Call `callback(payload)` on the event loop for each NOTIFY on `channel` (from any agent)."""
        new_channel = channel not in self._callbacks
        self._callbacks.setdefault(channel, []).append(callback)
        if self._listener is not None and new_channel:  # LISTEN again on all channels, this one included
            self._listener.cancel()
            self._listener = None
        if self._listener is None:
            self._listener = asyncio.get_running_loop().create_task(self._listen(), name="pg-listen")

    async def _listen(self) -> None:
        """Keep one LISTEN connection; reconnect with backoff when it drops."""
        delay = 0.5
        while True:
            try:
                aconn = await psycopg.AsyncConnection.connect(self.url, autocommit=True,
                                                              connect_timeout=CONNECT_TIMEOUT)
            except psycopg.Error as exc:
                log.warning("cannot listen on %s (%s); trying again in %.0f s", self.path, exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, RECONNECT_MAX)
                continue
            try:
                async with aconn:
                    for channel in list(self._callbacks):
                        await aconn.execute(f'LISTEN "{channel}"')
                    delay = 0.5
                    for callbacks in self._callbacks.values():  # work queued while not listening
                        for cb in callbacks:
                            cb("")
                    async for note in aconn.notifies():
                        for cb in self._callbacks.get(note.channel, ()):
                            try:
                                cb(note.payload)
                            except Exception:
                                log.exception("a NOTIFY listener failed on %s", note.channel)
            except psycopg.Error as exc:
                log.warning("lost the LISTEN connection to %s (%s); connecting again", self.path, exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, RECONNECT_MAX)


def is_postgres(conn: Any) -> bool:
    """Whether a store function's connection is PostgreSQL's (else SQLite's)."""
    return getattr(conn, "dialect", "sqlite") == "postgresql"


def notify(conn: Any, channel: str, payload: str = "") -> None:
    """NOTIFY on PostgreSQL when the transaction commits; nothing on SQLite (one agent, nobody to tell)."""
    if is_postgres(conn):
        conn.notify(channel, payload)


def serialize(conn: Any) -> None:
    """Take the store's write lock in a `write_concurrent` transaction (SQLite's writes are always serial)."""
    if is_postgres(conn):
        conn.serialize()



def notify_many(conn: Any, channel: str, payloads: Sequence[str]) -> None:
    """Several NOTIFYs in one transaction (sent at its commit)."""
    for payload in payloads:
        notify(conn, channel, payload)
