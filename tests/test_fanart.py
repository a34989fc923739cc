"""fanart.tv provider: key mapping, languages, likes, sizes, season art, id choice."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from fakes.tmdb import FakeTmdb, sample_fanart_movie, sample_fanart_tv

from agent.errors import ConfigError, UserError
from agent.providers.fanart import MOVIE_KEYS, TV_KEYS, FanartProvider, parse_fanart


@pytest.fixture
def fake() -> FakeTmdb:
    """fanart.tv data for one movie and one show."""
    return FakeTmdb(fanart_movies={603: sample_fanart_movie()}, fanart_tv={121361: sample_fanart_tv()})


@pytest.fixture
async def fanart(aiohttp_server: Any, fake: FakeTmdb) -> AsyncIterator[FanartProvider]:
    """A provider pointed at the fake."""
    server = await aiohttp_server(fake.app)
    provider = FanartProvider(fake.fanart_key, base_url=str(server.make_url("/v3")))
    yield provider
    await provider.close()


async def test_movie_keys_map_to_our_types(fanart: FanartProvider) -> None:
    """Every fanart.tv movie key lands on the documented artwork type with its size."""
    found = await fanart.artwork("movie", {"tmdb_id": 603})
    by_kind = {c.url.rsplit("/", 1)[1].split("-")[2]: c for c in found}
    expected = {
        "hdmovielogo": "clearlogo", "movielogo": "clearlogo", "hdmovieclearart": "clearart",
        "movieart": "clearart", "moviedisc": "discart", "moviebanner": "banner",
        "moviethumb": "landscape", "movieposter": "poster", "moviebackground": "fanart",
    }
    assert {kind: c.type for kind, c in by_kind.items()} == expected
    assert (by_kind["movielogo"].width, by_kind["movielogo"].height) == (400, 155)
    assert all(c.source == "fanart" and c.season is None for c in found)


async def test_languages_and_likes(fanart: FanartProvider) -> None:
    """lang "00" and "" are language-neutral; likes become votes."""
    found = await fanart.artwork("movie", {"tmdb_id": 603})
    backgrounds = [c for c in found if c.type == "fanart"]
    assert [c.language for c in backgrounds] == [None, None]
    assert sorted(c.votes for c in backgrounds) == [5.0, 8.0]
    logos = {c.language: c.votes for c in found if c.type == "clearlogo" and c.width == 800}
    assert logos == {"en": 7.0, "de": 9.0}


async def test_imdb_id_is_used_when_no_tmdb_id(fanart: FanartProvider, fake: FakeTmdb) -> None:
    """Movies are looked up by tmdb_id first, else imdb_id."""
    assert await fanart.artwork("movie", {"imdb_id": "tt0133093"})
    assert fake.hits["/v3/movies/tt0133093"] == 1
    await fanart.artwork("movie", {"tmdb_id": 603, "imdb_id": "tt0133093"})
    assert fake.hits["/v3/movies/603"] == 1


async def test_tv_season_posters_and_all_season_art(fanart: FanartProvider) -> None:
    """Season posters carry their season (0 = specials); "all"-season posters are skipped."""
    found = await fanart.artwork("tv", {"tvdb_id": 121361})
    seasons = sorted(c.season for c in found if c.season is not None)
    assert seasons == [0, 1]
    types = {c.type for c in found}
    assert types == {"clearlogo", "clearart", "banner", "landscape", "poster", "fanart"}
    background = next(c for c in found if c.type == "fanart")
    assert background.season is None  # showbackground's season="all" does not make it season art


async def test_tv_without_tvdb_id_asks_nothing(fanart: FanartProvider, fake: FakeTmdb) -> None:
    """fanart.tv indexes shows by TVDB id only."""
    assert await fanart.artwork("tv", {"tmdb_id": 1399}) == []
    assert sum(fake.hits.values()) == 0


async def test_bad_input_is_a_user_error(fanart: FanartProvider) -> None:
    """No usable id, or an unknown kind, is named in the error."""
    with pytest.raises(UserError, match="tmdb_id or imdb_id"):
        await fanart.artwork("movie", {})
    with pytest.raises(UserError, match="'music'"):
        await fanart.artwork("music", {"tmdb_id": 1})  # type: ignore[arg-type]
    with pytest.raises(UserError, match="neither a TMDB id"):
        await fanart.artwork("movie", {"imdb_id": "../../etc"})
    with pytest.raises(UserError, match="tvdb_id 'abc'"):
        await fanart.artwork("tv", {"tvdb_id": "abc"})
    with pytest.raises(ConfigError, match=r"providers\.fanart\.api_key"):
        FanartProvider("")
    with pytest.raises(ConfigError, match=r"providers\.fanart\.base_url"):
        FanartProvider("key", base_url="webservice.fanart.tv/v3")


def test_parse_tolerates_junk() -> None:
    """Non-dict bodies, entries without URLs and bad likes do not crash the mapping."""
    assert parse_fanart(None, MOVIE_KEYS) == []
    assert parse_fanart(["x"], MOVIE_KEYS) == []
    body = {
        "movieposter": [{"url": ""}, "junk", {"url": "http://x/p.jpg", "likes": "many", "lang": "EN"}],
        "seasonposter": [{"url": "http://x/s.jpg", "season": "x"}],
    }
    posters = parse_fanart(body, MOVIE_KEYS)
    assert [(c.url, c.votes, c.language) for c in posters] == [("http://x/p.jpg", 0.0, "en")]
    assert parse_fanart(body, TV_KEYS) == []
