"""Route registration: each module adds its own routes."""

from __future__ import annotations

from aiohttp import web

from agent.service import Agent


def setup_routes(app: web.Application, agent: Agent) -> None:
    """Register every route module."""
    from agent.web.routes import jobs, media, openapi, players, series, system, webhooks

    for module in (system, jobs, media, series, webhooks, players, openapi):
        module.setup(app, agent)
