"""Route registration: each module adds its own routes; handlers read Services from the app."""

from __future__ import annotations

from aiohttp import web

from agent.web.routes import activity, jobs, media, openapi, players, search, series, system, webhooks

MODULES = (system, jobs, activity, media, series, search, webhooks, players, openapi)


def setup_routes(app: web.Application) -> None:
    """Register every route module."""
    for module in MODULES:
        module.setup(app)
