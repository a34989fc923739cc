"""The aiohttp application factory: one cleanup_ctx per resource, routes from the route modules."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from importlib import resources
from pathlib import Path

from aiohttp import web

from agent.service import Agent
from agent.web.keys import AGENT
from agent.web.middleware import errors, make_auth

log = logging.getLogger("agent.web")
MAX_BODY = 1024 * 1024  # webhooks and PATCH bodies: 1 MiB


def static_dir() -> Path:
    """The dashboard's files inside the package."""
    return Path(str(resources.files("agent.web").joinpath("static")))


def create_app(agent: Agent, start_workers: bool = True) -> web.Application:
    """Build the app; startup opens the store, the HTTP session, the queue and the watchers."""
    app = web.Application(middlewares=[errors, make_auth(agent.api_key)], client_max_size=MAX_BODY)
    app[AGENT] = agent

    async def store_ctx(app: web.Application) -> AsyncIterator[None]:
        await agent.open_store()
        yield
        await agent.db.close()

    async def http_ctx(app: web.Application) -> AsyncIterator[None]:
        await agent.open_http()
        yield
        await agent.close_http()

    async def queue_ctx(app: web.Application) -> AsyncIterator[None]:
        agent.register_jobs()
        if start_workers:
            await agent.queue.start()
        yield
        if start_workers:
            await agent.queue.stop()

    async def services_ctx(app: web.Application) -> AsyncIterator[None]:
        from agent.runtime import start_services, stop_services

        await start_services(agent)
        yield
        await stop_services(agent)

    async def close_ws(app: web.Application) -> None:
        await agent.hub.close_all()

    app.cleanup_ctx.extend([store_ctx, http_ctx, queue_ctx, services_ctx])
    app.on_shutdown.append(close_ws)

    from agent.web.routes import setup_routes

    setup_routes(app, agent)
    return app
