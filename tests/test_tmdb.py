"""TMDB provider: request building, field mapping, search picking, /find, language fallback, TV."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from types import SimpleNamespace
from typing import Any

import pytest
from aiohttp import ClientResponse
from aioresponses import aioresponses
from fakes.tmdb import FakeTmdb, sample_movie, sample_show

from agent.errors import ConfigError, UserError
from agent.providers.ratelimit import TokenBucket
from agent.providers.tmdb import TmdbProvider, certification, image_languages, is_bearer_token

V4_TOKEN = "eyJhbGciOiJIUzI1NiJ9.eyJhdWQiOiJmYWtlIn0.c2lnbmF0dXJl"


class MockedResponse(ClientResponse):
    """aioresponses 0.7.9 builds responses without aiohttp 3.14's `stream_writer`; supply one."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("stream_writer", SimpleNamespace(output_size=0))
        super().__init__(*args, **kwargs)


def make_tmdb(fake: FakeTmdb, server: Any, key: str | None = None, **kwargs: Any) -> TmdbProvider:
    """A TmdbProvider pointed at the fake server."""
    return TmdbProvider(
        key or fake.api_key,
        base_url=str(server.make_url("/3")),
        image_base_url=str(server.make_url("/t/p/original")),
        limiter=TokenBucket(1000, 1.0),
        **kwargs,
    )


@pytest.fixture
def fake() -> FakeTmdb:
    """A catalogue with remakes, sequels and near-identical titles."""
    movies = {
        603: sample_movie(),
        604: sample_movie(604, "The Matrix Reloaded", 2003, imdb_id="tt0234215", popularity=60.0),
        841: sample_movie(841, "Dune", 1984, imdb_id="tt0087182", popularity=30.0, collection=None),
        438631: sample_movie(438631, "Dune", 2021, imdb_id="tt1160419", popularity=150.0, collection=None),
        693134: sample_movie(693134, "Dune: Part Two", 2024, imdb_id="tt15239678", popularity=400.0),
        348: sample_movie(348, "Alien", 1979, imdb_id="tt0078748", popularity=50.0, collection=None),
        679: sample_movie(679, "Aliens", 1986, imdb_id="tt0090605", popularity=70.0, collection=None),
        1001: sample_movie(1001, "Lost in Translation", 2003, imdb_id="tt0335266", collection=None,
                           overviews={"de-DE": ""}),
        1002: sample_movie(1002, "Das Boot", 1981, imdb_id="tt0082096", collection=None,
                           overviews={"de-DE": "Ein deutsches U-Boot im Zweiten Weltkrieg."}),
    }
    return FakeTmdb(movies=movies, shows={1399: sample_show()})


@pytest.fixture
async def server(aiohttp_server: Any, fake: FakeTmdb) -> Any:
    """The fake served on loopback."""
    return await aiohttp_server(fake.app)


@pytest.fixture
async def tmdb(fake: FakeTmdb, server: Any) -> AsyncIterator[TmdbProvider]:
    """A provider using the v3 key."""
    provider = make_tmdb(fake, server)
    yield provider
    await provider.close()


async def test_movie_fields_follow_the_field_model(tmdb: TmdbProvider, server: Any) -> None:
    """Every field the NFO needs comes back under the shared keys."""
    result = await tmdb.movie({"tmdb_id": 603})
    assert result is not None
    f = result.fields
    assert (f["title"], f["year"], f["premiered"], f["runtime"]) == ("The Matrix", 1999, "1999-03-30", 136)
    assert f["plot"].startswith("Set in the 22nd century") and f["tagline"]
    assert f["mpaa"] == "R" and f["certification"] == "US:R"
    assert f["genres"] == ["Action", "Science Fiction"]
    assert f["countries"] == ["United States of America"]
    assert f["studios"] == ["Village Roadshow Pictures", "Warner Bros. Pictures"]
    assert f["directors"] == ["Lana Wachowski", "Lilly Wachowski"]
    assert f["credits"] == ["Lana Wachowski"]
    assert f["trailer"] == "vKQi3bBA1y8"
    assert f["set"] == {"name": "The Matrix Collection", "overview": "The Matrix collection follows Neo.",
                        "tmdbcolid": 2344}
    assert f["ratings"] == [{"name": "themoviedb", "value": 8.2, "votes": 24000, "max": 10, "default": True}]
    assert f["tmdb_id"] == 603 and f["imdb_id"] == "tt0133093"
    assert f["uniqueids"] == {"tmdb": "603", "imdb": "tt0133093"}
    assert result.raw_ids == {"tmdb_id": 603, "imdb_id": "tt0133093"}
    actors = f["actors"]
    assert len(actors) == 20
    assert [a["order"] for a in actors] == list(range(20))
    assert actors[0]["name"] == "Actor 0 the-matrix" and actors[0]["role"] == "Role 0"
    assert "thumb" not in actors[0]  # no profile picture: key omitted, not empty
    assert actors[1]["thumb"] == str(server.make_url("/t/p/original/the-matrix-actor-1-300x450.jpg"))
    assert all(v not in (None, "", [], {}) for v in f.values())


async def test_movie_request_asks_for_appended_parts_and_image_languages(
    tmdb: TmdbProvider, fake: FakeTmdb
) -> None:
    """One details request carries append_to_response and include_image_language."""
    await tmdb.movie({"tmdb_id": 603})
    query = next(q for path, q, _ in fake.calls if path == "/3/movie/603")
    assert set(query["append_to_response"].split(",")) == {
        "credits", "images", "release_dates", "external_ids", "videos"
    }
    assert query["include_image_language"] == "en,null"
    assert query["language"] == "en-US"
    assert query["api_key"] == fake.api_key


async def test_movie_artwork_urls_languages_and_sizes(tmdb: TmdbProvider, server: Any) -> None:
    """Posters, backdrops and logos become candidates with full URLs; fr art is filtered by TMDB."""
    result = await tmdb.movie({"tmdb_id": 603})
    assert result is not None
    by_type: dict[str, list[Any]] = {}
    for cand in result.artwork:
        by_type.setdefault(cand.type, []).append(cand)
    assert set(by_type) == {"poster", "fanart", "clearlogo"}
    base = str(server.make_url("/t/p/original/"))
    assert all(c.url.startswith(base) and c.source == "tmdb" for c in result.artwork)
    assert {c.language for c in by_type["poster"]} == {"en", None}
    assert "fr" not in {c.language for c in by_type["fanart"]}
    big = next(c for c in by_type["poster"] if c.width == 2000)
    assert (big.height, big.votes, big.vote_average, big.language) == (3000, 10.0, 5.3, "en")


async def test_imdb_only_movie_is_found_through_find(tmdb: TmdbProvider, fake: FakeTmdb) -> None:
    """An item known only by IMDb id is resolved with /find?external_source=imdb_id."""
    result = await tmdb.movie({"imdb_id": "tt0087182"})
    assert result is not None and result.fields["tmdb_id"] == 841
    assert fake.hits["/3/find/tt0087182"] == 1
    find_query = next(q for p, q, _ in fake.calls if p == "/3/find/tt0087182")
    assert find_query["external_source"] == "imdb_id"


async def test_unknown_ids_are_none(tmdb: TmdbProvider) -> None:
    """A TMDB id or IMDb id TMDB does not know is "not found", not an error."""
    assert await tmdb.movie({"tmdb_id": 999999}) is None
    assert await tmdb.movie({"imdb_id": "tt9999999"}) is None
    assert await tmdb.tv({"tmdb_id": 999999}) is None
    assert await tmdb.episode({"tmdb_id": 1399}, 1, 99) is None
    assert await tmdb.artwork("movie", {"tmdb_id": 999999}) == []


async def test_bad_ids_are_user_errors(tmdb: TmdbProvider) -> None:
    """Malformed or missing ids fail with a message naming the problem."""
    with pytest.raises(UserError, match="imdb_id 'nm0000206' is not an IMDb id"):
        await tmdb.movie({"imdb_id": "nm0000206"})
    with pytest.raises(UserError, match="tmdb_id 'abc' is not a number"):
        await tmdb.movie({"tmdb_id": "abc"})
    with pytest.raises(UserError, match="without tmdb_id or imdb_id"):
        await tmdb.movie({})
    with pytest.raises(UserError, match="season and episode"):
        await tmdb.episode({"tmdb_id": 1399}, -1, 2)
    with pytest.raises(UserError, match="needs a title"):
        await tmdb.search_movie("  ")


async def test_language_fallback_fetches_en_us_when_overview_is_empty(fake: FakeTmdb, server: Any) -> None:
    """de-DE with no German overview takes the English one; a translated one is kept."""
    tmdb = make_tmdb(fake, server, language="de-DE")
    try:
        untranslated = await tmdb.movie({"tmdb_id": 1001})
        translated = await tmdb.movie({"tmdb_id": 1002})
    finally:
        await tmdb.close()
    assert untranslated is not None and translated is not None
    assert untranslated.fields["plot"].startswith("Set in the 22nd century")
    assert translated.fields["plot"] == "Ein deutsches U-Boot im Zweiten Weltkrieg."
    languages_1001 = [q.get("language") for p, q, _ in fake.calls if p == "/3/movie/1001"]
    languages_1002 = [q.get("language") for p, q, _ in fake.calls if p == "/3/movie/1002"]
    assert languages_1001 == ["de-DE", "en-US"]
    assert languages_1002 == ["de-DE"]
    details = next(q for p, q, _ in fake.calls if p == "/3/movie/1002")
    assert details["include_image_language"] == "de,null,en"


async def test_certification_country_is_configurable(fake: FakeTmdb, server: Any) -> None:
    """mpaa comes from the configured country's release dates."""
    tmdb = make_tmdb(fake, server, certification_country="de")
    try:
        result = await tmdb.movie({"tmdb_id": 603})
    finally:
        await tmdb.close()
    assert result is not None and result.fields["mpaa"] == "16"


def test_certification_prefers_theatrical_and_skips_empty() -> None:
    """Type 3 (theatrical) wins; empty certifications are ignored; unknown country gives None."""
    dates = {"results": [{"iso_3166_1": "US", "release_dates": [
        {"certification": "", "type": 3},
        {"certification": "NR", "type": 4},
        {"certification": "PG-13", "type": 3},
    ]}]}
    assert certification(dates, "US") == "PG-13"
    assert certification(dates, "GB") is None
    assert certification(None, "US") is None


async def test_search_prefers_exact_title_and_year(tmdb: TmdbProvider) -> None:
    """Remakes are told apart by year; without a year the more popular exact title wins."""
    assert (await tmdb.search_movie("Dune", 2021))[0]["tmdb_id"] == 438631
    assert (await tmdb.search_movie("Dune", 1984))[0]["tmdb_id"] == 841
    no_year = await tmdb.search_movie("Dune")
    assert no_year[0]["tmdb_id"] == 438631  # not "Dune: Part Two", though it is more popular
    assert {"tmdb_id", "title", "year", "popularity"} <= set(no_year[0])
    assert (await tmdb.search_movie("Alien"))[0]["tmdb_id"] == 348  # exact beats the popular "Aliens"


async def test_search_year_off_by_one_falls_back_to_no_year(tmdb: TmdbProvider, fake: FakeTmdb) -> None:
    """A file dated a year early finds nothing with the year, then picks the +/-1 match."""
    results = await tmdb.search_movie("Dune", 2020)
    assert results[0]["tmdb_id"] == 438631
    years = [q.get("year") for p, q, _ in fake.calls if p == "/3/search/movie"]
    assert years == ["2020", None]


async def test_search_normalises_articles_and_punctuation(tmdb: TmdbProvider) -> None:
    """"Matrix, The" and "the matrix" are the same title as "The Matrix"."""
    assert (await tmdb.search_movie("Matrix, The", 1999))[0]["tmdb_id"] == 603
    assert (await tmdb.search_movie("the matrix"))[0]["tmdb_id"] == 603


async def test_tv_show_fields_and_season_posters(tmdb: TmdbProvider, fake: FakeTmdb) -> None:
    """A show maps to the field model; season posters carry their season number."""
    result = await tmdb.tv({"tmdb_id": 1399})
    assert result is not None
    f = result.fields
    assert (f["title"], f["year"], f["mpaa"], f["show_status"], f["runtime"]) == (
        "Game of Thrones", 2011, "TV-MA", "Ended", 60
    )
    assert f["studios"] == ["HBO"] and f["tvdb_id"] == 121361 and f["imdb_id"] == "tt0944947"
    assert f["uniqueids"] == {"tmdb": "1399", "imdb": "tt0944947", "tvdb": "121361"}
    assert len(f["actors"]) == 20
    seasons = sorted(c.season for c in result.artwork if c.season is not None)
    assert seasons == [1, 2]
    query = next(q for p, q, _ in fake.calls if p == "/3/tv/1399")
    appended = set(query["append_to_response"].split(","))
    assert appended == {"credits", "images", "external_ids", "content_ratings"}


async def test_tv_by_tvdb_id_uses_find(tmdb: TmdbProvider, fake: FakeTmdb) -> None:
    """A show known only by its TVDB id is found with external_source=tvdb_id."""
    result = await tmdb.tv({"tvdb_id": 121361})
    assert result is not None and result.fields["tmdb_id"] == 1399
    assert fake.hits["/3/find/121361"] == 1


async def test_episode_fields_and_still(tmdb: TmdbProvider, server: Any) -> None:
    """An episode has its own ids, crew, guest stars and a thumb."""
    result = await tmdb.episode({"tmdb_id": 1399}, 1, 2)
    assert result is not None
    f = result.fields
    assert (f["title"], f["season"], f["episode"]) == ("Game of Thrones S01E02", 1, 2)
    assert f["aired"] == "2011-04-02"
    assert f["directors"] == ["Tim Van Patten"] and f["credits"] == ["David Benioff"]
    assert "Guest 2" in [a["name"] for a in f["actors"]]
    assert f["uniqueids"]["tvdb"] == str(3254641 + 102)
    thumbs = [c for c in result.artwork if c.type == "thumb"]
    assert thumbs and all(c.url.startswith(str(server.make_url("/t/p/original/"))) for c in thumbs)


async def test_search_tv_ranks_by_title_and_year(tmdb: TmdbProvider) -> None:
    """search_tv returns the show with its first-air year."""
    results = await tmdb.search_tv("Game of Thrones", 2011)
    assert results[0] == {**results[0], "tmdb_id": 1399, "title": "Game of Thrones", "year": 2011}


def test_key_kinds_and_image_languages() -> None:
    """v4 tokens are JWTs; include_image_language never repeats a language."""
    assert is_bearer_token(V4_TOKEN)
    assert not is_bearer_token("0123456789abcdef0123456789abcdef")
    assert image_languages("en-US") == "en,null"
    assert image_languages("pt-BR") == "pt,null,en"
    with pytest.raises(ConfigError, match=r"providers\.tmdb\.api_key is empty"):
        TmdbProvider("  ")


async def test_v3_key_goes_in_the_query_and_v4_token_in_a_bearer_header() -> None:
    """Request building: ?api_key= for a v3 key, Authorization: Bearer for a v4 token, never both."""
    url = re.compile(r"^https://api\.example/3/movie/603\?.*$")
    with aioresponses() as mocked:
        mocked.get(url, payload=sample_movie(), repeat=True, response_class=MockedResponse)
        mocked.get(re.compile(r"^https://api\.example/3/collection/.*$"), payload={}, repeat=True,
                   response_class=MockedResponse)
        v3 = TmdbProvider("v3key", base_url="https://api.example/3", language="fr-FR")
        v4 = TmdbProvider(V4_TOKEN, base_url="https://api.example/3", language="fr-FR")
        try:
            await v3.movie({"tmdb_id": 603})
            await v4.movie({"tmdb_id": 603})
        finally:
            await v3.close()
            await v4.close()
        sent = [(key[1], call) for key, calls in mocked.requests.items() for call in calls
                if "/movie/603" in str(key[1])]
    assert len(sent) == 2
    (url_v3, call_v3), (url_v4, call_v4) = sorted(sent, key=lambda s: "api_key" not in str(s[0]))
    assert url_v3.query["api_key"] == "v3key"
    assert "Authorization" not in call_v3.kwargs["headers"]
    assert "api_key" not in url_v4.query
    assert call_v4.kwargs["headers"]["Authorization"] == f"Bearer {V4_TOKEN}"
    for u in (url_v3, url_v4):
        assert u.query["language"] == "fr-FR"
        assert u.query["include_image_language"] == "fr,null,en"


async def test_bearer_token_is_accepted_by_the_fake(fake: FakeTmdb, server: Any) -> None:
    """End to end with a v4 token: the header authenticates, no key in the URL."""
    tmdb = make_tmdb(fake, server, key=fake.bearer_token)
    try:
        assert await tmdb.movie({"tmdb_id": 603}) is not None
    finally:
        await tmdb.close()
    _path, query, auth = fake.calls[0]
    assert auth == f"Bearer {fake.bearer_token}" and "api_key" not in query
