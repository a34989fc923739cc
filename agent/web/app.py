"""The aiohttp application factory: one cleanup_ctx per resource, routes from the route modules."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from importlib import resources
from pathlib import Path
from typing import Any

from aiohttp import web

from agent.service import Agent
from agent.web.keys import AGENT
from agent.web.middleware import Handler, error_response, errors, make_auth

log = logging.getLogger("agent.web")
MAX_BODY = 1024 * 1024  # webhooks and PATCH bodies: 1 MiB
HEADER_TIMEOUT = 20.0  # seconds a connection may take to send a request's headers (and may sit idle)
BODY_TIMEOUT = 60.0  # seconds a request's body may take to arrive once its headers have


def server_options(header_timeout: float = HEADER_TIMEOUT, grace: float | None = None) -> dict[str, Any]:
    """Runner settings for serving the app: slow clients are cut off; shutdown waits at most `grace` s.

    aiohttp's keep-alive timer starts when a connection opens and closes it if no complete request
    has arrived when it fires, so it is also the header timeout (a half-sent request line included).
    """
    options: dict[str, Any] = {"keepalive_timeout": header_timeout}
    if grace is not None:
        options["shutdown_timeout"] = grace
    return options


def body_deadline(seconds: float) -> Any:
    """Middleware closing the connection when a request's body has not fully arrived within `seconds`."""

    @web.middleware
    async def deadline(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.content.is_eof():  # no body, or all of it is here already
            return await handler(request)
        expired = False

        def expire() -> None:
            nonlocal expired
            transport = request.transport
            if request.content.is_eof() or transport is None or transport.is_closing():
                return
            expired = True
            log.warning("closed the connection from %s: the body of %s %s did not arrive within %g s",
                        request.remote, request.method, request.path, seconds)
            transport.close()

        timer = asyncio.get_running_loop().call_later(seconds, expire)
        try:
            return await handler(request)
        except Exception:
            if not expired:
                raise
            return error_response(408, f"the request body did not arrive within {seconds:g} s")  # unsendable
        finally:
            timer.cancel()

    return deadline


def static_dir() -> Path:
    """The dashboard's files inside the package."""
    return Path(str(resources.files("agent.web").joinpath("static")))


def create_app(agent: Agent, start_workers: bool = True, body_timeout: float = BODY_TIMEOUT) -> web.Application:
    """Build the app; startup opens the store, the HTTP session, the queue and the watchers."""
    app = web.Application(middlewares=[errors, body_deadline(body_timeout), make_auth(agent.api_key)],
                          client_max_size=MAX_BODY)
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
        """Close every /ws socket (GOING_AWAY)."""
        await agent.hub.close_all()

    async def stop_queue(app: web.Application) -> None:
        """Start stopping the queue while HTTP handlers drain, so both fit in the grace period."""
        if start_workers:
            agent.queue.begin_stop()

    app.cleanup_ctx.append(resources)
    app.on_shutdown.extend([stop_queue, close_ws])

    from agent.web.routes import setup_routes

    setup_routes(app, agent)
    return app
