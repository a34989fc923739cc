"""The /ws hub: a writer task per client fed by a bounded queue; slow clients get `resync` and are dropped."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
from typing import Any, Final

from aiohttp import WSCloseCode, WSMsgType, web

from agent import safejson
from agent.clock import utc_iso_now
from agent.errors import UserError

log = logging.getLogger("agent.ws")

SEND_QUEUE = 256  # frames buffered per client before it is considered too slow
HEARTBEAT = 30.0  # WS ping interval; a client that does not answer is dropped
OPEN_SOCKET: Final = web.RequestKey("open_websocket", web.WebSocketResponse)  # the upgraded socket, once prepared


async def close_failed(ws: web.WebSocketResponse) -> None:
    """Close a socket whose handler failed with 1011 (internal error); it may already be gone."""
    with contextlib.suppress(Exception):
        await ws.close(code=WSCloseCode.INTERNAL_ERROR, message=b"internal error; see the agent's log")


def frame(type_: str, data: dict[str, Any] | None = None) -> str:
    """The DESIGN section 6 envelope."""
    return json.dumps({"type": type_, "data": data or {}, "timestamp": utc_iso_now()}, default=str)


class Client:
    """One connected browser: its socket, send queue and writer task."""

    def __init__(self, client_id: str, ws: web.WebSocketResponse, maxsize: int) -> None:
        self.id = client_id
        self.ws = ws
        self.queue: asyncio.Queue[str | None] = asyncio.Queue(maxsize)
        self.dropped = False
        self.task: asyncio.Task | None = None

    async def writer(self) -> None:
        """Send queued frames in order until told to stop."""
        while True:
            text = await self.queue.get()
            if text is None or self.ws.closed:
                return
            try:
                await self.ws.send_str(text)
            except (ConnectionError, RuntimeError):
                return


class Hub:
    """Broadcasts agent events to every connected /ws client."""

    def __init__(self, queue_size: int = SEND_QUEUE, heartbeat: float = HEARTBEAT) -> None:
        self.clients: dict[str, Client] = {}
        self.queue_size = queue_size
        self.heartbeat = heartbeat
        self._ids = itertools.count(1)
        self._drops: set[asyncio.Task] = set()  # strong references: the loop keeps only weak ones

    def broadcast(self, type_: str, data: dict[str, Any] | None = None) -> None:
        """Queue an event for every client without waiting on any of them."""
        if not self.clients:
            return
        text = frame(type_, data)
        for client in list(self.clients.values()):
            self._offer(client, text)

    def _offer(self, client: Client, text: str) -> None:
        """Put a frame on a client's queue; on overflow tell it to resync and drop it."""
        if client.dropped:
            return
        try:
            client.queue.put_nowait(text)
        except asyncio.QueueFull:
            client.dropped = True
            log.warning("ws client %s is too slow; dropping it", client.id)
            task = asyncio.ensure_future(self._drop_slow(client))
            self._drops.add(task)
            task.add_done_callback(self._drops.discard)

    async def _drop_slow(self, client: Client) -> None:
        """Tell a slow client to resync, then close it."""
        self.clients.pop(client.id, None)
        with contextlib.suppress(Exception):
            resync = frame("resync", {"reason": "too many queued events"})
            await asyncio.wait_for(client.ws.send_str(resync), 2.0)
        with contextlib.suppress(Exception):
            await client.ws.close(code=WSCloseCode.TRY_AGAIN_LATER, message=b"too slow; resync")
        if client.task:
            client.task.cancel()

    async def handle(self, request: web.Request) -> web.WebSocketResponse:
        """Serve one /ws connection."""
        ws = web.WebSocketResponse(heartbeat=self.heartbeat, max_msg_size=64 * 1024)
        await ws.prepare(request)
        request[OPEN_SOCKET] = ws  # from here on an error is a close code, never an HTTP reply
        client = Client(f"c{next(self._ids)}", ws, self.queue_size)
        self.clients[client.id] = client
        client.task = asyncio.create_task(client.writer(), name=f"ws-{client.id}")
        self._offer(client, frame("connection:established", {"clientId": client.id}))
        try:
            async for msg in ws:
                if msg.type == WSMsgType.TEXT:
                    self._on_text(client, msg.data)
                elif msg.type == WSMsgType.BINARY:
                    refusal = {"error": "binary frames are not supported; send JSON text"}
                    self._offer(client, frame("error", refusal))
        except Exception:
            log.exception("ws client %s: serving it failed; closing it", client.id)
            await close_failed(ws)
        finally:
            self.clients.pop(client.id, None)
            with contextlib.suppress(asyncio.QueueFull):
                client.queue.put_nowait(None)
            if client.task and not client.task.done():
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await asyncio.wait_for(client.task, 1.0)
        return ws

    def _on_text(self, client: Client, text: str) -> None:
        """Answer a client frame; malformed ones get an error frame and the connection stays."""
        try:
            msg = safejson.loads(text, "frame")
        except ValueError:
            self._offer(client, frame("error", {"error": "frame is not valid JSON"}))
            return
        except UserError as exc:  # NaN, a lone surrogate, nesting deep enough for a RecursionError
            self._offer(client, frame("error", {"error": f"frame is not usable JSON: {exc.message}"}))
            return
        if not isinstance(msg, dict) or not isinstance(msg.get("type"), str):
            self._offer(client, frame("error", {"error": 'frame must be a JSON object with a string "type"'}))
            return
        if msg["type"] == "ping":
            self._offer(client, frame("pong"))
        else:
            self._offer(client, frame("error", {"error": f"unknown message type {msg['type']!r}"}))

    async def close_all(self) -> None:
        """Close every client with GOING_AWAY (server shutdown)."""
        for client in list(self.clients.values()):
            with contextlib.suppress(Exception):
                await client.ws.close(code=WSCloseCode.GOING_AWAY, message=b"server shutdown")
        self.clients.clear()
