"""Parsing of path ids, query numbers and JSON bodies into clear 400s."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from agent.errors import UserError


def path_id(request: web.Request, name: str = "id") -> int:
    """An integer id from the URL path."""
    raw = request.match_info[name]
    try:
        value = int(raw)
    except ValueError:
        raise UserError(f"{name} must be an integer, got {raw!r}") from None
    if value < 1:
        raise UserError(f"{name} must be positive, got {value}")
    return value


def query_int(request: web.Request, name: str, default: int, lo: int = 0, hi: int = 1000) -> int:
    """An integer query parameter within bounds."""
    raw = request.query.get(name)
    if raw in (None, ""):
        return default
    try:
        value = int(raw)
    except ValueError:
        raise UserError(f"query parameter {name} must be an integer, got {raw!r}") from None
    if not lo <= value <= hi:
        raise UserError(f"query parameter {name} must be between {lo} and {hi}, got {value}")
    return value


async def json_body(request: web.Request, kind: type = dict) -> Any:
    """The request body as JSON of the expected kind."""
    raw = await request.read()
    if not raw.strip():
        raise UserError("request body is empty; send JSON")
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise UserError(f"body is not valid JSON: {exc}") from None
    if not isinstance(body, kind):
        raise UserError(f"body must be a JSON {'object' if kind is dict else kind.__name__}")
    return body
