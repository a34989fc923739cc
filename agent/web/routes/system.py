"""Health, libraries, the dashboard and /ws."""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Final

from aiohttp import web

from agent.clock import iso
from agent.errors import NotFound
from agent.health import Probes, check_system, merge_warnings
from agent.library.naming import is_junk
from agent.library.scan import scan_keys
from agent.queue.model import Priority
from agent.services import Services
from agent.store import agents, api
from agent.web.keys import HUB, services_of, static_dir

log = logging.getLogger("agent.web")
PROBES: Final = Probes(junk=is_junk)
CHECK_TIMEOUT: Final = 5.0  # seconds the health checks (stat, scandir, statvfs of the libraries) may take


async def warnings(services: Services) -> list[dict[str, Any]]:
    """The raised warnings merged with the checks run now (off the loop; a hung mount cannot stall the reply)."""
    raised = services.warnings.items()
    players = await services.db.read(api.players)
    try:
        checked = await asyncio.wait_for(asyncio.to_thread(check_system, services.cfg, players, PROBES), CHECK_TIMEOUT)
    except TimeoutError:
        log.warning("health checks took longer than %g s (a library on a hung mount?)", CHECK_TIMEOUT)
        checked = [{"code": "health_check_slow", "subject": None,
                    "message": f"Checking the libraries and disks took longer than {CHECK_TIMEOUT:g} s: "
                               "a library folder may be on a network mount that does not answer."}]
    return merge_warnings(raised, checked)


def setup(app: web.Application) -> None:
    """Register system routes."""

    async def health(request: web.Request) -> web.Response:
        services = services_of(request)
        return web.json_response({
            "status": "ok", "version": services.version, "queue": await services.queue.stats(),
            "libraries": len(services.cfg.libraries), "watchers": services.watchers.count,
            "warnings": await warnings(services),
        })

    async def libraries(request: web.Request) -> web.Response:
        services = services_of(request)
        items = []
        for r in await services.db.read(api.libraries):
            lib = services.cfg.library(r["name"])
            items.append({
                "id": r["id"], "name": r["name"], "kind": r["kind"], "path": r["path"],
                "agent": r["agent"] or services.cfg.agent.name,  # the agent whose files these are
                "watch": lib.watch if lib else "off",
                "counts": {"movies": r["movies"], "series": r["series"], "episodes": r["episodes"]},
                "progress": api.library_progress(r),
                "last_scan_at": iso(r["last_scan_at"]), "last_scan_job_id": r["last_scan_job_id"],
            })
        return web.json_response({"items": items, "total": len(items)})

    async def scan_library(request: web.Request) -> web.Response:
        services = services_of(request)
        lib = services.cfg.library(request.match_info["name"])
        name = lib.name if lib is not None else None
        if name is None and services.cfg.shared_store:  # another agent's library: the scan runs on that agent
            owners = await services.db.read(agents.owners)
            name = next((n for n in owners if n.lower() == request.match_info["name"].lower()), None)
        if name is None:
            raise NotFound(f"no library named {request.match_info['name']!r}",
                           detail={"libraries": [lb.name for lb in services.cfg.libraries]})
        job = await services.queue.enqueue("scan", {"library": name}, priority=Priority.HIGH,
                                           **scan_keys(name, None))
        return web.json_response({"job_id": job.id, "agent": job.agent or services.cfg.agent.name}, status=202)

    async def agent_list(request: web.Request) -> web.Response:
        """The agents sharing this store: name, libraries, last seen, running jobs, and whether it answers."""
        services = services_of(request)
        now = services.clock.now()
        items = []
        for a in await services.db.read(agents.listing):
            alive = a["stopped_at"] is None and now - a["last_seen"] <= services.queue.lease
            items.append({**a, "last_seen": iso(a["last_seen"]), "started_at": iso(a["started_at"]),
                          "stopped_at": iso(a["stopped_at"]), "state": "up" if alive else (
                              "stopped" if a["stopped_at"] is not None else "not answering"),
                          "self": a["name"] == services.cfg.agent.name})
        return web.json_response({"items": items, "total": len(items), "shared": services.cfg.shared_store})

    async def index(request: web.Request) -> web.FileResponse:
        return web.FileResponse(static_dir() / "index.html", headers={"Cache-Control": "no-cache"})

    app.router.add_get("/api/health", health)
    app.router.add_get("/api/libraries", libraries)
    app.router.add_get("/api/agents", agent_list)
    app.router.add_post("/api/libraries/{name}/scan", scan_library)
    app.router.add_get("/ws", app[HUB].handle)
    app.router.add_get("/", index)
    app.router.add_static("/static", static_dir(), show_index=False, follow_symlinks=False)
