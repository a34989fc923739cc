"""Route registration: each module adds its own routes."""

from __future__ import annotations

from aiohttp import web

from agent.service import Agent


def setup_routes(app: web.Application, agent: Agent) -> None:
    """Register every route module."""
    from agent.web.routes import jobs, system

    for module in (system, jobs):
        module.setup(app, agent)
    _optional(app, agent)


def _optional(app: web.Application, agent: Agent) -> None:
    """Route modules of later features; each registers itself when present."""
    import importlib

    for name in ("media", "series", "webhooks", "players", "openapi"):
        try:
            module = importlib.import_module(f"agent.web.routes.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"agent.web.routes.{name}":
                raise
            continue
        module.setup(app, agent)
