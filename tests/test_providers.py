"""The Provider contract, run over every provider against the fake TMDB/fanart.tv server.

Also: the token bucket, Retry-After parsing and the SQLite response cache they share.
"""

from __future__ import annotations

import itertools
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from fakes.images import image_size
from fakes.tmdb import FakeTmdb, sample_fanart_movie, sample_fanart_tv, sample_movie, sample_show

from agent.clock import FakeClock
from agent.errors import PermanentFailure, RetryLater
from agent.providers.base import (
    ART_TYPES,
    THROTTLE_WAIT_MAX,
    ArtworkCandidate,
    HttpProvider,
    Provider,
    parse_retry_after,
)
from agent.providers.fanart import FanartProvider
from agent.providers.ratelimit import TokenBucket
from agent.providers.response_cache import SqliteResponseCache, cache_key
from agent.providers.tmdb import TmdbProvider
from agent.store import Database, SqliteDatabase

OPERATIONS = {"search_movie", "movie", "search_tv", "tv", "episode", "artwork"}


@dataclass
class Harness:
    """How the contract suite drives one provider: its factory and the path its main lookup hits."""

    build: Callable[..., HttpProvider]
    path: str  # the request `artwork("movie", KNOWN)` makes first


KNOWN = {"tmdb_id": 603, "imdb_id": "tt0133093"}
UNKNOWN = {"tmdb_id": 424242, "imdb_id": "tt0424242"}


def _harnesses(fake: FakeTmdb, server: Any) -> dict[str, Harness]:
    """Factories for every provider, pointed at the fake."""

    def tmdb(key: str | None = None, **kw: Any) -> HttpProvider:
        """A TMDB provider."""
        return TmdbProvider(key or fake.api_key, base_url=kw.pop("base_url", str(server.make_url("/3"))),
                            image_base_url=str(server.make_url("/t/p/original")), **kw)

    def fanart(key: str | None = None, **kw: Any) -> HttpProvider:
        """A fanart.tv provider."""
        base_url = kw.pop("base_url", str(server.make_url("/v3")))
        return FanartProvider(key or fake.fanart_key, base_url=base_url, **kw)

    return {"tmdb": Harness(tmdb, "/3/movie/603"), "fanart": Harness(fanart, "/v3/movies/603")}


@pytest.fixture
def fake() -> FakeTmdb:
    """One movie and one show known to both services."""
    return FakeTmdb(
        movies={603: sample_movie()}, shows={1399: sample_show()},
        fanart_movies={603: sample_fanart_movie()}, fanart_tv={121361: sample_fanart_tv()},
    )


@pytest.fixture
async def server(aiohttp_server: Any, fake: FakeTmdb) -> Any:
    """The fake on loopback."""
    return await aiohttp_server(fake.app)


@pytest.fixture(params=["tmdb", "fanart"])
def harness(request: pytest.FixtureRequest, fake: FakeTmdb, server: Any) -> Harness:
    """Each provider in turn."""
    return _harnesses(fake, server)[request.param]


@pytest.fixture
async def provider(harness: Harness) -> AsyncIterator[HttpProvider]:
    """The provider under test, closed afterwards."""
    built = harness.build()
    yield built
    await built.close()


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    """A migrated database file."""
    database = SqliteDatabase(tmp_path / "metarr.sqlite")
    await database.open()
    yield database
    await database.close()


def free_port() -> int:
    """A loopback port nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def test_identity(provider: HttpProvider) -> None:
    """A provider has a name that is an artwork source and declares the operations it implements."""
    assert isinstance(provider, Provider)
    assert provider.name in {"tmdb", "fanart"}
    assert provider.supports <= OPERATIONS and "artwork" in provider.supports


async def test_artwork_candidates_are_well_formed_and_downloadable(provider: HttpProvider) -> None:
    """Every candidate has a known type, this provider as source, and a URL serving a real image."""
    found = await provider.artwork("movie", KNOWN)
    assert found, "the fake knows this movie"
    assert all(isinstance(c, ArtworkCandidate) for c in found)
    assert {c.type for c in found} <= ART_TYPES
    assert {c.source for c in found} == {provider.name}
    assert len({c.url for c in found}) == len(found)
    async with aiohttp.ClientSession() as session:
        for cand in found:
            async with session.get(cand.url) as resp:
                assert resp.status == 200, cand.url
                kind = image_size(await resp.read())
            assert kind is not None, cand.url
            if cand.width and cand.height:
                assert kind[1:] == (cand.width, cand.height)


async def test_unknown_item_has_no_artwork(provider: HttpProvider) -> None:
    """An id the service does not know is an empty answer, not an error."""
    assert await provider.artwork("movie", UNKNOWN) == []


async def test_unsupported_operations_answer_empty_without_requests(
    provider: HttpProvider, fake: FakeTmdb
) -> None:
    """Operations outside `supports` return None/[] and send nothing."""
    calls: dict[str, Callable[[], Awaitable[Any]]] = {
        "search_movie": lambda: provider.search_movie("The Matrix", 1999),
        "movie": lambda: provider.movie(KNOWN),
        "search_tv": lambda: provider.search_tv("Game of Thrones"),
        "tv": lambda: provider.tv({"tmdb_id": 1399, "tvdb_id": 121361}),
        "episode": lambda: provider.episode({"tmdb_id": 1399, "tvdb_id": 121361}, 1, 1),
    }
    for op, call in calls.items():
        before = sum(fake.hits.values())
        answer = await call()
        if op in provider.supports:
            assert answer, f"{provider.name}.{op} is supported and the fake knows the item"
        else:
            assert answer in (None, [])
            assert sum(fake.hits.values()) == before, f"{provider.name}.{op} sent a request"


async def test_tv_artwork(provider: HttpProvider) -> None:
    """Both providers find show artwork; season art carries its season number."""
    found = await provider.artwork("tv", {"tmdb_id": 1399, "tvdb_id": 121361})
    assert any(c.type == "poster" and c.season is None for c in found)
    assert any(c.season == 1 for c in found)


async def test_rejected_key_is_a_permanent_failure(harness: Harness, fake: FakeTmdb) -> None:
    """401 means the key is wrong: no retry, a message naming the service, the key never echoed."""
    provider = harness.build("wrong-key-123")
    try:
        with pytest.raises(PermanentFailure, match="rejected the API key") as info:
            await provider.artwork("movie", KNOWN)
    finally:
        await provider.close()
    assert "wrong-key-123" not in str(info.value)
    assert provider.label in str(info.value)


async def test_429_waits_retry_after_then_sends_again(harness: Harness, fake: FakeTmdb) -> None:
    """A 429 pauses the provider's limiter for Retry-After and slows it; the request is sent again and answered."""
    clock = FakeClock()
    sleeps: list[float] = []

    async def sleep(seconds: float) -> None:
        """Record and advance the fake clock."""
        sleeps.append(seconds)
        clock.advance(seconds)

    bucket = TokenBucket(400, 10.0, clock=clock, sleep=sleep, burst=1)
    provider = harness.build(limiter=bucket)
    try:
        fake.fail(harness.path, status=429, retry_after=7)
        assert await provider.artwork("movie", KNOWN)
    finally:
        await provider.close()
    assert bucket.throttles == 1 and bucket.rate < bucket.ceiling
    assert sum(sleeps) >= 7.0
    assert fake.hits[harness.path] == 2


async def test_429_with_a_long_retry_after_is_retry_later(harness: Harness, fake: FakeTmdb) -> None:
    """A Retry-After longer than THROTTLE_WAIT_MAX fails the request with that delay (the job retries then)."""
    clock = FakeClock()

    async def sleep(seconds: float) -> None:
        clock.advance(seconds)

    provider = harness.build(limiter=TokenBucket(400, 10.0, clock=clock, sleep=sleep, burst=1))
    try:
        fake.fail(harness.path, status=429, retry_after=THROTTLE_WAIT_MAX + 1)
        with pytest.raises(RetryLater) as info:
            await provider.artwork("movie", KNOWN)
        assert info.value.delay == THROTTLE_WAIT_MAX + 1
        assert "429" in str(info.value)
        clock.advance(THROTTLE_WAIT_MAX + 1)  # the job's retry comes after the pause
        assert await provider.artwork("movie", KNOWN)
    finally:
        await provider.close()


async def test_server_error_is_retry_later(provider: HttpProvider, harness: Harness, fake: FakeTmdb) -> None:
    """5xx is temporary."""
    fake.fail(harness.path, status=503)
    with pytest.raises(RetryLater, match="server error 503"):
        await provider.artwork("movie", KNOWN)


async def test_connection_refused_is_retry_later(harness: Harness) -> None:
    """Nothing listening is temporary too, and the key is not in the message."""
    provider = harness.build("secret-key-xyz", base_url=f"http://127.0.0.1:{free_port()}/3")
    try:
        with pytest.raises(RetryLater, match="unreachable") as info:
            await provider.artwork("movie", KNOWN)
    finally:
        await provider.close()
    assert "secret-key-xyz" not in str(info.value)


async def test_timeout_is_retry_later(harness: Harness, fake: FakeTmdb) -> None:
    """A stalled answer past the timeout is temporary."""
    fake.fail(harness.path, stall=0.5)
    provider = harness.build(timeout=0.05)
    try:
        with pytest.raises(RetryLater, match="unreachable"):
            await provider.artwork("movie", KNOWN)
    finally:
        await provider.close()


async def test_cache_answers_within_ttl_and_refetches_after(harness: Harness, fake: FakeTmdb,
                                                            db: Database) -> None:
    """A second lookup within the TTL sends nothing; after the TTL it asks again."""
    clock = FakeClock()
    cache = SqliteResponseCache(db, clock, ttl=100)
    provider = harness.build(cache=cache)
    try:
        first = await provider.artwork("movie", KNOWN)
        second = await provider.artwork("movie", KNOWN)
        assert fake.hits[harness.path] == 1
        assert first == second
        clock.advance(101)
        await provider.artwork("movie", KNOWN)
        assert fake.hits[harness.path] == 2
    finally:
        await provider.close()
    keys = [row["key"] for row in await db.fetchall("SELECT key FROM provider_cache")]
    assert keys and not any(fake.api_key in k or fake.fanart_key in k for k in keys)


async def test_rate_limiter_spaces_requests(harness: Harness) -> None:
    """With one token per 10 s, the third request waits two refills (fake clock, no real sleep)."""
    clock = FakeClock()
    sleeps: list[float] = []

    async def sleep(seconds: float) -> None:
        """Record and advance the fake clock."""
        sleeps.append(seconds)
        clock.advance(seconds)

    provider = harness.build(limiter=TokenBucket(1, 10.0, clock=clock, sleep=sleep))
    try:
        for _ in range(3):
            await provider.artwork("movie", UNKNOWN)
    finally:
        await provider.close()
    assert sleeps == [pytest.approx(10.0), pytest.approx(10.0)]


# --- shared pieces ----------------------------------------------------------------------------


async def test_token_bucket_burst_then_refill() -> None:
    """`capacity` requests pass at once; the next waits 1/rate; idle time refills up to capacity."""
    clock = FakeClock()
    sleeps: list[float] = []

    async def sleep(seconds: float) -> None:
        """Advance the fake clock."""
        sleeps.append(seconds)
        clock.advance(seconds)

    bucket = TokenBucket(4, 2.0, clock=clock, sleep=sleep)
    for _ in range(4):
        await bucket.acquire()
    assert sleeps == []
    await bucket.acquire()
    assert sleeps == [pytest.approx(0.5)]
    clock.advance(100)
    assert bucket.available() == pytest.approx(4.0)
    bucket.penalise()
    assert bucket.available() == pytest.approx(0.0)
    with pytest.raises(ValueError, match="capacity"):
        TokenBucket(0, 1.0)


async def test_token_bucket_slows_on_429_and_climbs_back() -> None:
    """A 429 pauses for Retry-After and lowers the rate; 429s of that pause do not lower it again; answered
    requests climb back to just under the rate that met the 429, then slowly to the ceiling."""
    clock = FakeClock()

    async def sleep(seconds: float) -> None:
        """Advance the fake clock."""
        clock.advance(seconds)

    bucket = TokenBucket(400, 10.0, clock=clock, sleep=sleep, burst=1)
    assert bucket.rate == pytest.approx(40.0)
    bucket.throttled(2.0)
    assert bucket.rate == pytest.approx(30.0)
    bucket.throttled(2.0)  # an answer to a request sent before the pause
    assert bucket.rate == pytest.approx(30.0)
    start = clock.monotonic()
    await bucket.acquire()
    assert clock.monotonic() - start >= 2.0  # nothing goes out before Retry-After has passed
    for _ in range(30):  # 0.38/s a step: from 30/s to just under the 40/s that met the 429
        bucket.answered()
    assert bucket.rate == pytest.approx(40.0 * 0.97, rel=0.02)
    assert bucket.rate < 40.0 * 0.98
    for _ in range(3000):
        bucket.answered()
    assert bucket.rate == pytest.approx(40.0)
    spaced: list[float] = []
    for _ in range(5):
        await bucket.acquire()
        spaced.append(clock.monotonic())
    assert all(b - a >= 0.025 - 1e-9 for a, b in itertools.pairwise(spaced))


async def test_token_bucket_with_real_tiny_period() -> None:
    """With the real clock, 3 tokens per 0.06 s make the 6th request wait about 0.06 s."""
    import time

    bucket = TokenBucket(3, 0.06)
    start = time.monotonic()
    for _ in range(6):
        await bucket.acquire()
    assert time.monotonic() - start >= 0.05


def test_retry_after_parsing() -> None:
    """Seconds, HTTP dates and junk."""
    assert parse_retry_after("12", 10.0) == 12.0
    assert parse_retry_after(None, 10.0) == 10.0
    assert parse_retry_after("soon", 3.0) == 3.0
    later = format_datetime(datetime.now(UTC) + timedelta(seconds=60), usegmt=True)
    assert 55 <= parse_retry_after(later, 10.0) <= 61


def test_cache_key_drops_secrets_and_sorts() -> None:
    """The same request gives the same key whatever the order; keys never hold credentials."""
    assert cache_key("/movie/1", {"b": 2, "api_key": "s3cret", "a": 1}) == "/movie/1?a=1&b=2"
    assert cache_key("/movie/1", {}) == "/movie/1"


async def test_response_cache_ttl_purge_and_clear(db: Database) -> None:
    """get returns only unexpired answers; purge and clear delete rows."""
    clock = FakeClock()
    cache = SqliteResponseCache(db, clock, ttl=10)
    await cache.put("tmdb", "/movie/1", {"id": 1, "title": "Ünïcode"})
    await cache.put("fanart", "/movies/1", {"name": "x"})
    assert await cache.get("tmdb", "/movie/1") == {"id": 1, "title": "Ünïcode"}
    assert await cache.get("fanart", "/movie/1") is None
    clock.advance(11)
    assert await cache.get("tmdb", "/movie/1") is None
    await cache.put("tmdb", "/movie/2", {"id": 2})
    assert await cache.purge_expired() == 2
    assert await cache.clear("tmdb") == 1
    assert await db.fetchall("SELECT * FROM provider_cache") == []


async def test_make_tmdb_app_exposes_the_fake(aiohttp_client: Any) -> None:
    """The app factory other suites use keeps the fake reachable for assertions and faults."""
    from fakes.tmdb import FAKE_TMDB, make_tmdb_app

    app = make_tmdb_app(movies={603: sample_movie()}, api_key="k")
    client = await aiohttp_client(app)
    resp = await client.get("/3/movie/603", params={"api_key": "k"})
    assert resp.status == 200 and (await resp.json())["title"] == "The Matrix"
    assert app[FAKE_TMDB].hits["/3/movie/603"] == 1
    assert (await client.get("/3/movie/603")).status == 401
    image = await client.get("/t/p/original/x-poster-1000x1500.jpg")
    assert image_size(await image.read()) == ("jpeg", 1000, 1500)
