"""Lookups the webhook job needs: items by file, ids or folder; stale published files; capture state."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path
from typing import Any


def stale_rows(conn: sqlite3.Connection, old: str, new: str) -> list[sqlite3.Row]:
    """published_files rows beside `old` named `<old stem>.x` or `<old stem>-x`, not `<new stem>...`."""
    folder, old_stem = os.path.dirname(old), Path(old).stem
    new_stem = Path(new).stem if os.path.dirname(new) == folder else None
    out = []
    for row in conn.execute(
        "SELECT path, sha256, entity_type, entity_id, kind FROM published_files WHERE path >= ? AND path < ?",
        (os.path.join(folder, old_stem), os.path.join(folder, old_stem) + "\uffff"),
    ):
        path = row["path"]
        name = os.path.basename(path)
        if os.path.dirname(path) != folder or not name.startswith(old_stem):
            continue
        if name[len(old_stem) : len(old_stem) + 1] not in (".", "-"):
            continue
        if new_stem and name.startswith(new_stem) and name[len(new_stem) : len(new_stem) + 1] in (".", "-"):
            continue
        out.append(row)
    return out


def forget_published(conn: sqlite3.Connection, paths: list[str]) -> None:
    """Drop published_files rows for files that no longer exist."""
    conn.executemany("DELETE FROM published_files WHERE path = ?", [(p,) for p in paths])


def items_by_files(conn: sqlite3.Connection, entity: str, files: list[str]) -> list[int]:
    """Ids of movies or episodes whose main file is one of `files`."""
    if not files:
        return []
    table = "movies" if entity == "movie" else "episodes"
    marks = ",".join("?" * len(files))
    rows = conn.execute(f"SELECT id FROM {table} WHERE file IN ({marks}) ORDER BY id", files)
    return [r["id"] for r in rows]


def items_by_ids(
    conn: sqlite3.Connection, entity: str, ids: dict[str, Any], library: str | None = None
) -> list[int]:
    """Ids of movies, series or episodes matching any of the sender's ids (optionally in one library)."""
    table = {"movie": "movies", "series": "series", "episode": "episodes"}[entity]
    columns = {"tmdb": "tmdb_id", "imdb": "imdb_id", "tvdb": "tvdb_id"}
    if entity == "episode":
        columns = {"tvdb": "tvdb_id"}
    terms = [(f"t.{col} = ?", ids[key]) for key, col in columns.items() if ids.get(key) is not None]
    if not terms:
        return []
    where = " OR ".join(t for t, _ in terms)
    params: list[Any] = [v for _, v in terms]
    sql = f"SELECT t.id FROM {table} t"
    if library is not None and entity != "episode":
        sql += " JOIN libraries l ON l.id = t.library_id WHERE l.name = ? AND"
        params.insert(0, library)
    else:
        sql += " WHERE"
    rows = conn.execute(f"{sql} ({where}) ORDER BY t.missing_since IS NOT NULL, t.id", params)
    return [r["id"] for r in rows]


def item_by_folder(conn: sqlite3.Connection, entity: str, folder: str) -> list[int]:
    """Ids of movies or series whose folder is `folder`."""
    table = "movies" if entity == "movie" else "series"
    return [r["id"] for r in conn.execute(f"SELECT id FROM {table} WHERE path = ? ORDER BY id", (folder,))]


def capture_state(
    conn: sqlite3.Connection, entity: str, item_id: int, since: float, now: float
) -> tuple[bool, int | None]:
    """(already captured, id of a capture job still to run) for one item within the capture window."""
    open_rows = conn.execute(
        "SELECT 1 FROM playback_state WHERE entity_type = ? AND entity_id = ? AND restored_at IS NULL"
        " AND expires_at > ?",
        (entity, item_id, now),
    ).fetchone()
    job = conn.execute(
        "SELECT id, status FROM job_queue WHERE type = 'playback_capture'"
        " AND status IN ('pending', 'running', 'completed')"
        " AND json_extract(payload, '$.entity') = ? AND json_extract(payload, '$.id') = ?"
        " AND created_at >= ? ORDER BY id DESC LIMIT 1",
        (entity, item_id, since),
    ).fetchone()
    if job is not None and job["status"] != "completed":
        return True, job["id"]
    return bool(open_rows) or job is not None, None
