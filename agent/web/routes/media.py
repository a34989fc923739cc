"""Movie routes, and the item routes movies, series and episodes share (detail, artwork, edit, lock, refresh)."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path
from typing import Any, Final

from aiohttp import web

from agent.clock import iso
from agent.enrich import EnrichRequest, enqueue_enrich
from agent.errors import NotFound, UserError
from agent.paths import resolve_inside
from agent.publish.request import PublishRequest, enqueue_publish
from agent.queue.model import Priority
from agent.service import Agent
from agent.store import media
from agent.web.params import json_body, path_id, query_int

STATUSES: Final = ("unidentified", "identified", "enriched", "missing")
SORTS: Final = {
    "title": "COALESCE(x.sort_title, x.title) COLLATE NOCASE",
    "year": "x.year",
    "added": "x.created_at",
    "updated": "x.updated_at",
}
_SHA: Final = re.compile(r"^[0-9a-f]{64}$")
_ART_TYPE: Final = re.compile(r"^[a-z][a-z0-9-]{0,40}$")
PREFIX: Final = {"movie": "movies", "series": "series", "episode": "episodes"}


def list_filters(agent: Agent, request: web.Request) -> tuple[str, list[Any]]:
    """WHERE clause and params for ?library=&status=&q= on a movies or series list (table alias x)."""
    where: list[str] = []
    params: list[Any] = []
    if name := request.query.get("library"):
        lib = agent.cfg.library(name)
        if lib is None:
            raise UserError(
                f"unknown library {name!r}", detail={"libraries": [lb.name for lb in agent.cfg.libraries]}
            )
        where.append("l.name = ?")
        params.append(lib.name)
    if status := request.query.get("status"):
        if status not in STATUSES:
            raise UserError(f"unknown status {status!r} (use {', '.join(STATUSES)})")
        where.append("x.missing_since IS NOT NULL" if status == "missing" else "x.status = ?")
        params.extend([] if status == "missing" else [status])
    if q := request.query.get("q", "").strip():
        pattern = "%" + q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        where.append("(x.title LIKE ? ESCAPE '\\' OR x.original_title LIKE ? ESCAPE '\\')")
        params.extend([pattern, pattern])
    return (" WHERE " + " AND ".join(where)) if where else "", params


def order_by(request: web.Request) -> str:
    """ORDER BY for ?sort=title|year|added|updated (ascending; a leading '-' sorts descending)."""
    raw = request.query.get("sort") or "title"
    key = raw.removeprefix("-")
    if key not in SORTS:
        raise UserError(f"unknown sort {raw!r} (use {', '.join(SORTS)}, '-' in front for descending)")
    direction = "DESC" if raw.startswith("-") else "ASC"
    return f" ORDER BY {SORTS[key]} {direction}, x.id {direction}"


async def list_items(agent: Agent, request: web.Request, entity: str, extra_select: str = "") -> web.Response:
    """`{"items": [...], "total": n}` for movies or series."""
    table = media.TABLES[entity]
    where, params = list_filters(agent, request)
    order = order_by(request)
    limit = query_int(request, "limit", 50, 1, 500)
    offset = query_int(request, "offset", 0, 0, 10**9)
    base = f" FROM {table} x JOIN libraries l ON l.id = x.library_id{where}"

    def run(conn: sqlite3.Connection) -> tuple[list[dict[str, Any]], int]:
        total = conn.execute(f"SELECT COUNT(*){base}", params).fetchone()[0]
        rows = conn.execute(
            f"SELECT x.*, l.name AS library_name{extra_select}{base}{order} LIMIT ? OFFSET ?",
            [*params, limit, offset],
        ).fetchall()
        items = []
        for row in rows:
            out = media.to_api(media.item_from_row(entity, row), row["library_name"])
            if extra_select:
                out["episode_count"] = row["episode_count"]
            items.append(out)
        return items, total

    items, total = await agent.db.read(run)
    return web.json_response({"items": items, "total": total})


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
            "SELECT * FROM asset_references WHERE entity_type = ? AND entity_id = ?"
            " ORDER BY art_type, position",
            (entity, item_id),
        )
    ]
    return out


def artwork_file(
    conn: sqlite3.Connection, data_dir: Path, entity: str, item_id: int, art_type: str
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


async def serve_artwork(agent: Agent, request: web.Request, entity: str) -> web.StreamResponse:
    """The cached image for an artwork type, else the file found beside the media, else a 404."""
    item_id = path_id(request)
    art_type = request.match_info["art_type"]
    if not _ART_TYPE.match(art_type):
        raise UserError(f"bad artwork type {art_type!r}")
    cached, local = await agent.db.read(artwork_file, agent.cfg.data_dir, entity, item_id, art_type)
    headers = {"Cache-Control": "private, max-age=300"}
    if cached is not None and cached.is_file():
        return web.FileResponse(cached, headers=headers)
    if local:
        try:
            path = resolve_inside(local, [lib.path for lib in agent.cfg.libraries])
        except UserError:
            path = None
        if path is not None and path.is_file():
            return web.FileResponse(path, headers=headers)
    raise NotFound(f"{entity} {item_id} has no {art_type} artwork")


def _patch(
    conn: sqlite3.Connection, entity: str, item_id: int, changes: dict[str, Any], now: float
) -> dict[str, Any]:
    """Save user edits, lock them, refresh identification; returns the item in API shape."""
    item = media.load(conn, entity, item_id)
    status = media.identification({**item.fields, **changes}, item.row["status"])
    media.save(conn, item, changes, now, lock=True, status=status)
    return detail(conn, entity, item_id)


def _lock(
    conn: sqlite3.Connection, entity: str, item_id: int, names: list[str], locked: bool, now: float
) -> dict[str, Any]:
    """Lock or unlock fields; returns the item in API shape."""
    media.set_locks(conn, entity, item_id, names, locked, now)
    return detail(conn, entity, item_id)


def item_routes(app: web.Application, agent: Agent, entity: str, with_get: bool = True) -> None:
    """GET one (unless the caller has its own), its artwork, PATCH metadata, lock, enrich and refresh."""
    prefix = f"/api/{PREFIX[entity]}"

    async def get_one(request: web.Request) -> web.Response:
        return web.json_response(await agent.db.read(detail, entity, path_id(request)))

    async def artwork(request: web.Request) -> web.StreamResponse:
        return await serve_artwork(agent, request, entity)

    async def patch(request: web.Request) -> web.Response:
        item_id = path_id(request)
        body = await json_body(request)
        if not body:
            raise UserError(
                "body names no fields; send {field: value}",
                detail={"fields": sorted(media.editable_fields(entity))},
            )
        changes = {name: media.coerce(entity, name, value) for name, value in body.items()}
        out = await agent.db.write(_patch, entity, item_id, changes, agent.clock.now())
        agent.emit(f"{entity}:updated", {"id": item_id})
        await enqueue_publish(agent.queue, PublishRequest(entity, item_id, Priority.HIGH))
        return web.json_response(out)

    async def lock(request: web.Request) -> web.Response:
        item_id = path_id(request)
        body = await json_body(request)
        names, locked = body.get("fields"), body.get("locked", True)
        if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
            raise UserError('"fields" must be a non-empty list of field names (artwork as "art:poster")')
        if not isinstance(locked, bool):
            raise UserError('"locked" must be true or false')
        out = await agent.db.write(_lock, entity, item_id, names, locked, agent.clock.now())
        agent.emit(f"{entity}:updated", {"id": item_id})
        return web.json_response(out)

    async def enrich(request: web.Request) -> web.Response:
        item_id = path_id(request)
        await agent.db.read(media.load, entity, item_id)
        job = await enqueue_enrich(agent.queue, EnrichRequest(entity, item_id, Priority.HIGH))
        return web.json_response({"job_id": job.id}, status=202)

    async def refresh(request: web.Request) -> web.Response:
        """Drop the values held from another tool's NFO, then re-enrich (providers update them) and republish."""
        item_id = path_id(request)
        item = await agent.db.read(media.load, entity, item_id)
        await agent.db.write(media.set_held, entity, item_id, [], agent.clock.now())
        agent.emit(f"{entity}:updated", {"id": item_id})
        job = await enqueue_enrich(agent.queue, EnrichRequest(entity, item_id, Priority.HIGH, refresh=True))
        return web.json_response({"job_id": job.id, "cleared": sorted(item.held)}, status=202)

    if with_get:
        app.router.add_get(f"{prefix}/{{id}}", get_one)
    app.router.add_get(f"{prefix}/{{id}}/artwork/{{art_type}}", artwork)
    app.router.add_patch(f"{prefix}/{{id}}/metadata", patch)
    app.router.add_post(f"{prefix}/{{id}}/lock", lock)
    app.router.add_post(f"{prefix}/{{id}}/enrich", enrich)
    app.router.add_post(f"{prefix}/{{id}}/refresh", refresh)


def setup(app: web.Application, agent: Agent) -> None:
    """Register the /api/movies routes."""

    async def list_movies(request: web.Request) -> web.Response:
        return await list_items(agent, request, "movie")

    app.router.add_get("/api/movies", list_movies)
    item_routes(app, agent, "movie")
