"""The /ws hub over the real app: handshake, ping, malformed frames, broadcast, slow clients dropped."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

import aiohttp
import pytest
from conftest import API_KEY, wait_for

from agent.web.hub import SEND_QUEUE
from agent.web.keys import HUB


async def connect(client: Any) -> aiohttp.ClientWebSocketResponse:
    """Open /ws with the key and return the socket after checking the handshake frame."""
    ws = await client.ws_connect("/ws", params={"apikey": API_KEY})
    hello = await ws.receive_json(timeout=5)
    assert hello["type"] == "connection:established"
    return ws


def check_envelope(msg: dict[str, Any]) -> None:
    """Every server frame is {type, data, timestamp} with an ISO 8601 timestamp."""
    assert set(msg) == {"type", "data", "timestamp"}, msg
    assert isinstance(msg["type"], str) and isinstance(msg["data"], dict)
    assert datetime.fromisoformat(msg["timestamp"].replace("Z", "+00:00")).tzinfo is not None


async def test_handshake_gives_client_id(client: Any) -> None:
    """On connect the client gets connection:established with its own clientId."""
    first = await client.ws_connect("/ws", params={"apikey": API_KEY})
    second = await client.ws_connect("/ws", headers={"X-Api-Key": API_KEY})
    a, b = await first.receive_json(timeout=5), await second.receive_json(timeout=5)
    for msg in (a, b):
        check_envelope(msg)
        assert msg["type"] == "connection:established"
        assert isinstance(msg["data"]["clientId"], str) and msg["data"]["clientId"]
    assert a["data"]["clientId"] != b["data"]["clientId"]
    assert set(client.app[HUB].clients) == {a["data"]["clientId"], b["data"]["clientId"]}
    await first.close()
    await second.close()
    await wait_for(lambda: not client.app[HUB].clients)


async def test_ping_pong(client: Any) -> None:
    """{"type": "ping"} is answered with pong."""
    ws = await connect(client)
    for _ in range(3):
        await ws.send_json({"type": "ping"})
        msg = await ws.receive_json(timeout=5)
        check_envelope(msg)
        assert msg["type"] == "pong"
    await ws.close()


@pytest.mark.parametrize(("send", "error"), [
    ("not json {", "frame is not valid JSON"),
    ("[1, 2]", 'frame must be a JSON object with a string "type"'),
    ('{"type": 5}', 'frame must be a JSON object with a string "type"'),
    ('{"data": {}}', 'frame must be a JSON object with a string "type"'),
    ('{"type": "subscribe"}', "unknown message type 'subscribe'"),
    (b"\x00\x01", "binary frames are not supported"),
], ids=["not-json", "list", "type-not-string", "no-type", "unknown-type", "binary"])
async def test_malformed_frame_gets_error_and_connection_stays(client: Any, send: str | bytes,
                                                                error: str) -> None:
    """A bad frame is answered with an error frame; the socket stays open and ping still works."""
    ws = await connect(client)
    if isinstance(send, bytes):
        await ws.send_bytes(send)
    else:
        await ws.send_str(send)
    msg = await ws.receive_json(timeout=5)
    check_envelope(msg)
    assert msg["type"] == "error"
    assert error in msg["data"]["error"]
    assert not ws.closed
    await ws.send_json({"type": "ping"})
    assert (await ws.receive_json(timeout=5))["type"] == "pong"
    await ws.close()


async def test_oversized_frame_closes_only_that_client(client: Any) -> None:
    """A frame over the size limit closes that socket; the hub forgets it and others are unaffected."""
    other = await connect(client)
    ws = await connect(client)
    await ws.send_str(json.dumps({"type": "ping", "pad": "x" * (128 * 1024)}))
    msg = await ws.receive(timeout=5)
    assert msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.CLOSING)
    await wait_for(lambda: len(client.app[HUB].clients) == 1)
    await other.send_json({"type": "ping"})
    assert (await other.receive_json(timeout=5))["type"] == "pong"
    await other.close()


async def test_emit_reaches_every_client(client: Any) -> None:
    """agent.emit(type, data) reaches every connected client, in order."""
    sockets = [await connect(client) for _ in range(3)]
    for i in range(5):
        client.agent.emit("job:progress", {"job_id": 7, "progress": i / 4, "n": i})
    for ws in sockets:
        got = [await ws.receive_json(timeout=5) for _ in range(5)]
        for msg in got:
            check_envelope(msg)
        assert [m["type"] for m in got] == ["job:progress"] * 5
        assert [m["data"]["n"] for m in got] == [0, 1, 2, 3, 4]
        assert got[-1]["data"]["progress"] == 1.0
    for ws in sockets:
        await ws.close()


async def test_emit_also_reaches_listeners(client: Any) -> None:
    """In-process listeners see the same events as /ws clients."""
    seen: list[tuple[str, dict[str, Any]]] = []
    client.agent.events.subscribe(lambda t, d: seen.append((t, d)))
    client.agent.emit("movie:updated", {"id": 3})
    assert seen == [("movie:updated", {"id": 3})]


async def test_emit_without_clients_is_harmless(client: Any) -> None:
    """Broadcasting with nobody connected does nothing and raises nothing."""
    client.agent.emit("queue:stats", {"pending": 0, "running": 0, "failed": 0})
    assert client.app[HUB].clients == {}


@contextlib.asynccontextmanager
async def raw_socket(client: Any) -> AsyncIterator[aiohttp.ClientWebSocketResponse]:
    """A /ws connection in its own session, so the test decides when (and whether) it reads."""
    async with aiohttp.ClientSession() as session:
        ws = await session.ws_connect(client.make_url("/ws"), params={"apikey": API_KEY}, max_msg_size=0)
        try:
            yield ws
        finally:
            await ws.close()


async def test_slow_client_gets_resync_and_is_dropped(client: Any) -> None:
    """A client that stops reading is sent resync and dropped; a reading client gets every event in order."""
    hub = client.app[HUB]
    hub.queue_size = 8
    pad = "p" * 32 * 1024
    fast = await connect(client)
    received: list[int] = []
    progress = asyncio.Condition()

    async def read_fast() -> None:
        """Read every frame the fast client is sent, noting its sequence number."""
        while True:
            msg = await fast.receive(timeout=10)
            if msg.type != aiohttp.WSMsgType.TEXT:
                return
            body = json.loads(msg.data)
            if body["type"] == "x":
                async with progress:
                    received.append(body["data"]["i"])
                    progress.notify_all()

    async with raw_socket(client) as slow:
        hello = await slow.receive_json(timeout=5)
        slow_id = hello["data"]["clientId"]
        reader = asyncio.create_task(read_fast())
        sent = 0

        async def emit_paced() -> None:
            """Emit one event, never letting the fast client fall more than half a queue behind."""
            nonlocal sent
            client.agent.emit("x", {"i": sent, "pad": pad})
            sent += 1
            async with progress:
                caught_up = progress.wait_for(lambda: sent - len(received) <= hub.queue_size // 2)
                await asyncio.wait_for(caught_up, 10)

        # The slow client never reads: its buffers fill, its queue overflows, and it is dropped.
        while slow_id in hub.clients:
            assert sent < 5000, "slow client was never dropped"
            await emit_paced()
        assert sent > hub.queue_size
        dropped_at = sent
        for _ in range(20):
            await emit_paced()
        await wait_for(lambda: len(received) == sent)
        assert received == list(range(sent))
        assert list(hub.clients) != [] and slow_id not in hub.clients

        # Reading now, the slow client finds an in-order prefix, then resync, then the close.
        frames: list[dict[str, Any]] = []
        while True:
            msg = await slow.receive(timeout=10)
            if msg.type != aiohttp.WSMsgType.TEXT:
                break
            frames.append(json.loads(msg.data))
        assert msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
        assert frames and frames[-1]["type"] == "resync"
        check_envelope(frames[-1])
        numbers = [f["data"]["i"] for f in frames[:-1]]
        assert numbers == list(range(len(numbers)))
        assert len(numbers) < dropped_at
    await fast.close()
    await asyncio.wait_for(reader, 5)


def test_default_queue_is_bounded() -> None:
    """The per-client send queue has a finite default size."""
    assert 16 <= SEND_QUEUE <= 10_000
