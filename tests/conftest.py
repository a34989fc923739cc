"""Shared fixtures: a temp library + config, a real agent app on loopback, a real database."""

from __future__ import annotations

import asyncio
import ipaddress
import os
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from pgcluster import session_cluster

from agent.clock import FakeClock
from agent.config import Config, parse_config
from agent.root import open_agent
from agent.services import Services
from agent.store import Database, PgDatabase, SqliteDatabase
from agent.web.keys import SERVICES

API_KEY = "test-key-0123456789"


@pytest.fixture(autouse=True)
def _no_internet(monkeypatch: pytest.MonkeyPatch) -> None:
    """Refuse any outbound connection that is not to loopback: tests never reach the internet."""
    real_connect = socket.socket.connect

    def guarded(self: socket.socket, address: Any) -> Any:
        host = address[0] if isinstance(address, tuple) else address
        if isinstance(host, str) and self.family in (socket.AF_INET, socket.AF_INET6) and not (
                host.startswith("127.") or host in ("::1", "localhost")):
            raise OSError(f"test tried to reach {host}: no internet in tests")
        return real_connect(self, address)

    monkeypatch.setattr(socket.socket, "connect", guarded)
    real_getaddrinfo = socket.getaddrinfo

    def resolve(host: Any, *args: Any, **kwargs: Any) -> Any:
        """Numbers and localhost resolve; any other name is refused without asking DNS (as offline)."""
        name = host.decode() if isinstance(host, bytes) else host
        if name is None or name == "localhost" or _is_address(name):
            return real_getaddrinfo(host, *args, **kwargs)
        raise socket.gaierror(socket.EAI_NONAME, f"test tried to resolve {name}: no DNS in tests")

    monkeypatch.setattr(socket, "getaddrinfo", resolve)


def _is_address(name: str) -> bool:
    """True for a literal IPv4 or IPv6 address (nothing to look up)."""
    try:
        ipaddress.ip_address(name.split("%")[0])
    except ValueError:
        return False
    return True


def write_config(tmp_path: Path, extra: dict[str, Any] | None = None, libraries: list[dict] | None = None) -> Path:
    """Write a config with a Movies and a TV library under tmp_path; returns the file path."""
    movies, tv = tmp_path / "media" / "movies", tmp_path / "media" / "tv"
    movies.mkdir(parents=True, exist_ok=True)
    tv.mkdir(parents=True, exist_ok=True)
    data: dict[str, Any] = {
        "server": {"host": "127.0.0.1", "port": 7979, "api_key": API_KEY},
        "data_dir": str(tmp_path / "data"),
        "log_level": "info",
        "libraries": libraries if libraries is not None else [
            {"name": "Movies", "kind": "movies", "path": str(movies), "watch": "off"},
            {"name": "TV", "kind": "series", "path": str(tv), "watch": "off"},
        ],
        # the same NFOs whether or not this machine has ffmpeg; tests of stream details turn it on
        "probe": {"ffprobe": "off"},
    }
    if ON_POSTGRES:  # METARR_TEST_STORE=postgresql: the whole suite on a fresh PostgreSQL database each
        data["store"] = {"url": pg_database()}
    for key, value in (extra or {}).items():
        if isinstance(value, dict) and isinstance(data.get(key), dict):
            data[key] = {**data[key], **value}
        else:
            data[key] = value
    path = tmp_path / "agent.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def make_config(tmp_path: Path, extra: dict[str, Any] | None = None, libraries: list[dict] | None = None) -> Config:
    """A validated Config for a temp library."""
    path = write_config(tmp_path, extra, libraries)
    return parse_config(path.read_text(encoding="utf-8"), path)


@pytest.fixture
def config(tmp_path: Path) -> Config:
    """A config with empty Movies and TV libraries under tmp_path."""
    return make_config(tmp_path)


@pytest.fixture
async def fake_url(aiohttp_server: Any, fake: Any) -> str:
    """The module's `fake` (a FakeTmdb) served on loopback; its base URL."""
    server = await aiohttp_server(fake.app)
    return str(server.make_url("")).rstrip("/")


@pytest.fixture
def clock() -> FakeClock:
    """A clock tests move by hand."""
    return FakeClock()


# METARR_TEST_STORE=postgresql runs every test that uses these fixtures on PostgreSQL (a throwaway cluster,
# tests/pgcluster.py) instead of SQLite: the check that the store's SQL holds on both. CI runs SQLite, plus
# tests/test_store_contract.py and tests/test_agents_shared.py on both.
ON_POSTGRES = os.environ.get("METARR_TEST_STORE") == "postgresql"


def pg_database() -> str:
    """A fresh, empty database on the session's throwaway PostgreSQL cluster; skips the test without one."""
    cluster = session_cluster()
    if cluster is None:
        pytest.skip("PostgreSQL binaries (initdb, pg_ctl) not installed")
    return cluster.new_database()


@pytest.fixture
def pg_url() -> str:
    """The URL of a fresh PostgreSQL database (the test is skipped when PostgreSQL is not installed)."""
    return pg_database()


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    """A real, migrated SQLite database file (a PostgreSQL database with METARR_TEST_STORE=postgresql)."""
    database: Database = (PgDatabase(pg_database()) if ON_POSTGRES
                          else SqliteDatabase(tmp_path / "data" / "metarr.sqlite"))
    await database.open()
    yield database
    await database.close()


def open_test_agent(cfg: Config, clock: FakeClock | None = None, **kw: Any) -> Any:
    """open_agent with the test key, workers not started (drain with run_until_idle), nothing in the background."""
    kw.setdefault("start_workers", False)
    kw.setdefault("background", False)
    return open_agent(cfg, clock, api_key=API_KEY, **kw)


def only_scan(services: Services) -> None:
    """Unregister every job handler but `scan` (tests that look at what a scan queues, not at its follow-ups)."""
    services.queue.handlers = {k: v for k, v in services.queue.handlers.items() if k == "scan"}


@pytest.fixture
async def make_client(aiohttp_client: Any) -> Callable[..., Awaitable[Any]]:
    """Start the real app for a config on 127.0.0.1; `client.agent` is its running Services."""

    async def factory(cfg: Config, clock: FakeClock | None = None, start_workers: bool = False) -> Any:
        from agent.web.app import create_app

        client = await aiohttp_client(create_app(cfg, clock, api_key=API_KEY, start_workers=start_workers))
        client.agent = client.app[SERVICES]
        return client

    return factory


@pytest.fixture
async def client(make_client: Callable[..., Awaitable[Any]], config: Config) -> Any:
    """A test client for the app over an empty library (workers not started: drain with run_until_idle)."""
    return await make_client(config)


HEADERS = {"X-Api-Key": API_KEY}


async def wait_for(predicate: Callable[[], Any], timeout: float = 5.0, interval: float = 0.02) -> Any:
    """Poll a sync or async predicate until truthy, or fail after the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        await asyncio.sleep(interval)


def free_port() -> int:
    """A free TCP port on loopback."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def subprocess_env() -> dict[str, str]:
    """Environment for running the agent as a subprocess."""
    env = dict(os.environ)
    env.pop("METARR_API_KEY", None)
    return env
