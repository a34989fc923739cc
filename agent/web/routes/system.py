"""Health, libraries, the dashboard and /ws."""

from __future__ import annotations

from aiohttp import web

from agent.clock import iso
from agent.errors import NotFound
from agent.health import warnings_of
from agent.queue.model import Priority
from agent.service import Agent
from agent.web.app import static_dir


def setup(app: web.Application, agent: Agent) -> None:
    """Register system routes."""

    async def health(request: web.Request) -> web.Response:
        return web.json_response({
            "status": "ok", "version": agent.version, "queue": await agent.queue.stats(),
            "libraries": len(agent.cfg.libraries), "watchers": sum(getattr(w, "count", 1) for w in agent.watchers),
            "warnings": warnings_of(agent).items(),
        })

    async def libraries(request: web.Request) -> web.Response:
        rows = await agent.db.fetchall(
            "SELECT l.*,"
            " (SELECT COUNT(*) FROM movies m WHERE m.library_id = l.id AND m.missing_since IS NULL) AS movies,"
            " (SELECT COUNT(*) FROM series s WHERE s.library_id = l.id AND s.missing_since IS NULL) AS series,"
            " (SELECT COUNT(*) FROM episodes e JOIN series s ON s.id = e.series_id"
            "   WHERE s.library_id = l.id AND e.missing_since IS NULL) AS episodes"
            " FROM libraries l ORDER BY l.name")
        items = []
        for r in rows:
            lib = agent.cfg.library(r["name"])
            items.append({
                "id": r["id"], "name": r["name"], "kind": r["kind"], "path": r["path"],
                "watch": lib.watch if lib else "off",
                "counts": {"movies": r["movies"], "series": r["series"], "episodes": r["episodes"]},
                "last_scan_at": iso(r["last_scan_at"]), "last_scan_job_id": r["last_scan_job_id"],
            })
        return web.json_response({"items": items, "total": len(items)})

    async def scan_library(request: web.Request) -> web.Response:
        lib = agent.cfg.library(request.match_info["name"])
        if lib is None:
            raise NotFound(f"no library named {request.match_info['name']!r}",
                           detail={"libraries": [lb.name for lb in agent.cfg.libraries]})
        job = await agent.queue.enqueue("scan", {"library": lib.name}, priority=Priority.HIGH,
                                        dedupe_key=f"scan:{lib.name}:", lock_key=f"scan:{lib.name}")
        return web.json_response({"job_id": job.id}, status=202)

    async def index(request: web.Request) -> web.FileResponse:
        return web.FileResponse(static_dir() / "index.html", headers={"Cache-Control": "no-cache"})

    app.router.add_get("/api/health", health)
    app.router.add_get("/api/libraries", libraries)
    app.router.add_post("/api/libraries/{name}/scan", scan_library)
    app.router.add_get("/ws", agent.hub.handle)
    app.router.add_get("/", index)
    app.router.add_static("/static", static_dir(), show_index=False, follow_symlinks=False)
