"""A failed startup closes what it had opened, so the process can exit."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from aiohttp.test_utils import TestServer
from conftest import make_config, new_agent

from agent.web.app import create_app


async def test_failed_startup_closes_the_database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    agent = new_agent(make_config(tmp_path))

    def broken() -> None:
        raise ImportError("simulated broken handler module")

    monkeypatch.setattr(agent, "register_jobs", broken)
    before = {t.ident for t in threading.enumerate()}
    server = TestServer(create_app(agent), host="127.0.0.1")
    with pytest.raises(ImportError, match="simulated"):
        await server.start_server()
    await server.close()
    assert agent.db._writer is None and agent.db._reader is None
    assert agent.http is None
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

    from agent import service

    agent = new_agent(make_config(tmp_path))

    def readonly(conn: sqlite3.Connection, *args: object) -> None:
        raise sqlite3.OperationalError("attempt to write a readonly database")

    monkeypatch.setattr(service, "_sync_config", readonly)
    before = {t.ident for t in threading.enumerate()}
    server = TestServer(create_app(agent), host="127.0.0.1")
    with pytest.raises(sqlite3.OperationalError, match="readonly"):
        await server.start_server()
    await server.close()
    assert agent.db._writer is None and agent.db._reader is None
    leftover = [t for t in threading.enumerate() if t.ident not in before and not t.daemon]
    for thread in leftover:
        thread.join(timeout=5)
    assert [t for t in leftover if t.is_alive()] == []
