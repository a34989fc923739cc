"""A failed startup closes what it had opened, so the process can exit."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from conftest import API_KEY, make_config

from agent import root
from agent.store import Database
from agent.web.app import create_app


def record_opened(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """Keep the database and HTTP session open_agent builds, to check they were closed."""
    opened: dict[str, Any] = {}

    real_open = root.open_database

    def recorded_database(target: str) -> Database:
        opened["db"] = db = real_open(target)
        return db

    real = aiohttp.ClientSession

    def recorded_session(*args: Any, **kwargs: Any) -> aiohttp.ClientSession:
        opened["http"] = session = real(*args, **kwargs)
        return session

    monkeypatch.setattr(root, "open_database", recorded_database)
    monkeypatch.setattr(root.aiohttp, "ClientSession", recorded_session)
    return opened


async def test_failed_startup_closes_the_database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    opened = record_opened(monkeypatch)

    def broken(services: Any) -> None:
        raise ImportError("simulated broken handler module")

    monkeypatch.setattr(root, "register_all", broken)
    before = {t.ident for t in threading.enumerate()}
    server = TestServer(create_app(make_config(tmp_path), api_key=API_KEY), host="127.0.0.1")
    with pytest.raises(ImportError, match="simulated"):
        await server.start_server()
    await server.close()
    assert opened["db"]._writer is None and opened["db"]._reader is None
    assert opened["http"].closed
    leftover = [t for t in threading.enumerate() if t.ident not in before and not t.daemon]
    for thread in leftover:  # a closed connection's thread may still be returning: give it a deadline
        thread.join(timeout=5)
    assert [t for t in leftover if t.is_alive()] == []


async def test_failed_config_sync_closes_the_database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A database that opens but refuses the first write (read-only, full) is closed again: no thread is left.

    This is what kept `serve` alive forever on an immutable database: the start failed, the process
    printed the error, and the database's threads never ended.
    """
    import sqlite3

    opened = record_opened(monkeypatch)

    def readonly(conn: sqlite3.Connection, *args: object) -> None:
        raise sqlite3.OperationalError("attempt to write a readonly database")

    monkeypatch.setattr(root, "mirror_config", readonly)
    before = {t.ident for t in threading.enumerate()}
    server = TestServer(create_app(make_config(tmp_path), api_key=API_KEY), host="127.0.0.1")
    with pytest.raises(sqlite3.OperationalError, match="readonly"):
        await server.start_server()
    await server.close()
    assert opened["db"]._writer is None and opened["db"]._reader is None
    leftover = [t for t in threading.enumerate() if t.ident not in before and not t.daemon]
    for thread in leftover:
        thread.join(timeout=5)
    assert [t for t in leftover if t.is_alive()] == []
