"""Reading NFOs of Kodi, Jellyfin, tinyMediaManager, Radarr/Sonarr and Ember, and hostile or broken ones."""

from __future__ import annotations

import threading
import time
import tracemalloc
from pathlib import Path
from typing import Any

import pytest

from agent.nfo import nfo_ids, parse_nfo
from agent.nfo.document import MAX_NFO_DEPTH, MAX_NFO_ROOTS
from agent.nfo.ids import id_from_url
from agent.nfo.model import MAX_NFO_BYTES

SAMPLES = Path(__file__).parent / "nfo_samples"


def sample(name: str) -> bytes:
    """Bytes of one sample NFO."""
    return (SAMPLES / name).read_bytes()


def test_kodi_movie_reads_every_field() -> None:
    """A Kodi v21 export gives the full field model, with ratings, ids, art and stream details."""
    r = parse_nfo(sample("kodi_movie.nfo"))
    assert r.error is None and r.kind == "movie" and r.encoding == "utf-8"
    f = r.fields
    assert f["title"] == "The Matrix" and f["sort_title"] == "Matrix 1"
    assert f["year"] == 1999 and f["runtime"] == 136 and f["userrating"] == 9
    assert f["premiered"] == "1999-03-30" and f["dateadded"] == "2024-01-02 03:04:05"
    assert f["ratings"][0] == {"name": "imdb", "value": 8.7, "votes": 2100000, "max": 10, "default": True}
    assert f["ratings"][1]["default"] is False
    assert f["uniqueids"] == {"tmdb": "603", "imdb": "tt0133093"}
    assert next(iter(f["uniqueids"])) == "tmdb"  # the default uniqueid comes first
    assert f["tmdb_id"] == 603 and f["imdb_id"] == "tt0133093"
    assert f["set"] == {"name": "The Matrix Collection", "overview": "The complete trilogy."}
    assert f["directors"] == ["Lana Wachowski", "Lilly Wachowski"]
    assert f["studios"] == ["Warner Bros. Pictures", "Village Roadshow Pictures"]
    assert f["actors"][0] == {
        "name": "Keanu Reeves", "role": "Neo", "order": 0,
        "thumb": "https://image.tmdb.org/t/p/original/keanu.jpg",
    }
    assert f["thumbs"][1] == {"aspect": "clearlogo", "url": "https://assets.fanart.tv/logo.png"}
    assert f["fanart"] == ["https://image.tmdb.org/t/p/original/f.jpg"]
    video = f["streamdetails"]["video"][0]
    assert video["codec"] == "hevc" and video["width"] == 3840 and video["aspect"] == 2.4
    assert f["streamdetails"]["audio"][0]["channels"] == 8
    assert f["trailer"] == "plugin://plugin.video.youtube/play/?video_id=vKQi3bBA1y8"
    assert "status" not in f and "show_status" not in f  # empty tags give no key


def test_jellyfin_movie_ids_cdata_and_sortorder() -> None:
    """Jellyfin's <imdbid>/<tmdbid>/<id>, CDATA plot, legacy <rating> and actor sortorder are read."""
    f = parse_nfo(sample("jellyfin_movie.nfo")).fields
    assert f["uniqueids"] == {"imdb": "tt0078748", "tmdb": "348"}
    assert f["tmdb_id"] == 348 and f["imdb_id"] == "tt0078748"
    assert f["plot"] == "Ripley & the crew of the Nostromo meet <something>."
    assert "outline" not in f
    assert f["ratings"] == [{"name": "default", "value": 8.5, "votes": 0, "max": 10, "default": True}]
    assert [a["order"] for a in f["actors"]] == [0, 1]
    assert f["credits"] == ["Dan O'Bannon"]  # <writer> and <credits> merged without duplicates
    assert f["set"]["name"] == "Alien Collection"


def test_tinymediamanager_crlf_certification_and_split_genres() -> None:
    """tMM output (CRLF, <certification>, 'A / B' genres, first default uniqueid) is read."""
    data = sample("tmm_movie.nfo")
    assert b"\r\n" in data
    f = parse_nfo(data).fields
    assert f["title"] == "Le Fabuleux Destin d'Amélie Poulain"
    assert f["certification"] == "US:R / FR:U"
    assert f["genres"] == ["Comedy", "Romance"]
    assert list(f["uniqueids"]) == ["imdb", "tmdb"]  # imdb is the default one here
    assert f["tmdb_id"] == 194
    assert "set" not in f and "sort_title" not in f and "trailer" not in f


def test_radarr_combined_nfo_ratings_max_100_and_urls() -> None:
    """Radarr's NFO with a max-100 rating, <watched> and trailing metadata URLs."""
    r = parse_nfo(sample("radarr_movie.nfo"))
    assert r.error is None and r.kind == "movie"
    assert r.urls == ["https://www.themoviedb.org/movie/693134", "https://www.imdb.com/title/tt15239678/"]
    tomato = r.fields["ratings"][2]
    assert tomato == {
        "name": "tomatometerallcritics", "value": 92.0, "votes": 0, "max": 100, "default": False,
    }
    assert len(r.fields["ratings"]) == 3  # <ratings> wins over the legacy <rating>
    assert r.fields["tmdb_id"] == 693134 and r.fields["imdb_id"] == "tt15239678"
    assert r.fields["set"] == {"name": "Dune Collection", "overview": "The saga of Paul Atreides.",
                               "tmdbcolid": 726871}
    assert "userrating" not in r.fields and "tagline" not in r.fields


def test_ember_legacy_rating_votes_set_and_runtime_text() -> None:
    """Legacy <rating>+<votes>, <set>text</set>, '117 min' and <releasedate> are understood."""
    f = parse_nfo(sample("ember_movie.nfo")).fields
    assert f["ratings"] == [{"name": "default", "value": 8.1, "votes": 800000, "max": 10, "default": True}]
    assert f["set"] == {"name": "Blade Runner Collection", "overview": ""}
    assert f["runtime"] == 117 and f["premiered"] == "1982-06-25"
    assert f["genres"] == ["Science Fiction", "Drama"]
    assert f["uniqueids"] == {"tmdb": "78", "imdb": "tt0083658"}


@pytest.mark.parametrize(
    ("name", "kind", "ids"),
    [
        ("url_tmdb_movie.nfo", "movie", {"tmdb": "603"}),
        ("url_tmdb_tv.nfo", "tvshow", {"tmdb": "1399"}),
        ("url_imdb.nfo", None, {"imdb": "tt0133093"}),
        ("url_tvdb.nfo", "tvshow", {"tvdb": "121361"}),
        ("scene_with_imdb.nfo", None, {"imdb": "tt0133093"}),
    ],
)
def test_url_only_nfos_give_ids(name: str, kind: str | None, ids: dict[str, str]) -> None:
    """URL-only NFOs give provider ids, the URL, and the kind a TMDB/TVDB URL implies."""
    r = parse_nfo(sample(name))
    assert r.error is None
    assert r.kind == kind
    assert nfo_ids(r) == ids
    assert len(r.urls) == 1


def test_url_only_kind_hint_fills_kind() -> None:
    """An IMDb link says nothing about the kind; the caller's hint does."""
    r = parse_nfo(sample("url_imdb.nfo"), kind_hint="movie")
    assert r.kind == "movie" and r.fields["imdb_id"] == "tt0133093"


def test_scene_info_without_links_is_an_error() -> None:
    """A release-group info file without any link is reported, not treated as metadata."""
    r = parse_nfo(sample("scene_info.nfo"))
    assert r.error is not None and "not a metadata NFO" in r.error
    assert r.fields == {}


def test_xml_followed_by_url_keeps_xml_fields_and_adds_id() -> None:
    """A combined NFO: XML fields and the id of the URL after the root."""
    r = parse_nfo(sample("xml_plus_url.nfo"))
    assert r.error is None and r.kind == "movie"
    assert r.fields["plot"] == "Overridden plot."
    assert r.fields["tmdb_id"] == 603
    assert r.urls == ["https://www.themoviedb.org/movie/603"]


def test_url_does_not_override_an_xml_id() -> None:
    """An id already in the XML wins over a trailing URL of the same provider."""
    data = b"<movie><uniqueid type='tmdb' default='true'>100</uniqueid></movie>\nhttps://themoviedb.org/movie/200\n"
    assert parse_nfo(data).fields["tmdb_id"] == 100


def test_multi_episode_nfo_gives_every_episode() -> None:
    """Concatenated <episodedetails> roots: fields is the first, episodes holds all."""
    r = parse_nfo(sample("multi_episode.nfo"))
    assert r.error is None and r.kind == "episodedetails"
    assert [e["episode"] for e in r.episodes] == [1, 2]
    assert [e["tvdb_id"] for e in r.episodes] == [127131, 127132]
    assert r.fields == r.episodes[0]
    assert r.episodes[1]["aired"] == "2004-09-29"


def test_episode_nfo() -> None:
    """A Sonarr-style episode NFO: numbers, display numbers, ids incl. an unknown provider, thumb."""
    r = parse_nfo(sample("episode.nfo"))
    f = r.fields
    assert r.kind == "episodedetails" and r.episodes == [f]
    assert (f["season"], f["episode"], f["display_season"], f["display_episode"]) == (1, 1, 1, 1)
    assert f["showtitle"] == "Game of Thrones" and f["aired"] == "2011-04-17"
    assert f["tvdb_id"] == 3254641 and f["tmdb_id"] == 63056 and f["uniqueids"]["sonarr"] == "12345"
    assert next(iter(f["uniqueids"])) == "tvdb"
    assert f["thumbs"][0]["url"].endswith("3254641.jpg")


def test_tvshow_with_json_episodeguide_status_and_named_season() -> None:
    """A tvshow NFO: v20 JSON episodeguide ids, status, season art, named seasons."""
    r = parse_nfo(sample("tvshow_episodeguide.nfo"))
    f = r.fields
    assert r.kind == "tvshow"
    assert f["uniqueids"] == {"tvdb": "121361", "tmdb": "1399", "imdb": "tt0944947"}
    assert f["tvdb_id"] == 121361 and f["tmdb_id"] == 1399
    assert f["show_status"] == "Ended"
    assert f["genres"] == ["Sci-Fi & Fantasy", "Drama"]
    assert f["thumbs"][1] == {
        "aspect": "poster", "url": "https://image.tmdb.org/t/p/original/got-s1.jpg", "season": 1,
    }
    assert f["named_seasons"] == {"1": "Winter Is Coming"}


def test_tvshow_old_xml_episodeguide_and_jellyfin_id_attributes() -> None:
    """The old <episodeguide><url> form and Jellyfin's <id IMDB= TMDB=>tvdb</id> give ids."""
    assert parse_nfo(sample("tvshow_old_episodeguide.nfo")).fields["tvdb_id"] == 73739
    f = parse_nfo(sample("jellyfin_tvshow.nfo")).fields
    assert f["uniqueids"] == {"imdb": "tt0411008", "tvdb": "73739", "tmdb": "4607"}
    r = parse_nfo(b"<tvshow><id IMDB='tt0411008' TMDB='4607'>73739</id></tvshow>")
    assert r.fields["uniqueids"] == {"tmdb": "4607", "imdb": "tt0411008", "tvdb": "73739"}


@pytest.mark.parametrize(
    ("xml", "expected"),
    [
        (b"<movie><id>603</id></movie>", {"tmdb": "603"}),
        (b"<tvshow><id>81189</id></tvshow>", {"unknown": "81189"}),
        (b"<movie><id>tt0133093</id></movie>", {"imdb": "tt0133093"}),
        (b"<movie><id type='imdb'>tt0133093</id></movie>", {"imdb": "tt0133093"}),
        (b"<movie><uniqueid>604</uniqueid></movie>", {"tmdb": "604"}),
        (b"<movie><imdb_id>tt1</imdb_id><tmdbid>0</tmdbid></movie>", {}),
        (b"<movie><uniqueid type='tmdb'>1</uniqueid>"
         b"<uniqueid type='tmdb' default='true'>2</uniqueid></movie>",
         {"tmdb": "2"}),
    ],
)
def test_id_rules(xml: bytes, expected: dict[str, str]) -> None:
    """<id> digits are tmdb for movies and of unknown provider for shows; placeholders are ignored; defaults win."""
    assert nfo_ids(parse_nfo(xml)) == expected


def test_id_from_url_forms() -> None:
    """TMDB API/web, localized IMDb and TVDB path/query links are recognised."""
    assert id_from_url("https://api.themoviedb.org/3/movie/603?api_key=x") == ("tmdb", "603", "movie")
    assert id_from_url("https://m.imdb.com/de/title/tt0133093/reviews") == ("imdb", "tt0133093", None)
    assert id_from_url("https://thetvdb.com/dereferrer/series/121361") == ("tvdb", "121361", "tvshow")
    assert id_from_url("https://thetvdb.com/series/game-of-thrones") is None
    assert id_from_url("https://example.com/movie/603") is None


def test_billion_laughs_fails_fast_without_memory_growth() -> None:
    """Entity expansion is refused before any expansion: quick, small, and a clear error."""
    tracemalloc.start()
    started = time.monotonic()
    r = parse_nfo(sample("billion_laughs.nfo"))
    elapsed = time.monotonic() - started
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert r.error is not None and "DTD" in r.error
    assert r.fields == {}
    assert elapsed < 1.0
    assert peak < 5 * 1024 * 1024


def test_external_entity_is_never_read() -> None:
    """A SYSTEM entity pointing at /etc/passwd is refused; nothing from the file appears."""
    r = parse_nfo(sample("external_entity.nfo"))
    assert r.error is not None and "refused for safety" in r.error
    assert "root:" not in repr(r)


def test_undefined_entity_is_malformed() -> None:
    """An entity reference without a declaration (&nbsp;) is malformed XML, not an exception."""
    r = parse_nfo(sample("undefined_entity.nfo"))
    assert r.error == "malformed XML at line 1: undefined entity"


def test_bom_and_utf16() -> None:
    """A UTF-8 BOM and a UTF-16 file with BOM are decoded."""
    r = parse_nfo(sample("bom_utf8.nfo"))
    assert r.error is None and r.encoding == "utf-8-sig" and r.fields["title"] == "Léon"
    r16 = parse_nfo(sample("utf16_bom.nfo"))
    assert r16.encoding == "utf-16" and r16.fields["title"] == "Crouching Tiger 卧虎藏龙"


def test_latin1_declared_and_cp1252_fallback() -> None:
    """The XML declaration's encoding is honoured; undeclared non-UTF-8 falls back to cp1252."""
    r = parse_nfo(sample("latin1_declared.nfo"))
    assert r.encoding == "iso-8859-1" and r.fields["title"] == "Les Misérables"
    r2 = parse_nfo(sample("cp1252_undeclared.nfo"))
    assert r2.encoding == "cp1252"
    assert r2.fields["title"] == "Café “Society”"
    assert r2.fields["tagline"] == "It’s 1930s Hollywood – and New York."


def test_wrong_declared_encoding_falls_back() -> None:
    """A file that claims UTF-8 but is Latin-1 is still read."""
    data = '<?xml version="1.0" encoding="UTF-8"?><movie><title>Amélie</title></movie>'.encode("latin-1")
    r = parse_nfo(data)
    assert r.error is None and r.fields["title"] == "Amélie" and r.encoding == "cp1252"


def test_truncated_file_reports_line() -> None:
    """A file cut off mid-way is an error naming the line, never an exception."""
    r = parse_nfo(sample("truncated.nfo"))
    assert r.error == "malformed XML at line 12: no element found"
    assert r.kind is None and r.fields == {}


def test_mismatched_tag_line_counts_from_file_start() -> None:
    """Line numbers are the file's, also for the second root of a multi-episode file."""
    data = (
        b"<episodedetails><title>a</title></episodedetails>\n"
        b"<episodedetails>\n<title>b</plot>\n</episodedetails>"
    )
    r = parse_nfo(data)
    assert r.error is not None and r.error.startswith("malformed XML at line 3: mismatched tag")


def test_two_movie_roots_are_an_error() -> None:
    """Only <episodedetails> may repeat."""
    r = parse_nfo(b"<movie><title>a</title></movie><movie><title>b</title></movie>")
    assert r.error is not None and "only <episodedetails> may repeat" in r.error


@pytest.mark.parametrize("data", [b"", b"   \n", b"\x00\x01\x02", b"<", b"<movie", b"<movie/>junk<"])
def test_garbage_never_raises(data: bytes) -> None:
    """Any bytes give a result; garbage gives an error."""
    r = parse_nfo(data)
    assert r.error is not None or r.kind == "movie"


def test_self_closing_root_and_unknown_root() -> None:
    """An empty root is read; an unknown root keeps kind None unless hinted."""
    assert parse_nfo(b"<movie/>").kind == "movie"
    r = parse_nfo(b"<musicvideo><title>x</title></musicvideo>", kind_hint="movie")
    assert r.kind == "movie" and r.fields["title"] == "x"
    assert parse_nfo(b"<musicvideo><title>x</title></musicvideo>").kind is None


def test_too_large_is_refused() -> None:
    """An absurdly large NFO is refused without parsing."""
    r = parse_nfo(b" " * (MAX_NFO_BYTES + 1))
    assert r.error is not None and "too large" in r.error


def _parse_with_deadline(data: bytes, seconds: float = 20.0, **kwargs: Any) -> Any:
    """parse_nfo in a daemon thread; fails (instead of hanging the suite) when it takes longer than `seconds`."""
    out: list[Any] = []

    def run() -> None:
        try:
            out.append(parse_nfo(data, **kwargs))
        except BaseException as exc:  # handed to the test thread below
            out.append(exc)

    worker = threading.Thread(target=run, daemon=True)
    started = time.monotonic()
    worker.start()
    worker.join(seconds)
    assert out, f"parse_nfo still running after {seconds} s"
    if isinstance(out[0], BaseException):
        raise AssertionError(f"parse_nfo raised {out[0]!r}") from out[0]
    return out[0], time.monotonic() - started


def test_megabyte_of_empty_episode_roots_is_refused_quickly() -> None:
    """1 MB of `<episodedetails/>` roots (60,000 of them) is one clear error, not 37 s of quadratic work."""
    data = b"<episodedetails/>\n" * (1_000_000 // 18)
    r, elapsed = _parse_with_deadline(data)
    assert r.error is not None and f"more than {MAX_NFO_ROOTS} <episodedetails> roots" in r.error
    assert elapsed < 5.0


def test_many_episode_roots_within_the_limit_are_read_with_file_lines() -> None:
    """The limit leaves real multi-episode files alone, and line numbers stay the file's at the last root."""
    roots = b"".join(b"<episodedetails>\n<episode>%d</episode>\n</episodedetails>\n" % n for n in range(1, 1001))
    r, _ = _parse_with_deadline(roots)
    assert r.error is None and len(r.episodes) == 1000 and r.episodes[-1]["episode"] == 1000
    r, _ = _parse_with_deadline(roots + b"<episodedetails>\n<title>x</plot>\n</episodedetails>\n")
    assert r.error is not None and "more than 1000" in r.error
    broken = roots[: -len(b"</episodedetails>\n")] + b"<title>x</plot>\n</episodedetails>\n"
    r, _ = _parse_with_deadline(broken)
    assert r.error is not None and r.error.startswith("malformed XML at line 3000: mismatched tag")


def test_deep_nesting_is_a_clear_error() -> None:
    """100,000 nested tags give one error naming the limit (no RecursionError later, in render or copy)."""
    data = b"<movie><title>x</title>" + b"<a>" * 100_000 + b"</a>" * 100_000 + b"</movie>"
    r, _ = _parse_with_deadline(data)
    assert r.error is not None and f"nested deeper than {MAX_NFO_DEPTH} levels" in r.error
    assert r.fields == {}
    ok = b"<movie><title>x</title>" + b"<a>" * (MAX_NFO_DEPTH - 1) + b"</a>" * (MAX_NFO_DEPTH - 1) + b"</movie>"
    assert parse_nfo(ok).error is None


def test_parse_time_budget_gives_an_error() -> None:
    """A parse that runs past its time budget stops with an error saying so."""
    data = b"<movie>" + b"<genre>g</genre>" * 5000 + b"</movie>"
    r = parse_nfo(data, budget=0.0)
    assert r.error is not None and "longer than" in r.error and r.fields == {}
    assert parse_nfo(data).error is None


@pytest.mark.parametrize("data", [
    b"<movie><year>" + b"9" * 400 + b"</year></movie>",
    b"<movie><runtime>" + b"1" + b"0" * 30 + b"</runtime><ratings><rating><value>inf</value></rating>"
    b"<rating><value>nan</value></rating></ratings></movie>",
    b"<tvshow><episodeguide>" + b'{"a":' * 100_000 + b"1" + b"}" * 100_000 + b"</episodeguide></tvshow>",
])
def test_absurd_numbers_and_deep_json_never_raise(data: bytes) -> None:
    """Numbers too large for the database, inf/nan and 100k-deep episodeguide JSON give a result, never an exception."""
    r, _ = _parse_with_deadline(data)
    for key in ("year", "runtime"):
        assert key not in r.fields
    assert not r.fields.get("ratings")
