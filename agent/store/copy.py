"""`metarr-agent migrate --to URL`: copy an SQLite store, whole, into an empty PostgreSQL database.

The SQLite file is opened read-only (`mode=ro`) and read in one snapshot, so it is left exactly as it
was: going back is a matter of removing `store.url` from the config. The target is migrated to the
current schema, then every table is copied in ONE PostgreSQL transaction that holds the store's write
lock: either the whole store arrives, with its ids, or nothing does.

- Tables are copied parents first, in an order derived from the file's own foreign keys (PostgreSQL's
  are not deferrable), with COPY FROM STDIN.
- Every value is checked against its PostgreSQL column type before it is sent: SQLite keeps whatever it
  was given (a float in an INTEGER column, text in a REAL one), PostgreSQL does not; such a row is
  reported by table, key and column instead of as a COPY error.
- Identity sequences are moved past the copied ids, and each table's row count is compared with the
  file's before the commit.
- Then the store is adopted as a shared one: jobs left running go back to pending (as at any restart:
  worker and lease cleared, a twin pending job supersedes them), and with an agent name the libraries
  become that agent's, and the jobs that may still run are bound to the agent that must run them, as
  if they had been queued on PostgreSQL.

A target that already holds rows in any of these tables is refused: a used store is never merged into
or overwritten.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Final

import psycopg
import psycopg.errors
from psycopg import sql

from agent.errors import UserError
from agent.store import jobs, owners
from agent.store.migrate import schema_version
from agent.store.pg import PgConn, Row, connect, migrate_sync, one_line, redact, sync_identities

BATCH: Final = 2000  # rows read from SQLite per fetch
PG_ONLY: Final = frozenset({"schema_version"})  # PostgreSQL's schema version (SQLite's is PRAGMA user_version)
_INTEGER: Final = frozenset({"bigint", "integer", "smallint"})
_FLOAT: Final = frozenset({"double precision", "real", "numeric"})
_TEXT: Final = frozenset({"text", "character varying", "character"})


def copy_sqlite_to_postgres(sqlite_path: Path | str, url: str, agent_name: str | None) -> dict[str, int]:
    """Copy the SQLite store at `sqlite_path` into the empty PostgreSQL database at `url`; {table: rows}.

    With `agent_name` the copied libraries (and the jobs about them) belong to that agent; else they stay
    unowned (the first agent whose config names a library adopts it). Raises UserError, changing nothing,
    when the file is missing or not at this code's schema version, the target cannot be reached or
    already holds rows, or a value does not fit its PostgreSQL column.
    """
    path = Path(sqlite_path)
    if not url.startswith(("postgresql://", "postgres://")):
        raise UserError(f"the target must be a postgresql:// URL, got {redact(url)!r}")
    if not path.is_file():
        raise UserError(f"no SQLite database at {path}: nothing to copy (check data_dir, or start the agent"
                        " once on SQLite)")
    src = _open_readonly(path)
    try:
        src.execute("BEGIN")  # one snapshot of the file for every read below
        _check_version(src, path)
        columns = _sqlite_columns(src, path)
        order = copy_order(src, list(columns))
        raw = _connect(url)
        try:
            _refuse_used(raw, list(columns), url)  # before migrating: a used store is not touched at all
            migrate_sync(raw)
            with raw.transaction():
                conn = PgConn(raw)
                conn.serialize()  # an agent starting on this store meanwhile waits for the copy
                pg_types = _pg_columns(raw)
                _check_columns(columns, pg_types)
                _refuse_used(raw, list(columns), url)
                counts = {table: _copy_table(src, raw, path, table, columns[table], pg_types[table])
                          for table in order}
                sync_identities(raw)
                _verify_counts(src, raw, counts)
                _adopt(conn, agent_name, time.time())
        except psycopg.OperationalError as exc:
            raise UserError(f"lost the connection to {redact(url)} during the copy: {one_line(exc)}; nothing"
                            " was copied (the transaction rolled back): run the command again") from None
        finally:
            raw.close()
        return counts
    finally:
        src.close()


# ---------------------------------------------------------------- the SQLite side


def _open_readonly(path: Path) -> sqlite3.Connection:
    """The file opened read-only (nothing it holds can change), autocommit so BEGIN is ours."""
    uri = f"{path.resolve().as_uri()}?mode=ro"  # percent-encodes spaces, ? and #
    try:
        conn = sqlite3.connect(uri, uri=True, isolation_level=None)
        conn.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()
    except sqlite3.Error as exc:
        raise UserError(f"cannot read the SQLite database {path}: {exc}") from None
    return conn


def _check_version(src: sqlite3.Connection, path: Path) -> None:
    """Refuse a file at another schema version than this code's (the copy is column for column)."""
    version = src.execute("PRAGMA user_version").fetchone()[0]
    current = schema_version()
    if version < current:
        raise UserError(f"the SQLite database {path} is at schema version {version}, this metarr-agent copies"
                        f" version {current}: run `metarr-agent migrate` (without --to) first to bring it to"
                        f" version {current}, then copy it")
    if version > current:
        raise UserError(f"the SQLite database {path} is at schema version {version}, newer than this"
                        f" metarr-agent's {current}: upgrade metarr-agent, then copy it")


def _quote(name: str) -> str:
    """An SQLite identifier, quoted."""
    return '"' + name.replace('"', '""') + '"'


def _sqlite_columns(src: sqlite3.Connection, path: Path) -> dict[str, list[str]]:
    """Every table of the file (SQLite's own excepted) with its columns in order."""
    tables = [r[0] for r in src.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\'"
        " ORDER BY rowid")]
    if not tables:
        raise UserError(f"the SQLite database {path} holds no tables: nothing to copy")
    return {t: [r[0] for r in src.execute("SELECT name FROM pragma_table_info(?) ORDER BY cid", (t,))]
            for t in tables}


def copy_order(src: sqlite3.Connection, tables: Sequence[str]) -> list[str]:
    """The tables with every table after the ones its foreign keys reference (from the file's own keys)."""
    by_lower = {t.lower(): t for t in tables}
    needs = {t: {by_lower[r[0].lower()] for r in src.execute('SELECT "table" FROM pragma_foreign_key_list(?)', (t,))
                 if r[0].lower() in by_lower} - {t} for t in tables}
    order: list[str] = []
    while len(order) < len(tables):
        ready = [t for t in tables if t not in order and needs[t] <= set(order)]
        if not ready:
            left = sorted(set(tables) - set(order))
            raise UserError(f"the foreign keys of tables {', '.join(left)} form a cycle: no copy order exists")
        order += ready
    return order


def _rows(src: sqlite3.Connection, path: Path, table: str, columns: Sequence[str]) -> Iterator[tuple[Any, ...]]:
    """The table's rows in batches."""
    cur = src.execute(f"SELECT {', '.join(map(_quote, columns))} FROM {_quote(table)} ORDER BY rowid")
    while True:
        try:
            batch = cur.fetchmany(BATCH)
        except sqlite3.Error as exc:
            raise UserError(f"cannot read table {table} of {path}: {exc}") from None
        if not batch:
            return
        yield from batch


# ---------------------------------------------------------------- the PostgreSQL side


def _connect(url: str) -> psycopg.Connection[Row]:
    """A connection to the target; an unreachable server is a UserError naming the URL without its password."""
    try:
        return connect(url)
    except psycopg.Error as exc:
        raise UserError(f"cannot reach the database {redact(url)}: {one_line(exc)}; check the URL and that"
                        " PostgreSQL is running") from None


def _pg_columns(raw: psycopg.Connection[Any]) -> dict[str, dict[str, str]]:
    """{table: {column: data type}} of the schema in use."""
    out: dict[str, dict[str, str]] = {}
    for table, column, type_ in raw.execute(
            "SELECT table_name, column_name, data_type FROM information_schema.columns"
            " WHERE table_schema = current_schema() ORDER BY table_name, ordinal_position").fetchall():
        out.setdefault(table, {})[column] = type_
    return out


def _refuse_used(raw: psycopg.Connection[Any], tables: Sequence[str], url: str) -> None:
    """Refuse a target holding any row in a table the copy would fill."""
    present = {r[0] for r in raw.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()"
        " AND table_type = 'BASE TABLE'").fetchall()}
    used = [t for t in tables if t in present and raw.execute(
        sql.SQL("SELECT EXISTS (SELECT 1 FROM {})").format(sql.Identifier(t))).fetchone()[0]]  # type: ignore[index]
    if used:
        raise UserError(f"the database {redact(url)} already holds data (in {', '.join(used)}): the copy goes only"
                        " into an empty database, never over a store in use; create an empty database for it"
                        " (createdb) and name that one")


def _check_columns(columns: dict[str, list[str]], pg_types: dict[str, dict[str, str]]) -> None:
    """Both sides have the same tables with the same columns (else the copy would lose or invent data)."""
    problems = []
    for table, cols in columns.items():
        if table not in pg_types:
            problems.append(f"table {table} is not in PostgreSQL")
            continue
        if missing := [c for c in cols if c not in pg_types[table]]:
            problems.append(f"{table} has no column {', '.join(missing)} in PostgreSQL")
        if extra := [c for c in pg_types[table] if c not in cols]:
            problems.append(f"{table} has no column {', '.join(extra)} in the SQLite file")
    problems += [f"table {t} is not in the SQLite file" for t in pg_types if t not in columns and t not in PG_ONLY]
    if problems:
        raise UserError("the SQLite file and PostgreSQL differ at the same schema version, so nothing was copied: "
                        + "; ".join(problems))


def _fits(pg_type: str, value: Any) -> bool:
    """Whether PostgreSQL's column type takes the value as it is (SQLite would have taken anything)."""
    kind = type(value)
    if pg_type in _INTEGER:
        return kind is int
    if pg_type in _FLOAT:
        return kind is int or kind is float
    if pg_type in _TEXT:  # a number in a text column (a Kodi item id beside Jellyfin's) is written as its digits
        return kind in (int, float) or (kind is str and "\x00" not in value)
    if pg_type == "bytea":
        return kind is bytes
    return True  # another type: PostgreSQL parses the text


def _key(table: str, columns: Sequence[str], row: Sequence[Any]) -> str:
    """How a report names one row: its id (or its first column, the key of every table without one)."""
    name = "id" if "id" in columns else columns[0]
    return f"{table} {name}={row[columns.index(name)]!r}"


def _copy_table(src: sqlite3.Connection, raw: psycopg.Connection[Any], path: Path, table: str,
                columns: list[str], pg_types: dict[str, str]) -> int:
    """COPY one table's rows, each value checked against its column first; how many were sent."""
    types = [pg_types[c] for c in columns]
    statement = sql.SQL("COPY {} ({}) FROM STDIN").format(
        sql.Identifier(table), sql.SQL(", ").join(map(sql.Identifier, columns)))
    sent = 0
    try:
        with raw.cursor() as cur, cur.copy(statement) as copy:
            for row in _rows(src, path, table, columns):
                for column, type_, value in zip(columns, types, row, strict=True):
                    if value is not None and not _fits(type_, value):
                        raise UserError(
                            f"cannot copy {_key(table, columns, row)}: column {column} holds {value!r:.80}"
                            f" ({type(value).__name__}), which PostgreSQL's {type_} column cannot take;"
                            f" correct that row in {path} (with sqlite3) and copy again (nothing was copied)")
                copy.write_row(row)
                sent += 1
    except (psycopg.errors.IntegrityError, psycopg.errors.DataError) as exc:
        where = f" ({exc.diag.context.strip()})" if exc.diag.context else ""
        raise UserError(f"PostgreSQL refused a row of table {table}: {one_line(exc)}{where}; the row breaks"
                        f" a constraint of the schema (`sqlite3 {path} 'PRAGMA foreign_key_check'` lists rows"
                        " whose parent is gone); nothing was copied") from None
    return sent


def _verify_counts(src: sqlite3.Connection, raw: psycopg.Connection[Any], counts: dict[str, int]) -> None:
    """Every table holds as many rows in PostgreSQL as in the file (else the transaction rolls back)."""
    wrong = []
    for table, sent in counts.items():
        have = src.execute(f"SELECT COUNT(*) FROM {_quote(table)}").fetchone()[0]
        got = raw.execute(sql.SQL("SELECT COUNT(*) FROM {}").format(sql.Identifier(table))).fetchone()[0]  # type: ignore[index]
        if not have == sent == got:
            wrong.append(f"{table}: {have} in SQLite, {sent} sent, {got} in PostgreSQL")
    if wrong:
        raise RuntimeError("the copy does not match the SQLite file, so it was rolled back: " + "; ".join(wrong))


def _adopt(conn: PgConn, agent_name: str | None, now: float) -> None:
    """Make the copy a shared store: interrupted jobs pending again; with a name, its libraries and jobs owned."""
    jobs.recover(conn, now)  # running: back to pending, worker and lease cleared (as at a restart)
    if not agent_name:
        return
    conn.execute("UPDATE libraries SET agent = ? WHERE agent IS NULL", (agent_name,))
    # jobs that may run again (pending, or failed/cancelled and retried) go to the agent that must run them
    rows = conn.execute("SELECT id, type, payload, dedupe_key, lock_key FROM job_queue"
                        " WHERE status != 'completed' AND agent IS NULL ORDER BY id").fetchall()
    specs = [{"type": r["type"], "payload": _payload(r["payload"]), "dedupe_key": r["dedupe_key"],
              "lock_key": r["lock_key"], "agent": agent_name} for r in rows]
    bound = owners.bind_owners(conn, specs) if specs else []
    changes = []
    for r, b in zip(rows, bound, strict=True):
        owned = (b.get("agent"), b.get("dedupe_key"), b.get("lock_key"))
        if owned != (None, r["dedupe_key"], r["lock_key"]):
            changes.append((*owned, r["id"]))
    if changes:
        conn.executemany("UPDATE job_queue SET agent = ?, dedupe_key = ?, lock_key = ? WHERE id = ?", changes)


def _payload(text: Any) -> dict[str, Any]:
    """A job's payload as a dict ({} when it is not one)."""
    try:
        value = json.loads(text) if isinstance(text, str) else None
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}
