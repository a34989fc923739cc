"""Auth and error middlewares: every error is JSON, never a traceback; /api and /ws need the key."""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import logging
from collections.abc import Awaitable, Callable

from aiohttp import web

from agent.errors import AgentError
from agent.web.hub import OPEN_SOCKET, close_failed

log = logging.getLogger("agent.web")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
OPEN_PATHS = frozenset({"/api/health", "/api/openapi.json"})


def error_response(status: int, message: str, detail: object = None) -> web.Response:
    """The DESIGN error body."""
    return web.json_response({"error": message, "detail": detail}, status=status)


def request_key(request: web.Request) -> str | None:
    """The API key from X-Api-Key, ?apikey= or HTTP Basic (key as password)."""
    key = request.headers.get("X-Api-Key") or request.query.get("apikey") or request.query.get("api_key")
    if key:
        return key
    auth = request.headers.get("Authorization", "")
    if auth.lower().startswith("basic "):
        try:
            decoded = base64.b64decode(auth[6:].strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return None
        return decoded.partition(":")[2] or None
    return None


def needs_key(path: str) -> bool:
    """Whether a path is protected."""
    if path in OPEN_PATHS:
        return False
    return path.startswith("/api/") or path == "/api" or path == "/ws"


def make_auth(api_key: str) -> Callable:
    """Middleware checking the key with a constant-time compare."""
    expected = api_key.encode("utf-8")

    @web.middleware
    async def auth(request: web.Request, handler: Handler) -> web.StreamResponse:
        if needs_key(request.path):
            given = request_key(request)
            if not given:
                return error_response(401, "API key required: send X-Api-Key, ?apikey= or Basic auth")
            if not hmac.compare_digest(given.encode("utf-8"), expected):
                return error_response(401, "wrong API key")
        return await handler(request)

    return auth


@web.middleware
async def errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Map every exception to a JSON error body; on an upgraded /ws socket, to a close code instead."""
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return await _on_socket(request, exc) or _http_error(request, exc)
    except Exception as exc:
        return await _on_socket(request, exc) or _error_reply(request, exc)


async def _on_socket(request: web.Request, exc: BaseException) -> web.StreamResponse | None:
    """When the request is a prepared WebSocket, close it with 1011 and return it (HTTP text would corrupt it)."""
    ws = request.get(OPEN_SOCKET)
    if ws is None:
        return None
    log.error("%s %s failed after the WebSocket upgrade", request.method, request.path, exc_info=exc)
    await close_failed(ws)
    return ws


def _http_error(request: web.Request, exc: web.HTTPException) -> web.Response:
    """aiohttp's own 4xx/5xx (no route, wrong method, body too large) as the DESIGN error body."""
    message = {404: f"no route for {request.method} {request.path}",
               405: f"method {request.method} not allowed on {request.path}",
               413: "request body too large"}.get(exc.status, exc.reason)
    if exc.text and exc.content_type == "application/json":
        try:
            body = json.loads(exc.text)
            message = body.get("error", message)
        except ValueError:
            pass
    return error_response(exc.status, message)


def _error_reply(request: web.Request, exc: Exception) -> web.Response:
    """An exception as the DESIGN error body: ours with their status, anything else a 500 without details."""
    if isinstance(exc, AgentError):
        if exc.status >= 500:
            log.error("%s %s failed: %s", request.method, request.path, exc.message)
        return error_response(exc.status, exc.message, exc.detail)
    if isinstance(exc, json.JSONDecodeError):
        where = f"line {exc.lineno} column {exc.colno}"
        return error_response(400, f"body is not valid JSON: {exc.msg} at {where}")
    log.error("%s %s raised", request.method, request.path, exc_info=exc)
    return error_response(500, "internal error; see the agent's log")
