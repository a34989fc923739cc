"""PlayerGroup failover with real Kodi clients against fake Kodis on 127.0.0.1."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from fakes.kodi import FakeKodi, start_fake_kodi

from agent.errors import UserError
from agent.players import PlayerAuthError, PlayerGroupFailed, PlayerUnreachable
from agent.players.group import PlayerGroup, build_groups
from agent.players.kodi import KodiClient

MATRIX = "/media/Movies/The Matrix (1999)/The Matrix (1999).mkv"
MATRIX_DIR = "/media/Movies/The Matrix (1999)/"


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    """One client session per test."""
    async with aiohttp.ClientSession() as s:
        yield s


def dead_url() -> str:
    """A loopback JSON-RPC url nothing listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}/jsonrpc"


def kodi(name: str, url: str, session: aiohttp.ClientSession, **kw: Any) -> KodiClient:
    """A fast-failing client."""
    return KodiClient(name, url, session=session, retries=1, retry_backoff=0.01, **kw)


async def test_first_reachable_member_is_told(aiohttp_server: Any, session: aiohttp.ClientSession) -> None:
    """With both up, only the first member gets the refresh."""
    first: FakeKodi = await start_fake_kodi(aiohttp_server, with_ws=False)
    second: FakeKodi = await start_fake_kodi(aiohttp_server, with_ws=False)
    for fake in (first, second):
        fake.add_item("movie", MATRIX, "The Matrix")
    group = PlayerGroup("house", [kodi("a", first.url, session), kodi("b", second.url, session)])
    assert await group.run(lambda p: p.publish_item("movie", MATRIX, MATRIX_DIR)) == ("a", "refreshed")
    assert len(first.calls_to("VideoLibrary.RefreshMovie")) == 1
    assert second.calls == []


async def test_failover_to_second_member(aiohttp_server: Any, session: aiohttp.ClientSession) -> None:
    """First member down: the second is told."""
    second: FakeKodi = await start_fake_kodi(aiohttp_server, with_ws=False)
    second.add_file(MATRIX, "The Matrix")
    group = PlayerGroup("house", [kodi("a", dead_url(), session), kodi("b", second.url, session)])
    assert await group.run(lambda p: p.publish_item("movie", MATRIX, MATRIX_DIR)) == ("b", "scanned")
    assert second.calls_to("VideoLibrary.Scan")[0].params["directory"] == MATRIX_DIR


async def test_all_down_names_each_member(session: aiohttp.ClientSession) -> None:
    """Every member down: one retryable error listing each member's failure."""
    group = PlayerGroup("house", [kodi("a", dead_url(), session), kodi("b", dead_url(), session)])
    with pytest.raises(PlayerGroupFailed) as info:
        await group.run(lambda p: p.ping())
    message = str(info.value)
    assert "'house'" in message and "a: cannot reach Kodi" in message and "b: cannot reach Kodi" in message
    assert set(info.value.failures) == {"a", "b"}
    assert isinstance(info.value, PlayerUnreachable) and info.value.delay


async def test_auth_error_is_not_failed_over(aiohttp_server: Any, session: aiohttp.ClientSession) -> None:
    """A reachable member with wrong credentials is a config error, raised as is."""
    first: FakeKodi = await start_fake_kodi(aiohttp_server, with_ws=False, username="kodi", password="right")
    second: FakeKodi = await start_fake_kodi(aiohttp_server, with_ws=False)
    group = PlayerGroup(
        "house",
        [kodi("a", first.url, session, username="kodi", password="wrong"), kodi("b", second.url, session)],
    )
    with pytest.raises(PlayerAuthError, match="username/password"):
        await group.run(lambda p: p.ping())
    assert second.calls == []


async def test_build_groups_keeps_order_and_singles(session: aiohttp.ClientSession) -> None:
    """Grouped players share a group in order; ungrouped ones are groups of one."""
    a, b, c = (kodi(n, dead_url(), session) for n in "abc")
    groups = build_groups([("house", a), (None, c), ("house", b)])
    assert [(g.name, [m.name for m in g.members]) for g in groups] == [("house", ["a", "b"]), ("c", ["c"])]
    with pytest.raises(UserError, match="used twice"):
        build_groups([(None, c), ("c", a)])
    with pytest.raises(UserError, match="no members"):
        PlayerGroup("empty", [])
    with pytest.raises(UserError, match="twice"):
        PlayerGroup("dup", [a, a])
