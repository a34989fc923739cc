"""SQL of the artwork cache: assets, references and the unreferenced-since clock (writer thread)."""

from __future__ import annotations

import sqlite3

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


def refresh(conn: sqlite3.Connection, shas: set[str], now: float) -> None:
    """Set or clear unreferenced_since for each asset, in the caller's transaction."""
    for sha in shas:
        conn.execute(REFRESH_SQL, (now, sha))


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
