"""The aiohttp application factory: startup opens the agent (agent.root.open_agent), routes read its Services."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web

from agent.clock import Clock
from agent.config import Config
from agent.events import Events
from agent.root import open_agent
from agent.web.hub import Hub
from agent.web.keys import HUB, MAX_BODY, SERVICES
from agent.web.middleware import Handler, error_response, errors, make_auth
from agent.web.routes import setup_routes

log = logging.getLogger("agent.web")
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


def create_app(cfg: Config, clock: Clock | None = None, *, api_key: str, start_workers: bool = True,
               background: bool = True, body_timeout: float = BODY_TIMEOUT) -> web.Application:
    """Build the app; startup opens the agent (agent.root.open_agent) and stores its Services on the app.

    One exit stack rather than one cleanup_ctx per resource: aiohttp does not clean up the contexts
    that already started when a later one fails, which left the database threads running and the
    process alive after a failed start.
    """
    app = web.Application(middlewares=[errors, body_deadline(body_timeout), make_auth(api_key)],
                          client_max_size=MAX_BODY)
    hub = Hub()
    app[HUB] = hub
    events = Events()
    events.subscribe(hub.broadcast)

    async def agent_ctx(app: web.Application) -> AsyncIterator[None]:
        """Open the agent for the app's lifetime; close it in reverse on cleanup."""
        async with open_agent(cfg, clock, api_key=api_key, events=events, start_workers=start_workers,
                              background=background) as services:
            app[SERVICES] = services
            yield

    async def close_ws(app: web.Application) -> None:
        """Close every /ws socket (GOING_AWAY)."""
        await hub.close_all()

    async def stop_queue(app: web.Application) -> None:
        """Start stopping the queue while HTTP handlers drain, so both fit in the grace period."""
        if start_workers and SERVICES in app:
            app[SERVICES].queue.begin_stop()

    app.cleanup_ctx.append(agent_ctx)
    app.on_shutdown.extend([stop_queue, close_ws])
    setup_routes(app)
    return app
