"""SQL of the artwork cache and what is published from it: cache_assets, asset_references (with the
unreferenced-since clock) and published_files (what the agent wrote beside media)."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path
from typing import Any

from agent.errors import NotFound
from agent.imageinfo import AssetError

REFRESH_SQL = """
UPDATE cache_assets SET unreferenced_since = CASE
    WHEN EXISTS (SELECT 1 FROM asset_references r WHERE r.sha256 = cache_assets.sha256) THEN NULL
    ELSE COALESCE(unreferenced_since, ?) END
WHERE sha256 = ?"""

UPSERT_SQL = """
INSERT INTO cache_assets (sha256, ext, size, mime, width, height, source_url, created_at,
                          unreferenced_since, quarantined)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 0)
ON CONFLICT (sha256) DO UPDATE SET
    ext = excluded.ext, size = excluded.size, mime = excluded.mime,
    width = excluded.width, height = excluded.height, quarantined = 0,
    source_url = COALESCE(cache_assets.source_url, excluded.source_url),
    unreferenced_since = CASE
        WHEN EXISTS (SELECT 1 FROM asset_references r WHERE r.sha256 = cache_assets.sha256) THEN NULL
        ELSE excluded.unreferenced_since END
RETURNING *"""


def asset(conn: sqlite3.Connection, sha256: str) -> sqlite3.Row | None:
    """The cache_assets row of one hash, or None."""
    return conn.execute("SELECT * FROM cache_assets WHERE sha256 = ?", (sha256,)).fetchone()


def upsert_asset(conn: sqlite3.Connection, sha256: str, ext: str, size: int, mime: str, width: int | None,
                 height: int | None, source_url: str | None, now: float) -> sqlite3.Row:
    """Insert or refresh one asset's row (no longer quarantined); returns the stored row."""
    return conn.execute(UPSERT_SQL, (sha256, ext, size, mime, width, height, source_url, now, now)).fetchone()


def asset_files(conn: sqlite3.Connection, include_quarantined: bool = True) -> list[sqlite3.Row]:
    """(sha256, ext) of every asset, or of every asset not quarantined."""
    sql = "SELECT sha256, ext FROM cache_assets"
    return conn.execute(sql if include_quarantined else sql + " WHERE quarantined = 0").fetchall()


def quarantine(conn: sqlite3.Connection, sha256: str) -> None:
    """Mark an asset corrupt or missing: it is neither referenced anew nor published until stored again."""
    conn.execute("UPDATE cache_assets SET quarantined = 1 WHERE sha256 = ?", (sha256,))


def refresh(conn: sqlite3.Connection, shas: set[str], now: float) -> None:
    """Set or clear unreferenced_since for each asset, in the caller's transaction."""
    for sha in shas:
        conn.execute(REFRESH_SQL, (now, sha))


def add_references(conn: sqlite3.Connection, rows: list[tuple[Any, ...]]) -> None:
    """add_reference for each row of its arguments, in one transaction (all or none)."""
    for args in rows:
        add_reference(conn, args)


def add_reference(conn: sqlite3.Connection, args: tuple) -> None:
    """Upsert one reference and fix unreferenced_since on the old and new assets."""
    sha, entity_type, entity_id, art_type, position, source, now = args
    asset = conn.execute("SELECT quarantined FROM cache_assets WHERE sha256 = ?", (sha,)).fetchone()
    if asset is None:
        raise NotFound(f"asset {sha} is not in the cache")
    if asset["quarantined"]:
        raise AssetError(f"asset {sha} is quarantined (corrupt or missing); fetch it again first")
    old = conn.execute(
        "SELECT sha256 FROM asset_references WHERE entity_type = ? AND entity_id = ? AND art_type = ?"
        " AND position = ?", (entity_type, entity_id, art_type, position)).fetchone()
    conn.execute(
        """INSERT INTO asset_references
               (sha256, entity_type, entity_id, art_type, position, source, created_at)
           VALUES (?, ?, ?, ?, ?, ?, ?)
           ON CONFLICT (entity_type, entity_id, art_type, position) DO UPDATE SET
               library_path = CASE WHEN asset_references.sha256 = excluded.sha256
                                   THEN asset_references.library_path END,
               sha256 = excluded.sha256, source = excluded.source, created_at = excluded.created_at""",
        (sha, entity_type, entity_id, art_type, position, source, now))
    refresh(conn, {sha} | ({old["sha256"]} if old else set()), now)


def remove_references(conn: sqlite3.Connection, args: tuple) -> int:
    """Delete an entity's references (optionally one type) and mark assets left unreferenced."""
    entity_type, entity_id, art_type, now = args
    sql = "DELETE FROM asset_references WHERE entity_type = ? AND entity_id = ?"
    params: tuple = (entity_type, entity_id)
    if art_type is not None:
        sql += " AND art_type = ?"
        params += (art_type,)
    rows = conn.execute(sql + " RETURNING sha256", params).fetchall()
    refresh(conn, {r["sha256"] for r in rows}, now)
    return len(rows)


def delete_expired(conn: sqlite3.Connection, cutoff: float) -> list[sqlite3.Row]:
    """Delete rows unreferenced since before cutoff (re-checking that nothing references them)."""
    return conn.execute(
        """DELETE FROM cache_assets WHERE unreferenced_since IS NOT NULL AND unreferenced_since <= ?
           AND NOT EXISTS (SELECT 1 FROM asset_references r WHERE r.sha256 = cache_assets.sha256)
           RETURNING sha256, ext, quarantined""", (cutoff,)).fetchall()


def set_library_path(conn: sqlite3.Connection, entity_type: str, entity_id: int, art_type: str, position: int,
                     path: str | None) -> None:
    """Record the file written beside media for one reference."""
    conn.execute("UPDATE asset_references SET library_path = ? WHERE entity_type = ? AND entity_id = ?"
                 " AND art_type = ? AND position = ?", (path, entity_type, entity_id, art_type, position))


def references(conn: sqlite3.Connection, entity_type: str, entity_id: int) -> list[sqlite3.Row]:
    """Every reference of one entity with its asset's ext and quarantine flag, by art type and position."""
    return conn.execute(
        """SELECT r.*, a.ext, a.quarantined FROM asset_references r
           JOIN cache_assets a ON a.sha256 = r.sha256
           WHERE r.entity_type = ? AND r.entity_id = ? ORDER BY r.art_type, r.position""",
        (entity_type, entity_id)).fetchall()


def publishable_art(conn: sqlite3.Connection, entity_type: str, entity_id: int) -> list[sqlite3.Row]:
    """An entity's references to intact assets: art_type, position, sha256, ext, source_url."""
    return conn.execute(
        "SELECT r.art_type, r.position, r.sha256, a.ext, a.source_url FROM asset_references r"
        " JOIN cache_assets a ON a.sha256 = r.sha256 WHERE r.entity_type = ? AND r.entity_id = ?"
        " AND a.quarantined = 0 ORDER BY r.art_type, r.position", (entity_type, entity_id)).fetchall()


# ------------------------------------------------------------ published_files


def published_hash(conn: sqlite3.Connection, path: str) -> str | None:
    """The sha256 of what the agent last wrote at `path`, or None if it never wrote there."""
    row = conn.execute("SELECT sha256 FROM published_files WHERE path = ?", (path,)).fetchone()
    return row["sha256"] if row else None


def published_owners(conn: sqlite3.Connection, paths: list[str]) -> dict[str, tuple[str, int]]:
    """path -> (entity_type, entity_id) it was published for, for those of `paths` the agent published."""
    out: dict[str, tuple[str, int]] = {}
    for start in range(0, len(paths), 500):
        chunk = paths[start:start + 500]
        for row in conn.execute("SELECT path, entity_type, entity_id FROM published_files"
                                f" WHERE path IN ({','.join('?' * len(chunk))})", chunk):
            out[row["path"]] = (row["entity_type"], row["entity_id"])
    return out


def published_of(conn: sqlite3.Connection, entity_type: str, entity_id: int) -> list[sqlite3.Row]:
    """(path, sha256) of every file published for one entity, by path."""
    return conn.execute(
        "SELECT path, sha256 FROM published_files WHERE entity_type = ? AND entity_id = ? ORDER BY path",
        (entity_type, entity_id)).fetchall()


def published_paths(conn: sqlite3.Connection) -> list[str]:
    """Every path the agent has published."""
    return [r["path"] for r in conn.execute("SELECT path FROM published_files")]


def record_published_many(conn: sqlite3.Connection, records: list[tuple[Any, ...]]) -> None:
    """record_published for each tuple of its arguments (after `conn`), in one transaction."""
    for record in records:
        record_published(conn, *record)


def record_published(conn: sqlite3.Connection, path: str, entity_type: str, entity_id: int, kind: str,
                     digest: str, now: float, own: bool, art_type: str | None = None, position: int = 0) -> None:
    """Remember a written file (when `own`) and point its asset reference at it (an asset: `art_type` set)."""
    if own:
        conn.execute(
            """INSERT INTO published_files (path, entity_type, entity_id, kind, sha256, written_at)
               VALUES (?, ?, ?, ?, ?, ?)
               ON CONFLICT (path) DO UPDATE SET entity_type = excluded.entity_type,
                   entity_id = excluded.entity_id, kind = excluded.kind, sha256 = excluded.sha256,
                   written_at = CASE WHEN published_files.sha256 = excluded.sha256
                                     THEN published_files.written_at ELSE excluded.written_at END""",
            (path, entity_type, entity_id, kind, digest, now))
    if art_type is not None:
        conn.execute(
            "UPDATE asset_references SET library_path = ? WHERE entity_type = ? AND entity_id = ?"
            " AND art_type = ? AND position = ? AND sha256 = ?",
            (path, entity_type, entity_id, art_type, position, digest))


def forget_published(conn: sqlite3.Connection, path: str) -> None:
    """Drop the record of a published file and any reference pointing at it."""
    conn.execute("DELETE FROM published_files WHERE path = ?", (path,))
    conn.execute("UPDATE asset_references SET library_path = NULL WHERE library_path = ?", (path,))


def stale_published(conn: sqlite3.Connection, old: str, new: str) -> list[sqlite3.Row]:
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


def forget_published_files(conn: sqlite3.Connection, paths: list[str]) -> None:
    """forget_published for each of `paths` (files that no longer exist), in one transaction."""
    for path in paths:
        forget_published(conn, path)
