"""SQL of libraries and their scans: library rows, folder signatures, the scan's view of its items, expiry."""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterable, Iterator
from typing import Any, Final

from agent.store.pg import is_postgres

_MISSING_TABLES: Final = frozenset({"movies", "series", "episodes"})
MOVIE_STATE: Final = (
    "id", "path", "file", "tmdb_id", "imdb_id", "file_size", "file_hash", "nfo_hash", "nfo_error",
    "missing_since", "artwork_found",
)  # fmt: skip
SERIES_STATE: Final = (
    "id", "path", "tmdb_id", "imdb_id", "tvdb_id", "nfo_hash", "nfo_error", "missing_since", "artwork_found",
)  # fmt: skip
EPISODE_STATE: Final = (
    "id", "series_id", "file", "season", "episode", "nfo_hash", "nfo_error", "file_size", "missing_since",
    "artwork_found",
)  # fmt: skip


def _dict_rows(conn: sqlite3.Connection, sql: str, params: tuple[Any, ...]) -> Iterator[dict[str, Any]]:
    """Rows of a query as plain dicts (cheaper than dict(sqlite3.Row) when loading a whole library)."""
    if is_postgres(conn):
        yield from (dict(row) for row in conn.execute(sql, params))
        return
    cur = conn.cursor()
    cur.row_factory = None
    cur.execute(sql, params)
    names = [d[0] for d in cur.description]
    for row in cur:
        yield dict(zip(names, row, strict=True))


def _table(table: str) -> str:
    """A media table name checked against the three the scan marks and deletes."""
    if table not in _MISSING_TABLES:
        raise ValueError(f"not a media table: {table!r}")
    return table


# ----------------------------------------------------------------- libraries


def library_id(conn: sqlite3.Connection, name: str, kind: str, path: str, now: float) -> int:
    """The library's row id (created when the config sync has not run, e.g. a fresh CLI database)."""
    row = conn.execute("SELECT id FROM libraries WHERE name = ?", (name,)).fetchone()
    if row is not None:
        return int(row[0])
    cur = conn.execute(
        "INSERT INTO libraries (name, kind, path, created_at) VALUES (?, ?, ?, ?)", (name, kind, path, now)
    )
    return int(cur.lastrowid or 0)


def items_held(conn: sqlite3.Connection, library_id: int) -> int:
    """How many movies and shows (present or already missing) the store holds for a library."""
    row = conn.execute(
        "SELECT (SELECT COUNT(*) FROM movies WHERE library_id = ?)"
        " + (SELECT COUNT(*) FROM series WHERE library_id = ?)",
        (library_id, library_id),
    ).fetchone()
    return int(row[0])


def finish_scan(conn: sqlite3.Connection, library_id: int, now: float, job_id: int | None) -> None:
    """Record when the library was last scanned and by which job."""
    conn.execute(
        "UPDATE libraries SET last_scan_at = ?, last_scan_job_id = COALESCE(?, last_scan_job_id) WHERE id = ?",
        (now, job_id, library_id),
    )


# ----------------------------------------------------------------- signatures and own files


def signatures(conn: sqlite3.Connection, library_id: int) -> dict[str, str]:
    """Folder (or file) key -> signature stored by the library's last scans."""
    return dict(
        conn.execute("SELECT path, signature FROM folder_signatures WHERE library_id = ?", (library_id,))
    )


def save_signatures(conn: sqlite3.Connection, rows: list[tuple[str, int, str, float]]) -> None:
    """Store (path, library_id, signature, scanned_at) rows, replacing a path's earlier signature."""
    conn.executemany(
        "INSERT INTO folder_signatures (path, library_id, signature, scanned_at) VALUES (?, ?, ?, ?)"
        " ON CONFLICT(path) DO UPDATE SET library_id = excluded.library_id,"
        " signature = excluded.signature, scanned_at = excluded.scanned_at",
        rows,
    )


def forget_signatures(conn: sqlite3.Connection, paths: Iterable[str]) -> None:
    """Drop the signatures of these folders."""
    conn.executemany("DELETE FROM folder_signatures WHERE path = ?", [(p,) for p in paths])


def published_under(conn: sqlite3.Connection, root: str) -> dict[str, str]:
    """Path -> sha256 of every file the agent published under a folder."""
    top = root.rstrip(os.sep) + os.sep
    return dict(
        conn.execute(
            "SELECT path, sha256 FROM published_files WHERE path >= ? AND path < ?",
            (top, top[:-1] + chr(ord(os.sep) + 1)),
        )
    )


# ----------------------------------------------------------------- the scan's view of its items


def movie_places(conn: sqlite3.Connection, library_id: int) -> Iterator[tuple[int, str, str, float | None]]:
    """(id, folder, file, missing_since) of every movie of a library."""
    return iter(
        conn.execute("SELECT id, path, file, missing_since FROM movies WHERE library_id = ?", (library_id,))
    )


def movie_states(conn: sqlite3.Connection, library_id: int) -> list[dict[str, Any]]:
    """The scan state (MOVIE_STATE columns) of every movie of a library."""
    sql = f"SELECT {', '.join(MOVIE_STATE)} FROM movies WHERE library_id = ?"
    return list(_dict_rows(conn, sql, (library_id,)))


def series_states(conn: sqlite3.Connection, library_id: int) -> Iterator[dict[str, Any]]:
    """The scan state (SERIES_STATE columns) of every show of a library."""
    return _dict_rows(conn, f"SELECT {', '.join(SERIES_STATE)} FROM series WHERE library_id = ?", (library_id,))


def present_episode_counts(conn: sqlite3.Connection, library_id: int) -> dict[int, int]:
    """Series id -> how many of its episodes are present (not missing)."""
    return dict(
        conn.execute(
            "SELECT e.series_id, COUNT(*) FROM episodes e JOIN series s ON s.id = e.series_id"
            " WHERE s.library_id = ? AND e.missing_since IS NULL GROUP BY e.series_id",
            (library_id,),
        )
    )


def missing_episodes(conn: sqlite3.Connection, library_id: int) -> Iterator[tuple[int, int, float]]:
    """(episode id, series id, missing_since) of the library's missing episodes, by id."""
    return iter(
        conn.execute(
            "SELECT e.id, e.series_id, e.missing_since FROM episodes e JOIN series s ON s.id = e.series_id"
            " WHERE s.library_id = ? AND e.missing_since IS NOT NULL ORDER BY e.id",
            (library_id,),
        )
    )


def episode_nfo_hashes(conn: sqlite3.Connection, library_id: int) -> dict[str, str]:
    """Episode file -> sha256 of the NFO last imported for it."""
    return dict(
        conn.execute(
            "SELECT e.file, e.nfo_hash FROM episodes e JOIN series s ON s.id = e.series_id"
            " WHERE s.library_id = ? AND e.nfo_hash IS NOT NULL",
            (library_id,),
        )
    )


def episode_states(conn: sqlite3.Connection, series_id: int) -> Iterator[dict[str, Any]]:
    """The scan state (EPISODE_STATE columns) of one show's episodes."""
    return _dict_rows(conn, f"SELECT {', '.join(EPISODE_STATE)} FROM episodes WHERE series_id = ?", (series_id,))


def episode_ids(conn: sqlite3.Connection, series_id: int) -> list[int]:
    """Ids of one show's episodes."""
    return [r[0] for r in conn.execute("SELECT id FROM episodes WHERE series_id = ?", (series_id,))]


def upsert_season(
    conn: sqlite3.Connection, series_id: int, season: int, path: str | None, artwork_found: str
) -> int:
    """Insert or update a show's season row; returns its id."""
    row = conn.execute(
        "INSERT INTO seasons (series_id, season, path, artwork_found) VALUES (?, ?, ?, ?)"
        " ON CONFLICT(series_id, season) DO UPDATE SET path = excluded.path,"
        " artwork_found = excluded.artwork_found RETURNING id",
        (series_id, season, path, artwork_found),
    ).fetchone()
    return int(row[0])


# ----------------------------------------------------------------- missing and expired items


def set_missing_since(conn: sqlite3.Connection, table: str, item_id: int, now: float) -> None:
    """Mark a movie, series or episode row missing from `now` (the scan's first miss)."""
    conn.execute(f"UPDATE {_table(table)} SET missing_since = ? WHERE id = ?", (now, item_id))


def expire(conn: sqlite3.Connection, table: str, entity: str, item_id: int, now: float) -> None:
    """Delete a row missing too long, with its artwork references and published-file records.

    Cached artwork no longer referenced by anything starts its garbage-collection grace at `now`.
    """
    shas = [
        r[0]
        for r in conn.execute(
            "SELECT sha256 FROM asset_references WHERE entity_type = ? AND entity_id = ?", (entity, item_id)
        )
    ]
    conn.execute("DELETE FROM asset_references WHERE entity_type = ? AND entity_id = ?", (entity, item_id))
    conn.execute("DELETE FROM published_files WHERE entity_type = ? AND entity_id = ?", (entity, item_id))
    conn.executemany(
        "UPDATE cache_assets SET unreferenced_since = ? WHERE sha256 = ?"
        " AND unreferenced_since IS NULL"
        " AND NOT EXISTS (SELECT 1 FROM asset_references r WHERE r.sha256 = cache_assets.sha256)",
        [(now, sha) for sha in shas],
    )
    conn.execute(f"DELETE FROM {_table(table)} WHERE id = ?", (item_id,))
