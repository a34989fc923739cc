"""JellyfinClient against the fake Jellyfin on 127.0.0.1."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from fakes.jellyfin import FakeJellyfin, start_fake_jellyfin

from agent import __version__
from agent.errors import UserError
from agent.players import PlayerAuthError, PlayerUnreachable
from agent.players.jellyfin import JellyfinClient, authorization_header

MATRIX = "/movies/The Matrix (1999)/The Matrix (1999).mkv"


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    """One client session per test."""
    async with aiohttp.ClientSession() as s:
        yield s


@pytest.fixture
async def jellyfin(aiohttp_server: Any) -> FakeJellyfin:
    """A fake Jellyfin accepting the key `secret-key`."""
    return await start_fake_jellyfin(aiohttp_server, api_key="secret-key")


def client(fake: FakeJellyfin, session: aiohttp.ClientSession, api_key: str = "secret-key") -> JellyfinClient:
    """A client for the fake."""
    return JellyfinClient("den", fake.url, api_key, session=session)


def test_authorization_header_format() -> None:
    """The header is the MediaBrowser form with token, client, device, device id and version."""
    assert authorization_header("abc") == (
        'MediaBrowser Token="abc", Client="Metarr Agent", Device="metarr-agent", '
        f'DeviceId="metarr-agent", Version="{__version__}"'
    )


async def test_media_updated_posts_updates_with_header(
    jellyfin: FakeJellyfin, session: aiohttp.ClientSession
) -> None:
    """POST /Library/Media/Updated carries the exact body and the MediaBrowser header."""
    await client(jellyfin, session).media_updated(
        [(MATRIX, "Created"), ("/movies/Old (1990)/Old.mkv", "Deleted")]
    )
    request = jellyfin.requests[-1]
    assert (request.method, request.path) == ("POST", "/Library/Media/Updated")
    assert request.body == {
        "Updates": [
            {"Path": MATRIX, "UpdateType": "Created"},
            {"Path": "/movies/Old (1990)/Old.mkv", "UpdateType": "Deleted"},
        ]
    }
    assert request.authorization == authorization_header("secret-key")


async def test_media_updated_validates_input(jellyfin: FakeJellyfin, session: aiohttp.ClientSession) -> None:
    """Unknown update types and empty paths are refused before any request; no updates sends nothing."""
    c = client(jellyfin, session)
    with pytest.raises(UserError, match="unknown Jellyfin update type 'Renamed'"):
        await c.media_updated([(MATRIX, "Renamed")])
    with pytest.raises(UserError, match="needs a path"):
        await c.media_updated([("", "Created")])
    await c.media_updated([])
    assert jellyfin.requests == []


async def test_wrong_key_is_a_clear_auth_error(
    jellyfin: FakeJellyfin, session: aiohttp.ClientSession
) -> None:
    """HTTP 401 says the API key was rejected."""
    with pytest.raises(PlayerAuthError, match="rejected the API key") as info:
        await client(jellyfin, session, api_key="wrong").media_updated([(MATRIX, "Modified")])
    assert info.value.player == "den"
    with pytest.raises(PlayerAuthError):
        await client(jellyfin, session, api_key="wrong").sessions()


async def test_sessions_report_now_playing(jellyfin: FakeJellyfin, session: aiohttp.ClientSession) -> None:
    """Only sessions with a NowPlayingItem come back; ticks become seconds."""
    jellyfin.play(MATRIX, "The Matrix", position=1800.5, runtime=8160, paused=True)
    playing = await client(jellyfin, session).sessions()
    assert len(playing) == 1
    assert playing[0]["path"] == MATRIX and playing[0]["name"] == "The Matrix"
    assert playing[0]["position"] == 1800.5 and playing[0]["runtime"] == 8160
    assert playing[0]["paused"] is True and playing[0]["user"] == "alice"
    assert jellyfin.requests[-1].authorization == authorization_header("secret-key")


async def test_ping_reads_public_info(jellyfin: FakeJellyfin, session: aiohttp.ClientSession) -> None:
    """GET /System/Info/Public answers with the server's name and version."""
    info = await client(jellyfin, session).ping()
    assert info["ServerName"] == "fake"


async def test_unreachable_and_5xx_are_unreachable(
    jellyfin: FakeJellyfin, session: aiohttp.ClientSession
) -> None:
    """A closed port and a 503 both raise PlayerUnreachable."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    closed = JellyfinClient("gone", f"http://127.0.0.1:{port}", "k", session=session)
    with pytest.raises(PlayerUnreachable, match="cannot reach Jellyfin"):
        await closed.ping()
    jellyfin.fail_status = [503]
    with pytest.raises(PlayerUnreachable, match="HTTP 503"):
        await client(jellyfin, session).media_updated([(MATRIX, "Created")])


def test_bad_config_is_refused() -> None:
    """A url without scheme or an empty key is a clear error."""
    with pytest.raises(UserError, match="must start with http"):
        JellyfinClient("den", "jellyfin:8096", "k", session=None)  # type: ignore[arg-type]
    with pytest.raises(UserError, match="api_key"):
        JellyfinClient("den", "http://jellyfin:8096", "", session=None)  # type: ignore[arg-type]
