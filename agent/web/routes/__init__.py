"""Route registration: each module adds its own routes; handlers read Services from the app."""

from __future__ import annotations

from aiohttp import web

from agent.web.routes import jobs, media, openapi, players, series, system, webhooks

MODULES = (system, jobs, media, series, webhooks, players, openapi)


def setup_routes(app: web.Application) -> None:
    """Register every route module."""
    for module in MODULES:
        module.setup(app)
