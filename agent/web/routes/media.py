"""Movie routes, and the item routes movies, series and episodes share (detail, artwork, edit, lock, refresh)."""

from __future__ import annotations

import asyncio
import re
from typing import Final

from aiohttp import web

from agent.enrich import EnrichRequest, enqueue_enrich
from agent.errors import AgentError, NotFound, UserError
from agent.paths import resolve_inside
from agent.publish.request import PublishRequest, enqueue_publish
from agent.queue.model import Priority
from agent.services import Services
from agent.store import api, media
from agent.userfiles import read_user_file
from agent.web.keys import services_of
from agent.web.params import json_body, path_id, query_int

STATUSES: Final = ("unidentified", "identified", "enriched", "missing")
_ART_TYPE: Final = re.compile(r"^[a-z][a-z0-9-]{0,40}$")
NFO_CAP: Final = 1024 * 1024  # the NFO shown on the item page is read up to this size


def query_flag(request: web.Request, name: str) -> bool:
    """A yes/no query parameter: true/1/yes or false/0/no (absent: false)."""
    raw = request.query.get(name, "").strip().lower()
    if raw in ("", "0", "false", "no"):
        return False
    if raw in ("1", "true", "yes"):
        return True
    raise UserError(f"{name}={raw!r} is not true or false")


def list_query(services: Services, request: web.Request, entity: str) -> api.ListQuery:
    """The validated ?library=&status=&q=&sort=&limit=&offset= of a movies or series list."""
    library = None
    if name := request.query.get("library"):
        lib = services.cfg.library(name)
        if lib is None:
            raise UserError(
                f"unknown library {name!r}", detail={"libraries": [lb.name for lb in services.cfg.libraries]}
            )
        library = lib.name
    status = request.query.get("status") or None
    if status is not None and status not in STATUSES:
        raise UserError(f"unknown status {status!r} (use {', '.join(STATUSES)})")
    raw = request.query.get("sort") or "title"
    if raw.removeprefix("-") not in api.SORTS:
        raise UserError(f"unknown sort {raw!r} (use {', '.join(api.SORTS)}, '-' in front for descending)")
    return api.ListQuery(
        entity=entity, library=library, status=status, text=request.query.get("q", "").strip() or None,
        locked=query_flag(request, "locked"), artwork_error=query_flag(request, "artwork_error"),
        sort=raw.removeprefix("-"), descending=raw.startswith("-"),
        limit=query_int(request, "limit", 50, 1, 500), offset=query_int(request, "offset", 0, 0, 10**9))


async def list_items(services: Services, request: web.Request, entity: str) -> web.Response:
    """`{"items": [...], "total": n}` for movies or series."""
    items, total = await services.db.read(api.list_items, list_query(services, request, entity))
    return web.json_response({"items": items, "total": total})


async def serve_artwork(services: Services, request: web.Request, entity: str) -> web.StreamResponse:
    """The cached image for an artwork type, else the file found beside the media, else a 404."""
    item_id = path_id(request)
    art_type = request.match_info["art_type"]
    if not _ART_TYPE.match(art_type):
        raise UserError(f"bad artwork type {art_type!r}")
    cached, local = await services.db.read(api.artwork_file, services.cfg.data_dir, entity, item_id, art_type)
    headers = {"Cache-Control": "private, max-age=300"}
    if cached is not None and cached.is_file():
        return web.FileResponse(cached, headers=headers)
    if local:
        try:
            path = resolve_inside(local, [lib.path for lib in services.cfg.libraries])
        except UserError:
            path = None
        if path is not None and path.is_file():
            return web.FileResponse(path, headers=headers)
    raise NotFound(f"{entity} {item_id} has no {art_type} artwork")


async def read_nfo(services: Services, entity: str, item_id: int) -> dict[str, str]:
    """The item's NFO as written on disk: {"path", "text"} (read off the loop, bounded, inside the libraries)."""
    item = await services.db.read(media.load, entity, item_id)
    path = item.row.get("nfo_path")
    if not path:
        raise NotFound(f"{entity} {item_id} has no NFO yet (it is written when the item is published)")
    roots = [lib.path for lib in services.cfg.libraries]
    try:
        data = await asyncio.to_thread(read_user_file, path, roots, NFO_CAP)
    except FileNotFoundError:
        raise NotFound(f"{path} is not on disk any more", detail={"path": path}) from None
    except AgentError as exc:
        raise UserError(exc.message, detail={"path": path}) from None
    except OSError as exc:
        raise UserError(f"cannot read {path}: {exc.strerror or exc}", detail={"path": path}) from None
    return {"path": path, "text": data.decode("utf-8", errors="replace")}


def item_routes(app: web.Application, entity: str, with_get: bool = True) -> None:
    """GET one (unless the caller has its own), its artwork, PATCH metadata, lock, enrich and refresh."""
    prefix = f"/api/{api.PREFIX[entity]}"

    async def get_one(request: web.Request) -> web.Response:
        services = services_of(request)
        return web.json_response(await services.db.read(api.detail, entity, path_id(request)))

    async def artwork(request: web.Request) -> web.StreamResponse:
        services = services_of(request)
        return await serve_artwork(services, request, entity)

    async def patch(request: web.Request) -> web.Response:
        services = services_of(request)
        item_id = path_id(request)
        body = await json_body(request)
        if not body:
            raise UserError(
                "body names no fields; send {field: value}",
                detail={"fields": sorted(media.editable_fields(entity))},
            )
        changes = {name: media.coerce(entity, name, value) for name, value in body.items()}
        out = await services.db.write(api.edit, entity, item_id, changes, services.clock.now())
        services.emit(f"{entity}:updated", {"id": item_id})
        await enqueue_publish(services.queue, PublishRequest(entity, item_id, Priority.HIGH))
        return web.json_response(out)

    async def lock(request: web.Request) -> web.Response:
        services = services_of(request)
        item_id = path_id(request)
        body = await json_body(request)
        names, locked = body.get("fields"), body.get("locked", True)
        if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
            raise UserError('"fields" must be a non-empty list of field names (artwork as "art:poster")')
        if not isinstance(locked, bool):
            raise UserError('"locked" must be true or false')
        out = await services.db.write(api.lock, entity, item_id, names, locked, services.clock.now())
        services.emit(f"{entity}:updated", {"id": item_id})
        return web.json_response(out)

    async def enrich(request: web.Request) -> web.Response:
        services = services_of(request)
        item_id = path_id(request)
        await services.db.read(media.load, entity, item_id)
        job = await enqueue_enrich(services.queue, EnrichRequest(entity, item_id, Priority.HIGH))
        return web.json_response({"job_id": job.id}, status=202)

    async def refresh(request: web.Request) -> web.Response:
        """Release values held since adopting another tool's NFO; re-enrich (providers update them), republish."""
        services = services_of(request)
        item_id = path_id(request)
        item = await services.db.read(media.load, entity, item_id)
        await services.db.write(media.set_held, entity, item_id, [], services.clock.now())
        services.emit(f"{entity}:updated", {"id": item_id})
        job = await enqueue_enrich(services.queue, EnrichRequest(entity, item_id, Priority.HIGH, refresh=True))
        return web.json_response({"job_id": job.id, "cleared": sorted(item.held)}, status=202)

    async def nfo(request: web.Request) -> web.Response:
        """The NFO as written beside the media."""
        return web.json_response(await read_nfo(services_of(request), entity, path_id(request)))

    async def match(request: web.Request) -> web.Response:
        """Fix a wrong match: point the item at another TMDB id, then re-enrich (which republishes)."""
        services = services_of(request)
        item_id = path_id(request)
        body = await json_body(request)
        tmdb_id = media.coerce(entity, "tmdb_id", body.get("tmdb_id"))
        if tmdb_id is None:
            raise UserError('"tmdb_id" is required: the TMDB id of the right match (GET /api/search finds it)')
        out = await services.db.write(api.rematch, entity, item_id, tmdb_id, services.clock.now())
        services.emit(f"{entity}:updated", {"id": item_id})
        job = await enqueue_enrich(services.queue, EnrichRequest(entity, item_id, Priority.HIGH, refresh=True))
        if entity == "series":  # its episodes are looked up under the show's new id
            show = await services.db.read(api.series_detail, item_id)
            for episode in show["episodes"]:
                await enqueue_enrich(services.queue, EnrichRequest("episode", episode["id"], Priority.HIGH,
                                                                   refresh=True))
        return web.json_response({"job_id": job.id, "item": out}, status=202)

    if with_get:
        app.router.add_get(f"{prefix}/{{id}}", get_one)
    app.router.add_get(f"{prefix}/{{id}}/nfo", nfo)
    if entity != "episode":
        app.router.add_post(f"{prefix}/{{id}}/match", match)
    app.router.add_get(f"{prefix}/{{id}}/artwork/{{art_type}}", artwork)
    app.router.add_patch(f"{prefix}/{{id}}/metadata", patch)
    app.router.add_post(f"{prefix}/{{id}}/lock", lock)
    app.router.add_post(f"{prefix}/{{id}}/enrich", enrich)
    app.router.add_post(f"{prefix}/{{id}}/refresh", refresh)


def setup(app: web.Application) -> None:
    """Register the /api/movies routes."""

    async def list_movies(request: web.Request) -> web.Response:
        services = services_of(request)
        return await list_items(services, request, "movie")

    app.router.add_get("/api/movies", list_movies)
    item_routes(app, "movie")
