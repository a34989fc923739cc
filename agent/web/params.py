"""Parsing of path ids, query numbers and JSON bodies into clear 400s."""

from __future__ import annotations

import re
from typing import Any

from aiohttp import web

from agent import safejson
from agent.errors import UserError

INTEGER = re.compile(r"-?[0-9]+")  # ASCII digits only: int() also takes "１", "1_0", " +1"
MAX_ID = 2**63 - 1  # SQLite INTEGER


def _integer(raw: str, what: str) -> int:
    """Parse plain ASCII digits; anything else, or more digits than SQLite holds, is a 400 naming `what`."""
    if not INTEGER.fullmatch(raw):
        raise UserError(f"{what} must be an integer, got {raw[:40]!r}")
    if len(raw.lstrip("-")) > 19:
        raise UserError(f"{what} is out of range: {raw[:40]}")
    return int(raw)


def path_id(request: web.Request, name: str = "id") -> int:
    """An integer id from the URL path."""
    raw = request.match_info[name]
    value = _integer(raw, name)
    if not 1 <= value <= MAX_ID:
        raise UserError(f"{name} must be between 1 and {MAX_ID}, got {value}")
    return value


def query_int(request: web.Request, name: str, default: int, lo: int = 0, hi: int = 1000) -> int:
    """An integer query parameter within bounds."""
    raw = request.query.get(name)
    if raw in (None, ""):
        return default
    value = _integer(raw, f"query parameter {name}")
    if not lo <= value <= hi:
        raise UserError(f"query parameter {name} must be between {lo} and {hi}, got {value}")
    return value


async def json_body(request: web.Request, kind: type = dict) -> Any:
    """The request body as strict JSON of the expected kind (NaN, huge numbers, deep nesting are 400s)."""
    raw = await request.read()
    if not raw.strip():
        raise UserError("request body is empty; send JSON")
    try:
        body = safejson.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise UserError(f"body is not valid JSON: {exc}") from None
    if not isinstance(body, kind):
        raise UserError(f"body must be a JSON {'object' if kind is dict else kind.__name__}")
    return body
