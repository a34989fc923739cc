"""Kodi notifications over its WebSocket (port 9090): reconnect with backoff, poll while it is closed."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Final

import aiohttp
from yarl import URL

from agent.errors import UserError
from agent.players import PlayerTimeout

log = logging.getLogger(__name__)

DEFAULT_WS_PORT: Final = 9090
CONNECT_TIMEOUT: Final = 10.0  # seconds to open the socket before counting the attempt as failed
HEARTBEAT: Final = 30.0  # ping interval so a dead Kodi is noticed
BUSY_POLL_INTERVAL: Final = 1.0  # how often wait_for asks `busy()` while the socket is down
IDLE_POLLS_TO_FINISH: Final = 2  # consecutive "not busy" answers that count as finished

EventHandler = Callable[[str, dict[str, Any]], Awaitable[None]]
Poller = Callable[[], Awaitable[None]]
BusyProbe = Callable[[], Awaitable[bool]]


def kodi_ws_url(http_url: str, port: int = DEFAULT_WS_PORT) -> str:
    """Derive Kodi's notification socket `ws://host:port/jsonrpc` from its HTTP JSON-RPC url."""
    url = URL(http_url)
    if not url.host:
        raise UserError(f"cannot find a host in Kodi url {http_url!r}")
    return str(URL.build(scheme="ws", host=url.host, port=int(port), path="/jsonrpc"))


class KodiEventListener:
    """Keeps one notification socket to Kodi open and hands each notification to `on_event`."""

    def __init__(
        self,
        name: str,
        ws_url: str,
        session: aiohttp.ClientSession,
        on_event: EventHandler,
        poll: Poller | None = None,
        poll_interval: float = 5.0,
        backoff_start: float = 1.0,
        backoff_max: float = 60.0,
        connect_timeout: float = CONNECT_TIMEOUT,
    ) -> None:
        self.name = name
        self.ws_url = ws_url
        self._session = session
        self._on_event = on_event
        self._poll = poll
        self._poll_interval = poll_interval
        self._backoff_start = backoff_start
        self._backoff_max = backoff_max
        self._connect_timeout = connect_timeout
        self._task: asyncio.Task[None] | None = None
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._stopping = asyncio.Event()
        self._up = asyncio.Event()
        self._down = asyncio.Event()
        self._down.set()
        self._waiters: dict[str, list[asyncio.Future[dict[str, Any]]]] = {}
        self._next_poll = 0.0
        self.connects = 0  # successful connections so far, for status pages and tests
        self.last_error = ""

    @property
    def connected(self) -> bool:
        """Whether the notification socket is open right now."""
        return self._up.is_set()

    def start(self) -> None:
        """Start the background connect/read/poll loop."""
        if self._task is not None and not self._task.done():
            return
        self._stopping.clear()
        self._task = asyncio.create_task(self._run(), name=f"kodi-events-{self.name}")

    async def stop(self) -> None:
        """Stop the loop and close the socket; pending waiters time out on their own."""
        self._stopping.set()
        if self._ws is not None:
            await self._ws.close()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        self._set_connected(False)

    async def wait_connected(self) -> None:
        """Wait until the socket is open (wrap in asyncio.timeout)."""
        await self._up.wait()

    async def wait_disconnected(self) -> None:
        """Wait until the socket is closed (wrap in asyncio.timeout)."""
        await self._down.wait()

    def wait_for(
        self, method: str, timeout: float, busy: BusyProbe | None = None,
        busy_interval: float = BUSY_POLL_INTERVAL,
    ) -> Awaitable[dict[str, Any]]:
        """Register now, await later: the next `method` notification's params.

        Call it *before* triggering the action (e.g. the scan) so the notification cannot be missed.
        With `busy` (e.g. KodiClient.is_scanning), a closed socket falls back to polling it: the wait
        ends once it reports busy then idle, or idle twice in a row. Raises PlayerTimeout.
        """
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._waiters.setdefault(method, []).append(future)
        return self._await(method, future, timeout, busy, busy_interval)

    async def _await(
        self, method: str, future: asyncio.Future[dict[str, Any]], limit: float,
        busy: BusyProbe | None, busy_interval: float,
    ) -> dict[str, Any]:
        """Wait for the future, or for the busy probe to settle while the socket is down."""
        try:
            async with asyncio.timeout(limit):
                if busy is None:
                    return await future
                while self.connected:
                    down = asyncio.ensure_future(self._down.wait())
                    try:
                        await asyncio.wait([future, down], return_when=asyncio.FIRST_COMPLETED)
                    finally:
                        down.cancel()
                    if future.done():
                        return future.result()
                # The socket is down: a notification may never come, so poll until Kodi is idle.
                seen_busy, idle = False, 0
                while True:
                    if await busy():
                        seen_busy, idle = True, 0
                    else:
                        idle += 1
                        if seen_busy or idle >= IDLE_POLLS_TO_FINISH:
                            return {}
                    await asyncio.wait([future], timeout=busy_interval)
                    if future.done():
                        return future.result()
        except TimeoutError:
            raise PlayerTimeout(self.name, f"no {method} from Kodi within {limit:g} s") from None
        finally:
            waiting = self._waiters.get(method, [])
            if future in waiting:
                waiting.remove(future)
            future.cancel()

    # -- loop ---------------------------------------------------------------------------------------

    async def _run(self) -> None:
        """Connect, read until closed, then poll and back off before the next attempt."""
        delay = self._backoff_start
        while not self._stopping.is_set():
            if await self._connect_and_read():
                delay = self._backoff_start
            if self._stopping.is_set():
                break
            await self._idle(delay)
            delay = min(delay * 2, self._backoff_max)

    async def _connect_and_read(self) -> bool:
        """Hold one connection; return whether it was ever open."""
        try:
            async with asyncio.timeout(self._connect_timeout):
                ws = await self._session.ws_connect(self.ws_url, heartbeat=HEARTBEAT)
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            self.last_error = str(exc) or type(exc).__name__
            log.debug("kodi %s: notification socket %s not open: %s", self.name, self.ws_url, self.last_error)
            return False
        self._ws = ws
        self.connects += 1
        self._next_poll = 0.0
        self._set_connected(True)
        log.info("kodi %s: listening for notifications on %s", self.name, self.ws_url)
        try:
            async for msg in ws:
                if msg.type == aiohttp.WSMsgType.TEXT:
                    for obj in _decode_all(msg.data):
                        await self._dispatch(obj)
                elif msg.type == aiohttp.WSMsgType.ERROR:
                    self.last_error = str(ws.exception())
                    break
        except (aiohttp.ClientError, OSError) as exc:
            self.last_error = str(exc) or type(exc).__name__
        finally:
            self._set_connected(False)
            self._ws = None
            await ws.close()
            log.info("kodi %s: notification socket closed; polling until it reopens", self.name)
        return True

    async def _dispatch(self, obj: Any) -> None:
        """Resolve waiters for a notification, then hand it to on_event (errors are logged, not fatal)."""
        if not isinstance(obj, dict) or "method" not in obj or "id" in obj:
            return
        method = str(obj["method"])
        params = obj.get("params") if isinstance(obj.get("params"), dict) else {}
        for future in self._waiters.pop(method, []):
            if not future.done():
                future.set_result(params)
        try:
            await self._on_event(method, params)
        except Exception:
            log.exception("kodi %s: handler for %s failed", self.name, method)

    async def _idle(self, delay: float) -> None:
        """Wait `delay` seconds before reconnecting, calling poll() every poll_interval meanwhile."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + delay
        while not self._stopping.is_set():
            now = loop.time()
            if self._poll is not None and now >= self._next_poll:
                self._next_poll = now + self._poll_interval
                try:
                    await self._poll()
                except Exception as exc:
                    log.warning("kodi %s: poll failed: %s", self.name, exc)
            wake = deadline if self._poll is None else min(deadline, self._next_poll)
            remaining = wake - loop.time()
            if loop.time() >= deadline:
                return
            if remaining > 0:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(remaining):
                        await self._stopping.wait()

    def _set_connected(self, up: bool) -> None:
        """Flip the connected/disconnected events together."""
        if up:
            self._down.clear()
            self._up.set()
        else:
            self._up.clear()
            self._down.set()


def _decode_all(text: str) -> list[Any]:
    """Decode one or more concatenated JSON objects (Kodi may send several in one frame)."""
    decoder = json.JSONDecoder()
    out: list[Any] = []
    pos, end = 0, len(text)
    while pos < end:
        while pos < end and text[pos].isspace():
            pos += 1
        if pos >= end:
            break
        try:
            obj, pos = decoder.raw_decode(text, pos)
        except ValueError:
            log.warning("ignoring a Kodi notification that is not JSON: %r", text[pos : pos + 200])
            break
        out.append(obj)
    return out
