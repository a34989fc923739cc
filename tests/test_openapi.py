"""The OpenAPI document matches the routes the real app registers, is served without a key and is valid."""

from __future__ import annotations

import itertools
import re
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import pytest
from aiohttp import web

from agent.config import Config
from agent.web.middleware import needs_key
from agent.web.openapi import document

METHODS = ("get", "put", "post", "delete", "patch", "options", "head", "trace")
LITERAL_CHOICES = re.compile(r"\(?([A-Za-z0-9_-]+(?:\|[A-Za-z0-9_-]+)*)\)?")


def _group_patterns(pattern: str) -> dict[str, str]:
    """Each named group's regex in an aiohttp resource pattern (balanced parentheses)."""
    out: dict[str, str] = {}
    for match in re.finditer(r"\(\?P<(\w+)>", pattern):
        depth, start = 1, match.end()
        for i in range(start, len(pattern)):
            if pattern[i] == "\\":
                continue
            depth += {"(": 1, ")": -1}.get(pattern[i], 0)
            if depth == 0:
                out[match.group(1)] = pattern[start:i]
                break
    return out


def route_templates(resource: web.AbstractResource) -> Iterator[str]:
    """The resource's path template; a placeholder limited to literal choices yields one path per choice."""
    info = resource.get_info()
    formatter = info.get("formatter") or info.get("path") or resource.canonical
    regex = info.get("pattern")
    groups = _group_patterns(regex.pattern) if regex is not None else {}
    choices: dict[str, list[str]] = {}
    for name, group in groups.items():
        literal = LITERAL_CHOICES.fullmatch(group)
        if literal:
            choices[name] = literal.group(1).split("|")
    if not choices:
        yield formatter
        return
    names = list(choices)
    for combo in itertools.product(*(choices[n] for n in names)):
        path = formatter
        for name, value in zip(names, combo, strict=True):
            path = path.replace("{" + name + "}", value)
        yield path


def app_routes(app: web.Application) -> set[tuple[str, str]]:
    """(METHOD, template) for every route but HEAD and the static files."""
    out: set[tuple[str, str]] = set()
    for route in app.router.routes():
        if route.method in ("HEAD", "*") or isinstance(route.resource, web.StaticResource):
            continue
        for path in route_templates(route.resource):
            out.add((route.method, path))
    return out


def document_routes(doc: dict[str, Any]) -> set[tuple[str, str]]:
    """(METHOD, template) for every operation in the document."""
    return {(method.upper(), path) for path, item in doc["paths"].items() for method in item if method in METHODS}


def resolve(doc: dict[str, Any], pointer: str) -> Any:
    """Follow a local JSON pointer (#/a/b) in the document."""
    assert pointer.startswith("#/"), pointer
    node: Any = doc
    for part in pointer[2:].split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def refs(node: Any) -> Iterator[str]:
    """Every $ref value anywhere in a JSON tree."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                yield value
            else:
                yield from refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from refs(value)


async def test_document_covers_exactly_the_registered_routes(
        make_client: Callable[..., Awaitable[Any]], config: Config) -> None:
    """Every (method, path) the real app registers is documented, and nothing else is."""
    client = await make_client(config)
    registered = app_routes(client.server.app)
    documented = document_routes(document())
    assert ("POST", "/api/webhooks/plex") in registered  # the regex route was expanded
    assert ("GET", "/ws") in registered and ("GET", "/") in registered
    assert registered - documented == set(), "routes missing from the OpenAPI document"
    assert documented - registered == set(), "documented routes the app does not register"


def test_route_templates_expand_literal_choices_only() -> None:
    """A {source:(a|b)} placeholder becomes two paths; a plain {id} stays a template."""
    app = web.Application()

    async def handler(request: web.Request) -> web.Response:
        """Unused."""
        return web.Response()

    app.router.add_post("/hooks/{source:(radarr|sonarr)}", handler)
    app.router.add_get("/items/{id}/art/{kind}", handler)
    app.router.add_get("/n/{num:[0-9]+}", handler)
    assert app_routes(app) == {("POST", "/hooks/radarr"), ("POST", "/hooks/sonarr"),
                               ("GET", "/items/{id}/art/{kind}"), ("GET", "/n/{num}")}


async def test_served_without_key_as_openapi_31(make_client: Callable[..., Awaitable[Any]], config: Config) -> None:
    """GET /api/openapi.json needs no key and returns the document as JSON."""
    client = await make_client(config)
    resp = await client.get("/api/openapi.json")
    assert resp.status == 200
    assert resp.content_type == "application/json"
    body = await resp.json()
    assert body["openapi"] == "3.1.0"
    assert body == document()
    assert body["info"]["version"] == client.agent.version


def test_security_matches_the_auth_middleware() -> None:
    """Operations marked open are exactly those the middleware lets through; the schemes are the three ways."""
    doc = document()
    schemes = doc["components"]["securitySchemes"]
    assert schemes["ApiKeyHeader"] == {"type": "apiKey", "in": "header", "name": "X-Api-Key"}
    assert schemes["ApiKeyQuery"]["in"] == "query" and schemes["ApiKeyQuery"]["name"] == "apikey"
    assert schemes["BasicAuth"]["type"] == "http" and schemes["BasicAuth"]["scheme"] == "basic"
    for path, item in doc["paths"].items():
        for method, op in item.items():
            is_open = op.get("security", doc["security"]) == [{}]
            assert is_open == (not needs_key(path)), f"{method.upper()} {path}"
            if not is_open:
                assert "401" in op["responses"], f"{method.upper()} {path} lacks its 401"
    for path in ("/api/webhooks/radarr", "/api/webhooks/plex"):
        assert {"BasicAuth": []} in doc["paths"][path]["post"]["security"]


def test_schemas_refs_and_error_body() -> None:
    """Every $ref resolves; the error schema is {error, detail}; lists are {items, total}."""
    doc = document()
    for pointer in set(refs(doc)):
        assert resolve(doc, pointer) is not None, pointer
    schemas = doc["components"]["schemas"]
    assert set(schemas["Error"]["properties"]) == {"error", "detail"}
    assert "Episode" in schemas
    for name in ("Movie", "Series", "Job", "Library", "Player"):
        envelope = schemas[f"{name}List"]
        assert set(envelope["required"]) == {"items", "total"}
        assert envelope["properties"]["items"]["items"] == {"$ref": f"#/components/schemas/{name}"}
    job_fields = {"id", "type", "priority", "status", "payload", "result", "error", "attempts", "max_retries",
                  "progress", "message", "depends_on", "created_at", "started_at", "completed_at", "next_retry_at"}
    assert job_fields <= set(schemas["Job"]["properties"])
    movie_fields = {"id", "library", "path", "file", "title", "original_title", "sort_title", "year", "premiered",
                    "plot", "outline", "tagline", "runtime", "mpaa", "tmdb_id", "imdb_id", "status",
                    "locked_fields", "nfo_path", "nfo_error", "artwork", "files"}
    assert movie_fields <= set(schemas["Movie"]["properties"])
    ws = doc["paths"]["/ws"]["get"]["description"]
    for event in ("connection:established", "job:progress", "queue:stats", "scan:progress", "player:activity",
                  "webhook:received", "resync"):
        assert event in ws


def test_validates_with_openapi_spec_validator() -> None:
    """The document passes openapi-spec-validator's 3.1 checks (when that package is installed)."""
    validator = pytest.importorskip("openapi_spec_validator")
    validator.validate(document())
