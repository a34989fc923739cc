"""The read models the REST API serves: item lists with filters and paging, item and show details with
the files the agent wrote and their artwork, libraries with counts, players with their group."""

from __future__ import annotations

import json
import re
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from agent.clock import iso
from agent.store import media

SORTS: Final = {
    "title": "lower(COALESCE(x.sort_title, x.title))",  # ASCII case folded, as SQLite's NOCASE; same on PostgreSQL
    "year": "x.year",
    "added": "x.created_at",
    "updated": "x.updated_at",
}
PREFIX: Final = {"movie": "movies", "series": "series", "episode": "episodes"}
_SHA: Final = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True)
class ListQuery:
    """A validated list request: filters (None = any), sort key from SORTS, direction and page."""

    entity: str
    library: str | None = None
    status: str | None = None
    text: str | None = None
    sort: str = "title"
    descending: bool = False
    limit: int = 50
    offset: int = 0
    locked: bool = False  # only items with a locked field or artwork type
    artwork_error: bool = False  # only items whose artwork could not be fetched or written


def list_items(conn: sqlite3.Connection, q: ListQuery) -> tuple[list[dict[str, Any]], int]:
    """One page of movies or series in API shape (series with their episode count), and the total."""
    where: list[str] = []
    params: list[Any] = []
    if q.library is not None:
        where.append("l.name = ?")
        params.append(q.library)
    if q.status == "missing":
        where.append("x.missing_since IS NOT NULL")
    elif q.status is not None:
        where.append("x.status = ?")
        params.append(q.status)
    if q.locked:
        where.append("x.locked_fields IS NOT NULL AND x.locked_fields NOT IN ('', '[]')")
    if q.artwork_error:
        where.append("x.artwork_error IS NOT NULL AND x.artwork_error != ''")
    if q.text:
        pattern = "%" + q.text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        where.append("(x.title LIKE ? ESCAPE '\\' OR x.original_title LIKE ? ESCAPE '\\')")
        params.extend([pattern, pattern])
    direction = "DESC" if q.descending else "ASC"
    nulls = "NULLS LAST" if q.descending else "NULLS FIRST"  # SQLite's order, spelled out for PostgreSQL
    order = f" ORDER BY {SORTS[q.sort]} {direction} {nulls}, x.id {direction}"
    extra = (", (SELECT COUNT(*) FROM episodes e WHERE e.series_id = x.id AND e.missing_since IS NULL)"
             " AS episode_count") if q.entity == "series" else ""
    base = f" FROM {media.TABLES[q.entity]} x JOIN libraries l ON l.id = x.library_id"
    base += (" WHERE " + " AND ".join(where)) if where else ""
    total = conn.execute(f"SELECT COUNT(*){base}", params).fetchone()[0]
    rows = conn.execute(f"SELECT x.*, l.name AS library_name{extra}{base}{order} LIMIT ? OFFSET ?",
                        [*params, q.limit, q.offset]).fetchall()
    items = []
    for row in rows:
        out = media.to_api(media.item_from_row(q.entity, row), row["library_name"])
        if extra:
            out["episode_count"] = row["episode_count"]
        items.append(out)
    return items, total


def library_of(conn: sqlite3.Connection, item: media.Item) -> str | None:
    """The library name of an item (episodes through their series)."""
    if item.entity == "episode":
        row = conn.execute(
            "SELECT l.name FROM series s JOIN libraries l ON l.id = s.library_id WHERE s.id = ?",
            (item.row["series_id"],),
        ).fetchone()
    else:
        row = conn.execute("SELECT name FROM libraries WHERE id = ?", (item.row["library_id"],)).fetchone()
    return row[0] if row else None


def detail(conn: sqlite3.Connection, entity: str, item_id: int) -> dict[str, Any]:
    """An item in API shape with the files the agent wrote for it and its cached artwork."""
    item = media.load(conn, entity, item_id)
    out = media.to_api(item, library_of(conn, item))
    out["files"] = [
        {"path": r["path"], "kind": r["kind"], "sha256": r["sha256"], "written_at": iso(r["written_at"])}
        for r in conn.execute(
            "SELECT * FROM published_files WHERE entity_type = ? AND entity_id = ? ORDER BY path",
            (entity, item_id),
        )
    ]
    out["artwork"] = [
        {
            "art_type": r["art_type"],
            "position": r["position"],
            "sha256": r["sha256"],
            "source": r["source"],
            "library_path": r["library_path"],
            "url": f"/api/{PREFIX[entity]}/{item_id}/artwork/{r['art_type']}",
        }
        for r in conn.execute(
            "SELECT * FROM asset_references WHERE entity_type = ? AND entity_id = ? ORDER BY art_type, position",
            (entity, item_id),
        )
    ]
    return out


def series_detail(conn: sqlite3.Connection, series_id: int) -> dict[str, Any]:
    """A show in API shape with its seasons and episodes (ordered by season, episode, file)."""
    out = detail(conn, "series", series_id)
    out["seasons"] = [
        {
            "id": r["id"],
            "season": r["season"],
            "path": r["path"],
            "title": r["title"],
            "artwork_found": json.loads(r["artwork_found"] or "{}"),
        }
        for r in conn.execute("SELECT * FROM seasons WHERE series_id = ? ORDER BY season", (series_id,))
    ]
    rows = conn.execute(
        "SELECT * FROM episodes WHERE series_id = ? ORDER BY season IS NULL, season, episode, aired, file",
        (series_id,),
    ).fetchall()
    out["episodes"] = [media.to_api(media.item_from_row("episode", r), out["library"]) for r in rows]
    return out


def artwork_file(conn: sqlite3.Connection, data_dir: Path, entity: str, item_id: int, art_type: str
                 ) -> tuple[Path | None, str | None]:
    """(cached file, else None; local file from artwork_found, else None) for one artwork type."""
    item = media.load(conn, entity, item_id)
    row = conn.execute(
        "SELECT r.sha256, a.ext FROM asset_references r JOIN cache_assets a ON a.sha256 = r.sha256"
        " WHERE r.entity_type = ? AND r.entity_id = ? AND r.art_type = ? AND a.quarantined = 0"
        " ORDER BY r.position LIMIT 1",
        (entity, item_id, art_type),
    ).fetchone()
    cached = None
    if row is not None and _SHA.match(row["sha256"]) and re.fullmatch(r"[a-z0-9]{1,5}", row["ext"] or ""):
        sha = row["sha256"]
        cached = data_dir / "cache" / "assets" / sha[:2] / sha[2:4] / f"{sha}.{row['ext']}"
    local = item.artwork_found.get(art_type)
    return cached, local if isinstance(local, str) else None


def edit(conn: sqlite3.Connection, entity: str, item_id: int, changes: dict[str, Any], now: float
         ) -> dict[str, Any]:
    """Save user edits, lock them, refresh identification; returns the item in API shape."""
    item = media.load(conn, entity, item_id)
    status = media.identification({**item.fields, **changes}, item.row["status"])
    media.save(conn, item, changes, now, lock=True, status=status)
    return detail(conn, entity, item_id)


def lock(conn: sqlite3.Connection, entity: str, item_id: int, names: list[str], locked: bool, now: float
         ) -> dict[str, Any]:
    """Lock or unlock fields; returns the item in API shape."""
    media.set_locks(conn, entity, item_id, names, locked, now)
    return detail(conn, entity, item_id)


_HAS_NFO: Final = ("EXISTS (SELECT 1 FROM published_files p WHERE p.entity_type = '{entity}'"
                   " AND p.entity_id = {alias}.id AND p.kind = 'nfo')")


def libraries(conn: sqlite3.Connection) -> list[sqlite3.Row]:
    """Every library row with its present movie, series and episode counts, and how many of each have an
    NFO the agent wrote (`*_published`: the first run's progress is items published of items found)."""
    movie_nfo = _HAS_NFO.format(entity="movie", alias="m")
    series_nfo = _HAS_NFO.format(entity="series", alias="s")
    episode_nfo = _HAS_NFO.format(entity="episode", alias="e")
    return conn.execute(
        "SELECT l.*,"
        " (SELECT COUNT(*) FROM movies m WHERE m.library_id = l.id AND m.missing_since IS NULL) AS movies,"
        " (SELECT COUNT(*) FROM series s WHERE s.library_id = l.id AND s.missing_since IS NULL) AS series,"
        " (SELECT COUNT(*) FROM episodes e JOIN series s ON s.id = e.series_id"
        "   WHERE s.library_id = l.id AND e.missing_since IS NULL) AS episodes,"
        " (SELECT COUNT(*) FROM movies m WHERE m.library_id = l.id AND m.missing_since IS NULL"
        f"   AND {movie_nfo}) AS movies_published,"
        " (SELECT COUNT(*) FROM series s WHERE s.library_id = l.id AND s.missing_since IS NULL"
        f"   AND {series_nfo}) AS series_published,"
        " (SELECT COUNT(*) FROM episodes e JOIN series s ON s.id = e.series_id"
        f"   WHERE s.library_id = l.id AND e.missing_since IS NULL AND {episode_nfo}) AS episodes_published"
        " FROM libraries l ORDER BY l.name").fetchall()


def library_progress(row: sqlite3.Row | dict[str, Any]) -> dict[str, int]:
    """{found, published} of one `libraries()` row: items (movies; or shows and episodes) and those with an
    NFO the agent wrote."""
    kinds = ("movies", "series", "episodes")
    return {"found": sum(row[k] or 0 for k in kinds), "published": sum(row[f"{k}_published"] or 0 for k in kinds)}


def players(conn: sqlite3.Connection) -> list[dict[str, Any]]:
    """Every player row with its group name, in config order."""
    rows = conn.execute(
        "SELECT p.*, g.name AS group_name FROM media_players p"
        " LEFT JOIN media_player_groups g ON g.id = p.group_id ORDER BY p.position, p.name"
    ).fetchall()
    return [dict(r) for r in rows]


def rematch(conn: sqlite3.Connection, entity: str, item_id: int, tmdb_id: int, now: float) -> dict[str, Any]:
    """Point an item at another TMDB entry: `tmdb_id` is saved and locked (the user chose it); the other
    ids and uniqueids, unless locked, are cleared (they named the old match); the item is `identified`
    until enrichment fills it again. Returns the item in API shape."""
    item = media.load(conn, entity, item_id)
    changes: dict[str, Any] = {"tmdb_id": tmdb_id}
    for name in ("imdb_id", "tvdb_id", "uniqueids"):
        if name in item.fields and name not in item.locked:
            changes[name] = None
    item = media.save(conn, item, changes, now, status="identified")
    media.set_locks(conn, entity, item_id, ["tmdb_id"], True, now)
    return detail(conn, entity, item_id)
