"""What the rest of the agent may ask of the store, whichever backend holds it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol, TypeVar

T = TypeVar("T")


class Database(Protocol):
    """The store: whole operations `fn(conn, ...)` run on a connection of their own (SQLite or PostgreSQL).

    `write` runs fn in one transaction with the store's single-writer guarantee; `write_concurrent`
    without it (the queue's claim, which is safe against other agents by itself); `read` sees the
    latest commits. `listen` calls back on each NOTIFY of a channel (PostgreSQL; never on SQLite).
    """

    dialect: str
    path: Path | str
    full_since: float | None
    on_full: Callable[[str | None], None] | None

    async def open(self) -> None: ...
    async def close(self) -> None: ...
    async def write(self, fn: Callable[..., T], *args: Any) -> T: ...
    async def write_concurrent(self, fn: Callable[..., T], *args: Any) -> T: ...
    async def read(self, fn: Callable[..., T], *args: Any) -> T: ...
    async def fetchall(self, sql: str, params: tuple | dict = ()) -> list[Any]: ...
    async def fetchone(self, sql: str, params: tuple | dict = ()) -> Any: ...
    async def execute(self, sql: str, params: tuple | dict = ()) -> int: ...
    def listen(self, channel: str, callback: Callable[[str], None]) -> None: ...
