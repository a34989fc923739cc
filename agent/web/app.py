"""The aiohttp application factory: one cleanup_ctx per resource, routes from the route modules."""

from __future__ import annotations

import contextlib
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

    async def resources(app: web.Application) -> AsyncIterator[None]:
        """Open the store, the HTTP session, the queue and the services; close them in reverse.

        One exit stack rather than one cleanup_ctx per resource: aiohttp 3.14 does not clean up the
        contexts that already started when a later one fails, which left the database threads
        running and the process alive after a failed start.
        """
        from agent.runtime import start_services, stop_services

        async with contextlib.AsyncExitStack() as stack:
            await agent.open_store()
            stack.push_async_callback(agent.db.close)
            await agent.open_http()
            stack.push_async_callback(agent.close_http)
            agent.register_jobs()
            if start_workers:
                await agent.queue.start()
                stack.push_async_callback(agent.queue.stop)
            stack.push_async_callback(stop_services, agent)  # stops whatever did start
            await start_services(agent)
            yield

    async def close_ws(app: web.Application) -> None:
        await agent.hub.close_all()

    app.cleanup_ctx.append(resources)
    app.on_shutdown.append(close_ws)

    from agent.web.routes import setup_routes

    setup_routes(app, agent)
    return app
