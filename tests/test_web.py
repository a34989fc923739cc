"""The real app's auth matrix and JSON error bodies: never HTML, never a traceback."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from conftest import API_KEY, HEADERS

from agent.config import Config
from agent.web.app import create_app
from agent.web.keys import MAX_BODY
from agent.web.params import json_body


def basic(username: str, password: str) -> dict[str, str]:
    """An Authorization header for HTTP Basic."""
    token = base64.b64encode(f"{username}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


async def assert_json_error(resp: aiohttp.ClientResponse, status: int, contains: str = "") -> dict[str, Any]:
    """The reply is the DESIGN error body with this status."""
    assert resp.status == status, await resp.text()
    assert resp.content_type == "application/json"
    body = await resp.json()
    assert set(body) == {"error", "detail"}
    assert isinstance(body["error"], str) and body["error"]
    assert contains in body["error"], body
    return body


# ---------------------------------------------------------------- auth


@pytest.mark.parametrize(("query", "headers"), [
    ({}, HEADERS),
    ({"apikey": API_KEY}, {}),
    ({"api_key": API_KEY}, {}),
    ({}, basic("anyone", API_KEY)),
    ({}, basic("", API_KEY)),
    ({}, basic("radarr", API_KEY)),
], ids=["header", "query-apikey", "query-api_key", "basic", "basic-no-user", "basic-other-user"])
async def test_key_accepted(client: Any, query: dict[str, str], headers: dict[str, str]) -> None:
    """The key works as header, query parameter or Basic password with any username."""
    resp = await client.get("/api/libraries", params=query, headers=headers)
    assert resp.status == 200, await resp.text()
    assert [lib["name"] for lib in (await resp.json())["items"]] == ["Movies", "TV"]


@pytest.mark.parametrize(("query", "headers", "message"), [
    ({}, {}, "API key required"),
    ({}, {"X-Api-Key": "wrong"}, "wrong API key"),
    ({"apikey": "wrong"}, {}, "wrong API key"),
    ({}, {"X-Api-Key": API_KEY + "x"}, "wrong API key"),
    ({}, basic("user", "wrong"), "wrong API key"),
    ({}, basic(API_KEY, ""), "API key required"),
    ({}, {"Authorization": "Basic !!!not-base64!!!"}, "API key required"),
    ({}, {"Authorization": "Basic " + base64.b64encode(b"no-colon").decode()}, "API key required"),
    ({}, {"Authorization": "Basic " + base64.b64encode(b"u:\xff\xfe").decode()}, "API key required"),
    ({}, {"Authorization": f"Bearer {API_KEY}"}, "API key required"),
], ids=["none", "wrong-header", "wrong-query", "longer-key", "wrong-basic", "key-as-username",
        "basic-not-base64", "basic-no-colon", "basic-not-utf8", "bearer"])
async def test_key_refused(client: Any, query: dict[str, str], headers: dict[str, str], message: str) -> None:
    """A missing, wrong or malformed key is 401 with a JSON error body."""
    resp = await client.get("/api/libraries", params=query, headers=headers)
    await assert_json_error(resp, 401, message)


async def test_unknown_api_route_needs_the_key_first(client: Any) -> None:
    """Without a key even a route that does not exist is 401: the API's shape is not probed for free."""
    await assert_json_error(await client.get("/api/nope"), 401)


async def test_open_paths(client: Any) -> None:
    """Health, the dashboard page and its static files need no key."""
    resp = await client.get("/api/health")
    assert resp.status == 200
    body = await resp.json()
    assert body["status"] == "ok" and body["libraries"] == 2
    assert set(body["queue"]) >= {"pending", "running", "failed"}
    resp = await client.get("/api/health", headers={"X-Api-Key": "wrong"})
    assert resp.status == 200
    resp = await client.get("/")
    assert resp.status == 200 and resp.content_type == "text/html"
    resp = await client.get("/static/app.js")
    assert resp.status == 200 and "javascript" in resp.content_type
    resp = await client.get("/static/style.css")
    assert resp.status == 200


async def test_static_does_not_escape_its_folder(client: Any) -> None:
    """A path climbing out of /static is not served."""
    resp = await client.get("/static/../../service.py")
    assert resp.status in (403, 404)
    assert "import" not in await resp.text()
    resp = await client.get("/static/%2e%2e/app.py")
    assert resp.status in (403, 404)


async def test_ws_needs_the_key(client: Any) -> None:
    """/ws without a key is refused with 401 before the upgrade; with the key it connects."""
    with pytest.raises(aiohttp.WSServerHandshakeError) as info:
        await client.ws_connect("/ws")
    assert info.value.status == 401
    with pytest.raises(aiohttp.WSServerHandshakeError) as info:
        await client.ws_connect("/ws", params={"apikey": "wrong"})
    assert info.value.status == 401
    for kwargs in ({"params": {"apikey": API_KEY}}, {"headers": HEADERS}):
        ws = await client.ws_connect("/ws", **kwargs)
        msg = await ws.receive_json(timeout=5)
        assert msg["type"] == "connection:established"
        await ws.close()


# ---------------------------------------------------------------- JSON errors


async def test_unknown_route_is_404_json(client: Any) -> None:
    """A route that does not exist is a JSON 404 naming the method and path, with or without /api."""
    await assert_json_error(await client.get("/api/nope", headers=HEADERS), 404, "no route for GET /api/nope")
    await assert_json_error(await client.get("/nope"), 404, "no route for GET /nope")


async def test_bad_ids_are_400(client: Any) -> None:
    """A non-numeric or non-positive id is 400 naming the parameter."""
    await assert_json_error(await client.get("/api/jobs/abc", headers=HEADERS), 400, "id must be an integer")
    for low in ("0", "-3"):
        resp = await client.get(f"/api/jobs/{low}", headers=HEADERS)
        await assert_json_error(resp, 400, "id must be between 1")
    for odd in ("%EF%BC%91", "1_0", "+1", "%201", "1.0", "0x1"):  # int() would take some of these
        resp = await client.get(f"/api/jobs/{odd}", headers=HEADERS)
        await assert_json_error(resp, 400, "id must be an integer")
    await assert_json_error(await client.get("/api/jobs/99999999999999999999", headers=HEADERS), 400,
                            "id is out of range")
    await assert_json_error(await client.get("/api/jobs/9223372036854775808", headers=HEADERS), 400,
                            "id must be between 1 and 9223372036854775807")
    await assert_json_error(await client.get("/api/jobs", params={"offset": "9" * 30}, headers=HEADERS), 400,
                            "query parameter offset is out of range")
    await assert_json_error(await client.get("/api/jobs", params={"limit": "lots"}, headers=HEADERS), 400,
                            "query parameter limit must be an integer")
    await assert_json_error(await client.get("/api/jobs", params={"limit": "100000"}, headers=HEADERS), 400,
                            "between 1 and 500")


async def test_unknown_job_is_404(client: Any) -> None:
    """An id that names no job is 404."""
    for resp in (await client.get("/api/jobs/999", headers=HEADERS),
                 await client.post("/api/jobs/999/retry", headers=HEADERS),
                 await client.delete("/api/jobs/999", headers=HEADERS)):
        await assert_json_error(resp, 404, "job 999 not found")


async def test_unknown_library_scan_is_404(client: Any) -> None:
    """Scanning a library that is not configured is 404 listing the known ones."""
    resp = await client.post("/api/libraries/Music/scan", headers=HEADERS)
    body = await assert_json_error(resp, 404, "Music")
    assert body["detail"] == {"libraries": ["Movies", "TV"]}


async def test_method_not_allowed_is_405_json(client: Any) -> None:
    """A known path with the wrong method is a JSON 405."""
    await assert_json_error(await client.put("/api/jobs", headers=HEADERS), 405,
                            "method PUT not allowed on /api/jobs")
    await assert_json_error(await client.delete("/api/libraries", headers=HEADERS), 405)


@pytest.fixture
async def throwaway(aiohttp_client: Any, config: Config) -> Callable[..., Awaitable[Any]]:
    """The real app plus routes added by a test (registered before the router freezes)."""

    async def factory(*routes: web.RouteDef) -> Any:
        app = create_app(config, api_key=API_KEY, start_workers=False)
        app.router.add_routes(list(routes))
        return await aiohttp_client(app)

    return factory


async def test_unexpected_exception_is_500_without_traceback(throwaway: Callable[..., Awaitable[Any]],
                                                             caplog: pytest.LogCaptureFixture) -> None:
    """A handler bug is a JSON 500 that leaks nothing; the log keeps the traceback."""

    async def broken(request: web.Request) -> web.Response:
        raise RuntimeError("secret internals at /srv/private/thing.py")

    client = await throwaway(web.get("/api/broken", broken))
    resp = await client.get("/api/broken", headers=HEADERS)
    body = await assert_json_error(resp, 500, "internal error")
    text = str(body)
    for leak in ("Traceback", "RuntimeError", "secret internals", "/srv/private", 'File "'):
        assert leak not in text
    assert any(r.exc_info and "secret internals" in str(r.exc_info[1]) for r in caplog.records)


async def test_body_over_one_mib_is_413_json(throwaway: Callable[..., Awaitable[Any]]) -> None:
    """A body larger than 1 MiB is refused with a JSON 413; one just under is read."""

    async def echo(request: web.Request) -> web.Response:
        body = await json_body(request)
        return web.json_response({"size": len(body["blob"])})

    client = await throwaway(web.post("/api/echo", echo))
    small = b'{"blob": "' + b"x" * (MAX_BODY - 100) + b'"}'
    resp = await client.post("/api/echo", data=small, headers={**HEADERS, "Content-Type": "application/json"})
    assert resp.status == 200 and (await resp.json())["size"] == MAX_BODY - 100
    big = b'{"blob": "' + b"x" * (MAX_BODY + 10) + b'"}'
    resp = await client.post("/api/echo", data=big, headers={**HEADERS, "Content-Type": "application/json"})
    await assert_json_error(resp, 413, "request body too large")


@pytest.mark.parametrize(("data", "message"), [
    (b"", "request body is empty"),
    (b"{not json", "body is not valid JSON"),
    (b"[1, 2]", "body must be a JSON object"),
    (b"\xff\xfe\x00", "body is not valid JSON"),
], ids=["empty", "broken", "list", "not-utf8"])
async def test_bad_json_body_is_400(throwaway: Callable[..., Awaitable[Any]], data: bytes,
                                    message: str) -> None:
    """A body that is empty, not JSON or not an object is a 400 saying which."""

    async def echo(request: web.Request) -> web.Response:
        return web.json_response(await json_body(request))

    client = await throwaway(web.post("/api/echo", echo))
    await assert_json_error(await client.post("/api/echo", data=data, headers=HEADERS), 400, message)


@pytest.mark.parametrize("path", [
    "//api/libraries", "/api//libraries", "/api/health/../libraries", "/api/health/%2e%2e/libraries",
    "/%61pi/libraries", "/api/%6cibraries", "/static/../api/libraries", "/api/libraries/",
    "/api/libraries%00",
])
async def test_raw_paths_do_not_bypass_the_key(client: Any, path: str) -> None:
    """Odd spellings of a protected path, sent byte for byte, never reach it without the key."""
    reader, writer = await asyncio.open_connection("127.0.0.1", client.server.port)
    writer.write(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
    raw = await asyncio.wait_for(reader.read(), 5)
    writer.close()
    head, _, body = raw.partition(b"\r\n\r\n")
    status = int(head.split(b" ")[1])
    assert status in (401, 404), raw
    assert json.loads(body)["error"]
