"""NFOs read as Kodi's CVideoInfoTag::ParseNative (and Jellyfin's BaseNfoParser) read them, on real samples.

The jellyfin_*.nfo samples are trimmed copies of Jellyfin's own parser test data (tests/nfo_samples/SOURCES.md).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from agent.nfo import nfo_ids, parse_nfo, render_nfo
from agent.nfo.document import decode_nfo, split_document
from agent.store import fields as field_specs

SAMPLES = Path(__file__).parent / "nfo_samples"
KEPT = ("uniqueids", "tmdb_id", "imdb_id", "tvdb_id", "set", "thumbs", "premiered", "aired", "year",
        "playcount", "lastplayed", "top250", "dateadded", "directors", "credits", "actors", "ratings")


def sample(name: str) -> bytes:
    """Bytes of one sample NFO."""
    return (SAMPLES / name).read_bytes()


def fields_of(data: bytes, kind: str | None = None) -> dict[str, Any]:
    """The fields of an NFO that must parse."""
    result = parse_nfo(data, kind)
    assert result.ok, result.error
    return result.fields


# --- <id> and <uniqueid> -------------------------------------------------------------------------------------

def test_id_is_ignored_when_a_uniqueid_exists_jellyfin_episode() -> None:
    """Jellyfin's episode: <id>1276153</id> repeats the tmdb uniqueid; it is not also a tvdb id."""
    f = fields_of(sample("jellyfin_bone_orchard_episode.nfo"))
    assert f["uniqueids"] == {"tmdb": "1276153", "imdb": "tt5017734"}
    assert f["tmdb_id"] == 1276153 and "tvdb_id" not in f


def test_id_is_ignored_when_a_uniqueid_exists_our_own_tvshow() -> None:
    """A tvshow with only a tmdb uniqueid (and the <id> Kodi writes beside it) gains no tvdb id."""
    xml = b"<tvshow><id>1399</id><uniqueid type='tmdb' default='true'>1399</uniqueid></tvshow>"
    assert nfo_ids(parse_nfo(xml)) == {"tmdb": "1399"}


def test_bare_number_in_tv_id_is_not_assumed_tvdb() -> None:
    """A bare number in a tvshow/episode <id> stays an id of unknown provider, never a tvdb_id."""
    for root in ("tvshow", "episodedetails"):
        f = fields_of(f"<{root}><id>81189</id></{root}>".encode())
        assert f["uniqueids"] == {"unknown": "81189"}
        assert "tvdb_id" not in f and "tmdb_id" not in f
    again = fields_of(render_nfo("tvshow", fields_of(b"<tvshow><id>81189</id></tvshow>")))
    assert again["uniqueids"] == {"unknown": "81189"} and "tvdb_id" not in again


def test_kodi_v20_tvshow_id_is_the_tmdb_default_not_tvdb() -> None:
    """MediaElch's Kodi v20 Torchwood sample: <id>424</id> repeats the default (TMDB) uniqueid.

    With the uniqueids, <id> adds nothing; the same show without them keeps 424 as an unknown-provider id
    rather than filing TMDB's 424 as TVDB's (TVDB 424 is another show).
    """
    data = sample("mediaelch_kodi_v20_torchwood_tvshow.nfo")
    f = fields_of(data)
    assert f["uniqueids"] == {"tmdb": "424", "imdb": "tt0485301", "tvmaze": "659", "tvdb": "79511"}
    bare = b"".join(line + b"\n" for line in data.splitlines() if b"<uniqueid" not in line
                    and b"<episodeguide>" not in line)
    g = fields_of(bare)
    assert g["uniqueids"] == {"unknown": "424"} and "tvdb_id" not in g and "tmdb_id" not in g


def test_jellyfin_series_id_with_provider_attributes_is_still_tvdb() -> None:
    """Jellyfin's series <id IMDB= TMDB=>N</id> names its providers, so its text is the tvdb id it writes."""
    f = fields_of(b"<tvshow><id IMDB='tt0411008' TMDB='4607'>73739</id></tvshow>")
    assert f["uniqueids"] == {"tmdb": "4607", "imdb": "tt0411008", "tvdb": "73739"}


@pytest.mark.parametrize("tag", ["tmdbid", "tmdbId", "TmdbId", "TMDBID"])
def test_id_tags_in_any_case(tag: str) -> None:
    """<tmdbid>, <tmdbId>, <imdbId>, <TVDBID> ... all name their provider."""
    upper = tag.replace("tmdb", "tvdb").replace("Tmdb", "Tvdb").replace("TMDB", "TVDB")
    xml = f"<movie><{tag}>603</{tag}><imdbId>tt0133093</imdbId><{upper}>169</{upper}></movie>".encode()
    assert nfo_ids(parse_nfo(xml)) == {"tmdb": "603", "imdb": "tt0133093", "tvdb": "169"}


def test_jellyfin_movie_tmdbid_camel_case_and_imdb_default() -> None:
    """Jellyfin's Justice League sample: <tmdbId> joins the imdb uniqueid; <id> adds nothing."""
    f = fields_of(sample("jellyfin_justice_league.nfo"))
    assert f["uniqueids"] == {"imdb": "tt0974015", "tmdb": "141052"}
    assert (f["tmdb_id"], f["imdb_id"]) == (141052, "tt0974015")


def test_tmdbcol_uniqueid_is_the_set_id_never_the_item_id() -> None:
    """<uniqueid type="tmdbcol" default="true"> is the collection: not an item id, not the default."""
    xml = (b"<movie><uniqueid type='tmdbcol' default='true'>10</uniqueid><uniqueid type='tmdb'>11</uniqueid>"
           b"<set><name>Star Wars Collection</name></set></movie>")
    f = fields_of(xml)
    assert f["uniqueids"] == {"tmdb": "11"} and f["tmdb_id"] == 11
    assert f["set"] == {"name": "Star Wars Collection", "overview": "", "tmdbcolid": 10}
    alone = fields_of(b"<movie><uniqueid type='tmdbcol'>10</uniqueid></movie>")
    assert "uniqueids" not in alone and "tmdb_id" not in alone
    text = render_nfo("movie", f).decode()
    assert 'type="tmdbcol"' not in text and '<uniqueid type="tmdb" default="true">11</uniqueid>' in text


# --- sets, season art, dates ---------------------------------------------------------------------------------

def test_set_tmdbcolid_attribute_jellyfin_sample() -> None:
    """Jellyfin's <set tmdbcolid="702342"> keeps its collection id with the name and overview."""
    f = fields_of(sample("jellyfin_justice_league.nfo"))
    assert f["set"] == {"name": "Justice League Collection", "overview": "Based on the DC Comics superhero team",
                        "tmdbcolid": 702342}
    assert field_specs.validate("set", f["set"]) == f["set"]
    assert '<set tmdbcolid="702342">' in render_nfo("movie", f).decode()


def test_all_seasons_art_is_read_back() -> None:
    """season="-1" is the all-seasons art (season-all-poster.jpg), which our renderer writes."""
    xml = (b"<tvshow><thumb aspect='poster' type='season' season='-1'>season-all-poster.jpg</thumb>"
           b"<thumb aspect='poster' type='season' season='0'>season-specials-poster.jpg</thumb></tvshow>")
    assert fields_of(xml)["thumbs"] == [
        {"aspect": "poster", "url": "season-all-poster.jpg", "season": -1},
        {"aspect": "poster", "url": "season-specials-poster.jpg", "season": 0},
    ]
    ours = render_nfo("tvshow", {"title": "X", "art": {"season-all-poster": "season-all-poster.jpg"}})
    assert fields_of(ours)["thumbs"] == [{"aspect": "poster", "url": "season-all-poster.jpg", "season": -1}]


def test_kodi_v20_all_seasons_art_mediaelch_sample() -> None:
    """MediaElch's Kodi v20 Torchwood sample: season="-1" posters and banners are all-seasons art."""
    thumbs = fields_of(sample("mediaelch_kodi_v20_torchwood_tvshow.nfo"))["thumbs"]
    assert [(t["aspect"], t.get("season")) for t in thumbs] == [
        ("poster", None), ("banner", None), ("poster", -1), ("poster", 0), ("poster", 1), ("banner", -1),
        ("banner", 1)]


def test_jellyfin_tvshow_season_art() -> None:
    """Jellyfin's American Gods sample: season posters keep their seasons, the show poster has none."""
    f = fields_of(sample("jellyfin_american_gods_tvshow.nfo"))
    assert [t.get("season") for t in f["thumbs"]] == [None, 2, 1]
    assert f["uniqueids"] == {"tmdb": "46639", "tvdb": "253573"}


@pytest.mark.parametrize("text", ["2009-08-19", "19-08-2009", "19.08.2009", "2009/08/19", "2009.08.19",
                                  "19/08/2009", "2009-08-19 00:00:00", " 2009-8-19 "])
def test_dates_in_the_forms_kodi_accepts(text: str) -> None:
    """premiered and aired in Kodi's SetFromDBDate forms become yyyy-mm-dd."""
    f = fields_of(f"<episodedetails><premiered>{text}</premiered><aired>{text}</aired></episodedetails>".encode())
    assert (f["premiered"], f["aired"]) == ("2009-08-19", "2009-08-19")


@pytest.mark.parametrize("text", ["2009-13-45", "31.02.2009", "August 2009", "2009", "0000-00-00"])
def test_impossible_dates_are_dropped(text: str) -> None:
    """A date that is not a real calendar day is not read (Kodi's SetDate fails on it too)."""
    assert "premiered" not in fields_of(f"<movie><premiered>{text}</premiered></movie>".encode())


def test_year_comes_from_premiered_when_missing() -> None:
    """Kodi uses <year> only when <premiered> is absent, and takes the year from premiered."""
    assert fields_of(b"<movie><premiered>19.08.2009</premiered></movie>")["year"] == 2009


# --- Jellyfin / Emby tags and watched state --------------------------------------------------------------------

def test_communityrating_jellyfin_sample() -> None:
    """Jellyfin's CommunityRating.nfo: <communityrating> is the default rating when there is no other."""
    f = fields_of(sample("jellyfin_community_rating.nfo"))
    assert f["ratings"] == [{"name": "default", "value": 7.5, "votes": 0, "max": 10, "default": True}]
    kodi = fields_of(b"<movie><rating>6.1</rating><communityrating>7.5</communityrating></movie>")
    assert [r["value"] for r in kodi["ratings"]] == [6.1]


def test_actor_types_that_are_not_actors() -> None:
    """<actor><type>: Director -> directors, Writer -> credits, GuestStar stays cast, others are skipped."""
    xml = (b"<episodedetails><director>A</director>"
           b"<actor><name>A</name><type>Director</type></actor>"
           b"<actor><name>B</name><type>Director</type></actor>"
           b"<actor><name>C</name><type>Writer</type></actor>"
           b"<actor><name>D</name><role>Guest</role><type>GuestStar</type></actor>"
           b"<actor><name>E</name><type>Producer</type></actor>"
           b"<actor><name>F</name><role>Lead</role><type>Actor</type></actor>"
           b"<actor><name>G</name><role>Plain</role></actor></episodedetails>")
    f = fields_of(xml)
    assert f["directors"] == ["A", "B"] and f["credits"] == ["C"]
    assert [a["name"] for a in f["actors"]] == ["D", "F", "G"]


def test_jellyfin_lyricist_is_not_cast() -> None:
    """Justice League's <actor><type>Lyricist</type> is not one of the cast."""
    f = fields_of(sample("jellyfin_justice_league.nfo"))
    assert [a["name"] for a in f["actors"]] == ["Ben Affleck", "Henry Cavill"]


def test_playcount_lastplayed_top250() -> None:
    """playcount, lastplayed and top250 reach the model (0 and empty tags mean none)."""
    f = fields_of(sample("jellyfin_justice_league.nfo"))
    assert (f["playcount"], f["lastplayed"]) == (2, "2021-02-11 07:47:23")
    assert "top250" not in f  # <top250>0</top250>: not in the top 250
    assert fields_of(b"<movie><top250>42</top250></movie>")["top250"] == 42
    episode = fields_of(sample("jellyfin_bone_orchard_episode.nfo"))
    assert episode["playcount"] == 0 and "lastplayed" not in episode
    odd = fields_of(b"<movie><playcount>99999999999</playcount><lastplayed>11.02.2021 07:47:23</lastplayed></movie>")
    assert "playcount" not in odd and odd["lastplayed"] == "2021-02-11 07:47:23"
    assert "lastplayed" not in fields_of(b"<movie><lastplayed>yesterday</lastplayed></movie>")
    for name in ("playcount", "lastplayed", "top250"):
        assert field_specs.validate(name, f.get(name, 42)) is not None
    text = render_nfo("movie", {"title": "X", "top250": 42}, existing=b"<movie><top250>42</top250></movie>")
    assert "<top250>42</top250>" in text.decode()


# --- round trips ------------------------------------------------------------------------------------------------

ROUND_TRIP = [
    ("kodi_movie.nfo", "movie"), ("jellyfin_justice_league.nfo", "movie"), ("jellyfin_movie.nfo", "movie"),
    ("tmm_movie.nfo", "movie"), ("radarr_movie.nfo", "movie"), ("ember_movie.nfo", "movie"),
    ("jellyfin_american_gods_tvshow.nfo", "tvshow"), ("jellyfin_tvshow.nfo", "tvshow"),
    ("tvshow_episodeguide.nfo", "tvshow"), ("tvshow_old_episodeguide.nfo", "tvshow"),
    ("mediaelch_kodi_v20_torchwood_tvshow.nfo", "tvshow"),
    ("jellyfin_bone_orchard_episode.nfo", "episodedetails"), ("episode.nfo", "episodedetails"),
]


def _kept(f: dict[str, Any]) -> dict[str, Any]:
    """The fields a round trip must keep exactly."""
    return {key: f[key] for key in KEPT if key in f}


def _thumb_lines(data: bytes) -> list[tuple[str | None, str | None, str]]:
    """(aspect, season, url) of each top-level <thumb> with a URL in an NFO's first root."""
    root = split_document(*decode_nfo(data)).roots[0].element
    return [(t.get("aspect"), t.get("season"), (t.text or "").strip()) for t in root.findall("thumb")
            if (t.text or "").strip()]


@pytest.mark.parametrize(("name", "kind"), ROUND_TRIP)
def test_round_trip_keeps_ids_sets_art_and_dates(name: str, kind: str) -> None:
    """read -> write -> read -> write -> read: ids, set, season art, dates and watched state never change.

    Also with nothing to merge into: what the templates write reads back the same (top250 has no template
    slot, so only the existing NFO's copy carries it).
    """
    data = sample(name)
    first = fields_of(data, kind)
    ours = render_nfo(kind, first, existing=data)  # as publishing writes it: over the NFO that is there
    second = fields_of(ours, kind)
    third = fields_of(render_nfo(kind, second, existing=ours), kind)
    assert _kept(second) == _kept(first)
    assert _kept(third) == _kept(second)
    assert _thumb_lines(ours) == _thumb_lines(data)  # every artwork line, season art included, is written back
    fresh = fields_of(render_nfo(kind, first), kind)
    assert _kept(fresh) == {k: v for k, v in _kept(first).items() if k != "top250"}


def test_round_trip_of_rendered_fields_with_every_id_and_season_art() -> None:
    """Our own tvshow NFO with tmdb-only ids, all-seasons and specials art reads back as written."""
    fields = {"title": "Show", "tmdb_id": 1399, "premiered": "2011-04-17",
              "art": {"poster": "poster.jpg", "season-all-poster": "season-all-poster.jpg",
                      "season-specials-banner": "season-specials-banner.jpg", "season01-poster": "s1.jpg"}}
    first = fields_of(render_nfo("tvshow", fields))
    assert first["uniqueids"] == {"tmdb": "1399"} and "tvdb_id" not in first
    assert sorted((t["aspect"], t.get("season", -99)) for t in first["thumbs"]) == [
        ("banner", 0), ("poster", -99), ("poster", -1), ("poster", 1)]
    assert _kept(fields_of(render_nfo("tvshow", first))) == _kept(first)
