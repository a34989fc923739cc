"""Rendering NFOs: escaping, order, kept tags, ids, trailers, templates, multi-episode, round trips."""

from __future__ import annotations

import filecmp
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from agent.errors import ConfigError
from agent.nfo import DEFAULT_TEMPLATE_DIR, NfoError, kodi_trailer, parse_nfo, render_episodes, render_nfo

SAMPLES = Path(__file__).parent / "nfo_samples"
REPO_TEMPLATES = Path(__file__).parent.parent / "nfo_templates"
DECL = b'<?xml version="1.0" encoding="UTF-8" standalone="yes" ?>\n'


def rich_movie() -> dict[str, Any]:
    """A movie with every field the renderer manages, in the canonical form parse_nfo returns."""
    return {
        "title": 'Tom & Jerry: "The <Movie>"',
        "original_title": "Tom et Jérôme — l'original",
        "sort_title": "Tom and Jerry",
        "ratings": [
            {"name": "imdb", "value": 7.25, "votes": 1234, "max": 10, "default": True},
            {"name": "tomatometerallcritics", "value": 91.0, "votes": 0, "max": 100, "default": False},
        ],
        "userrating": 8,
        "outline": "Cat & mouse.",
        "plot": "A plot with <tags>, & ampersands, 'quotes' and \"doubles\" — and 漢字 🎬.",
        "tagline": "Chase!",
        "runtime": 101,
        "thumbs": [
            {"aspect": "poster", "url": "https://img/p.jpg?a=1&b=2"},
            {"aspect": "clearlogo", "url": "l.png"},
        ],
        "fanart": ["https://img/f1.jpg", "https://img/f2.jpg"],
        "mpaa": "Rated PG",
        "certification": "US:PG",
        "uniqueids": {"tmdb": "587807", "imdb": "tt1361336", "wikidata": "Q1"},
        "tmdb_id": 587807,
        "imdb_id": "tt1361336",
        "genres": ["Comedy", "Family & Kids"],
        "countries": ["United States of America"],
        "set": {"name": "Tom & Jerry Collection", "overview": "All of them."},
        "tags": ["cartoon"],
        "credits": ["Kevin Costello"],
        "directors": ["Tim Story"],
        "premiered": "2021-02-11",
        "year": 2021,
        "studios": ["Warner Bros."],
        "trailer": "plugin://plugin.video.youtube/play/?video_id=kP9TfCWaQT4",
        "actors": [
            {"name": "Chloë Grace Moretz", "role": "Kayla", "order": 0, "thumb": "https://img/c.jpg"},
            {"name": "Michael Peña", "role": "", "order": 1, "thumb": ""},
        ],
        "dateadded": "2024-03-01 10:00:00",
        "streamdetails": {
            "video": [
                {"codec": "h264", "aspect": 1.78, "width": 1920, "height": 1080, "durationinseconds": 6060},
            ],
            "audio": [{"codec": "eac3", "language": "eng", "channels": 6}],
            "subtitle": [{"language": "fre"}],
        },
    }


def tag_order(data: bytes) -> list[str]:
    """Top-level tags of a rendered NFO, in order."""
    return [child.tag for child in ET.fromstring(data)]


def test_round_trip_gives_back_the_same_fields() -> None:
    """parse_nfo(render_nfo(f)).fields == f for a rich movie with unicode and XML specials."""
    fields = rich_movie()
    result = parse_nfo(render_nfo("movie", fields))
    assert result.error is None
    assert result.fields == fields


def test_round_trip_tvshow_and_episode() -> None:
    """The tvshow and episode fields survive a render and parse too."""
    show = parse_nfo((SAMPLES / "tvshow_episodeguide.nfo").read_bytes()).fields
    assert parse_nfo(render_nfo("tvshow", show)).fields == show
    episode = parse_nfo((SAMPLES / "episode.nfo").read_bytes()).fields
    episode["episode_end"] = 2
    assert parse_nfo(render_nfo("episodedetails", episode)).fields == episode


def test_output_is_well_formed_utf8_with_kodi_declaration_and_indent() -> None:
    """Declaration, UTF-8, four-space indent, escaped text."""
    data = render_nfo("movie", rich_movie())
    assert data.startswith(DECL)
    text = data.decode("utf-8")
    assert "\n    <title>Tom &amp; Jerry: \"The &lt;Movie&gt;\"</title>\n" in text
    assert "\n        <rating name=\"imdb\" max=\"10\" default=\"true\">\n" in text
    assert "&amp;b=2" in text and "🎬" in text
    ET.fromstring(data)  # well-formed


def test_control_characters_are_dropped() -> None:
    """Characters XML 1.0 cannot hold never make the output unparseable."""
    data = render_nfo("movie", {"title": "Bad\x00\x07 title\x1b", "plot": "one\r\ntwo\rthree"})
    fields = parse_nfo(data).fields
    assert fields["title"] == "Bad title"
    assert fields["plot"] == "one\ntwo\nthree"


def test_render_twice_is_byte_identical_and_in_template_order() -> None:
    """Same input, same bytes; tags follow the default template order."""
    first = render_nfo("movie", rich_movie())
    assert first == render_nfo("movie", rich_movie())
    order = tag_order(first)
    assert order[:5] == ["title", "originaltitle", "sorttitle", "ratings", "userrating"]
    assert order.index("uniqueid") < order.index("genre") < order.index("set") < order.index("actor")
    assert order[-2:] == ["dateadded", "fileinfo"]


def test_empty_fields_are_skipped() -> None:
    """Keys without value write no tag at all."""
    data = render_nfo("movie", {"title": "Only", "plot": "", "genres": [], "set": None, "year": None})
    assert tag_order(data) == ["title"]


def test_unknown_tags_of_existing_nfo_are_kept_after_managed_ones() -> None:
    """Watched state, resume, lockdata and other tools' tags survive; managed tags are replaced."""
    existing = (SAMPLES / "kodi_movie.nfo").read_bytes()
    data = render_nfo("movie", {"title": "New Title", "tmdb_id": 603}, existing=existing)
    root = ET.fromstring(data)
    assert root.findtext("title") == "New Title"
    assert len(root.findall("title")) == 1
    assert root.findtext("playcount") == "2" and root.findtext("lastplayed") == "2024-04-30"
    assert root.find("resume/position") is not None
    assert root.findtext("top250") == "16"
    # no fresh stream details: the existing fileinfo is kept
    assert root.findtext("fileinfo/streamdetails/video/codec") == "hevc"
    # managed tags missing from fields are gone (fields are the truth), and so is the superseded <id>
    assert root.find("plot") is None and root.find("id") is None
    order = tag_order(data)
    assert order == ["title", "uniqueid", "top250", "playcount", "lastplayed", "status", "fileinfo", "resume"]


def test_fresh_streamdetails_replace_existing_fileinfo() -> None:
    """With streamdetails in fields, fileinfo is rewritten, not duplicated."""
    existing = (SAMPLES / "kodi_movie.nfo").read_bytes()
    fields = {"title": "X", "streamdetails": {"video": [{"codec": "av1"}]}}
    data = render_nfo("movie", fields, existing=existing)
    root = ET.fromstring(data)
    assert len(root.findall("fileinfo")) == 1
    assert root.findtext("fileinfo/streamdetails/video/codec") == "av1"


def test_radarr_and_jellyfin_tags_kept_and_stale_ids_dropped() -> None:
    """<watched>, <criticrating>, <lockedfields> survive; legacy rating and id tags do not."""
    radarr = (SAMPLES / "radarr_movie.nfo").read_bytes()
    data = render_nfo("movie", {"title": "Dune", "tmdb_id": 1}, existing=radarr)
    root = ET.fromstring(data)
    assert root.findtext("watched") == "true" and root.findtext("criticrating") == "92"
    assert root.find("rating") is None and root.find("id") is None
    assert b"themoviedb.org/movie/693134" not in data  # trailing URL lines are not carried over
    jf = render_nfo("movie", {"title": "Alien"}, existing=(SAMPLES / "jellyfin_movie.nfo").read_bytes())
    jroot = ET.fromstring(jf)
    assert jroot.findtext("lockedfields") == "Name|Overview" and jroot.find("art/poster") is not None
    assert jroot.find("tmdbid") is None and jroot.find("imdbid") is None and jroot.find("writer") is not None


def test_unparseable_or_wrong_kind_existing_is_an_error() -> None:
    """A broken existing NFO raises NfoError so the caller leaves it untouched."""
    with pytest.raises(NfoError, match=r"unreadable.*line 12"):
        render_nfo("movie", {"title": "x"}, existing=(SAMPLES / "truncated.nfo").read_bytes())
    with pytest.raises(NfoError, match="refused for safety"):
        render_nfo("movie", {"title": "x"}, existing=(SAMPLES / "billion_laughs.nfo").read_bytes())
    with pytest.raises(NfoError, match="<tvshow>, not a <movie>"):
        render_nfo("movie", {"title": "x"}, existing=(SAMPLES / "tvshow_episodeguide.nfo").read_bytes())


def test_url_only_existing_is_replaced() -> None:
    """A URL-only NFO has no tags to keep; the result is a full NFO."""
    url_only = (SAMPLES / "url_tmdb_movie.nfo").read_bytes()
    data = render_nfo("movie", {"title": "M", "tmdb_id": 603}, existing=url_only)
    assert tag_order(data) == ["title", "uniqueid"]


@pytest.mark.parametrize(
    ("kind", "fields", "default"),
    [
        ("movie", {"tmdb_id": 1, "imdb_id": "tt1", "tvdb_id": 2}, "tmdb"),
        ("movie", {"imdb_id": "tt1", "tvdb_id": 2}, "imdb"),
        ("tvshow", {"tmdb_id": 1, "tvdb_id": 2}, "tvdb"),
        ("episodedetails", {"tmdb_id": 1, "tvdb_id": 2, "imdb_id": "tt1"}, "tvdb"),
        ("tvshow", {"uniqueids": {"tmdb": "9"}}, "tmdb"),
    ],
)
def test_exactly_one_default_uniqueid(kind: str, fields: dict[str, Any], default: str) -> None:
    """default="true" on exactly one uniqueid: tmdb for movies, tvdb for TV when present."""
    root = ET.fromstring(render_nfo(kind, fields))
    defaults = [el.get("type") for el in root.findall("uniqueid") if el.get("default") == "true"]
    assert defaults == [default]
    assert root.findall("uniqueid")[0].get("type") == default


def test_scalar_ids_win_over_uniqueids() -> None:
    """tmdb_id etc. are the canonical ids; a stale uniqueids entry is overridden."""
    root = ET.fromstring(render_nfo("movie", {"tmdb_id": 2, "uniqueids": {"tmdb": "1"}}))
    assert [el.text for el in root.findall("uniqueid")] == ["2"]


def test_tvshow_episodeguide_status_and_named_seasons() -> None:
    """tvshow adds the v20 JSON episodeguide, status and namedseason."""
    data = render_nfo("tvshow", {
        "title": "GoT", "tvdb_id": 121361, "tmdb_id": 1399, "imdb_id": "tt0944947",
        "show_status": "Ended", "named_seasons": {"10": "Ten", "2": "Two"},
    })
    root = ET.fromstring(data)
    assert root.findtext("episodeguide") == '{"tmdb":"1399","tvdb":"121361","imdb":"tt0944947"}'
    assert root.findtext("status") == "Ended"
    assert [el.get("number") for el in root.findall("namedseason")] == ["2", "10"]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("kP9TfCWaQT4", "plugin://plugin.video.youtube/play/?video_id=kP9TfCWaQT4"),
        ("https://www.youtube.com/watch?v=kP9TfCWaQT4&t=3", "plugin://plugin.video.youtube/play/?video_id=kP9TfCWaQT4"),
        ("https://youtu.be/kP9TfCWaQT4", "plugin://plugin.video.youtube/play/?video_id=kP9TfCWaQT4"),
        ("https://www.youtube-nocookie.com/embed/kP9TfCWaQT4", "plugin://plugin.video.youtube/play/?video_id=kP9TfCWaQT4"),
        ("plugin://plugin.video.youtube/?action=play_video&videoid=kP9TfCWaQT4",
         "plugin://plugin.video.youtube/play/?video_id=kP9TfCWaQT4"),
        ("/movies/X/X-trailer.mkv", "/movies/X/X-trailer.mkv"),
        ("https://vimeo.com/123", "https://vimeo.com/123"),
    ],
)
def test_trailer_conversion(value: str, expected: str) -> None:
    """YouTube keys and links become the Kodi plugin URL; other trailers are left alone."""
    assert kodi_trailer(value) == expected
    assert ET.fromstring(render_nfo("movie", {"trailer": value})).findtext("trailer") == expected


def test_art_dict_becomes_thumbs_and_fanart() -> None:
    """`art` gives <thumb aspect> lines in a stable order, season art, and <fanart><thumb>."""
    art = {"fanart": "fanart.jpg", "clearlogo": "clearlogo.png", "poster": "poster.jpg",
           "season01-poster": "season01-poster.jpg", "season-specials-poster": "season-specials-poster.jpg"}
    root = ET.fromstring(render_nfo("tvshow", {"title": "S", "art": art}))
    thumbs = [(el.get("aspect"), el.get("season"), el.text) for el in root.findall("thumb")]
    assert thumbs == [
        ("poster", None, "poster.jpg"), ("clearlogo", None, "clearlogo.png"),
        ("poster", "0", "season-specials-poster.jpg"), ("poster", "1", "season01-poster.jpg"),
    ]
    assert [el.text for el in root.findall("fanart/thumb")] == ["fanart.jpg"]


def test_multi_episode_render_keeps_each_roots_tags() -> None:
    """render_episodes writes concatenated roots and keeps each episode's own unmanaged tags."""
    existing = (SAMPLES / "multi_episode.nfo").read_bytes()
    episodes = [
        {"title": "Pilot, Part 2", "season": 1, "episode": 2, "tvdb_id": 127132},
        {"title": "Pilot, Part 1", "season": 1, "episode": 1, "tvdb_id": 127131},
    ]
    data = render_episodes(episodes, existing=existing)
    assert data.startswith(DECL) and data.count(b"<episodedetails>") == 2
    result = parse_nfo(data)
    assert result.error is None
    assert [e["title"] for e in result.episodes] == ["Pilot, Part 2", "Pilot, Part 1"]
    second_root = data.split(b"</episodedetails>")[1]
    assert b"<playcount>1</playcount>" in second_root  # episode 1's playcount followed episode 1
    with pytest.raises(NfoError):
        render_episodes([])


def test_repo_templates_equal_packaged_defaults() -> None:
    """nfo_templates/ (documented for users) and agent/nfo/default_templates/ are the same files."""
    for kind in ("movie", "tvshow", "episodedetails"):
        name = f"{kind}.nfo"
        assert filecmp.cmp(REPO_TEMPLATES / name, DEFAULT_TEMPLATE_DIR / name, shallow=False)


def write_template(tmp_path: Path, kind: str, body: str) -> Path:
    """Write a user template for a kind and return its folder."""
    (tmp_path / f"{kind}.nfo").write_text(f"<{kind}>\n{body}\n</{kind}>\n", encoding="utf-8")
    return tmp_path


def test_template_reorder_remove_and_literal(tmp_path: Path) -> None:
    """A user template reorders tags, drops one (which becomes unmanaged) and adds a literal tag."""
    folder = write_template(tmp_path, "movie", "<year/><title/><source>Metarr</source><uniqueid/>")
    existing = b"<movie><plot>hand-written plot</plot><source>old</source><title>old</title></movie>"
    data = render_nfo("movie", {"title": "T", "year": 2000, "plot": "new plot", "tmdb_id": 5},
                      existing=existing, template_dir=folder)
    assert tag_order(data) == ["year", "title", "source", "uniqueid", "plot"]
    root = ET.fromstring(data)
    assert root.findtext("plot") == "hand-written plot"  # not managed any more: kept
    assert root.findtext("source") == "Metarr" and len(root.findall("source")) == 1


def test_template_dir_without_a_kind_falls_back_to_default(tmp_path: Path) -> None:
    """A user folder overriding only movie.nfo still renders tvshows with the default."""
    write_template(tmp_path, "movie", "<title/>")
    data = render_nfo("tvshow", {"title": "S", "plot": "P"}, template_dir=tmp_path)
    assert tag_order(data) == ["title", "plot"]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("<movie><title></movie>", "not well-formed XML"),
        ("<tvshow><title/></tvshow>", "root element must be <movie>"),
        ("<movie><titel/></movie>", "<titel/> is not a tag the agent writes"),
        ("<movie><title/><title/></movie>", "appears twice"),
        ('<!DOCTYPE movie [<!ENTITY a "b">]><movie><title/></movie>', "DTDs and entities"),
    ],
)
def test_broken_template_names_the_file(tmp_path: Path, content: str, message: str) -> None:
    """Each template problem is a ConfigError naming the file and the problem."""
    (tmp_path / "movie.nfo").write_text(content, encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        render_nfo("movie", {"title": "x"}, template_dir=tmp_path)
    assert str(tmp_path / "movie.nfo") in info.value.message and message in info.value.message


def test_unknown_kind_is_an_error() -> None:
    """Only movie, tvshow and episodedetails can be rendered."""
    with pytest.raises(ConfigError, match="unknown NFO kind"):
        render_nfo("season", {})
