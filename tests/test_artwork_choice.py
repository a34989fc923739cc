"""choose_artwork: language order, votes, resolution, minimum sizes, limits, season slots."""

from __future__ import annotations

from typing import Any

import pytest

from agent.providers.artwork import art_key, choose_artwork, rank_artwork
from agent.providers.base import ArtworkCandidate


def cand(url: str, art_type: str = "poster", language: str | None = "en", votes: float = 0,
         size: tuple[int, int] | None = (1000, 1500), **kw: Any) -> ArtworkCandidate:
    """A candidate with short defaults."""
    width, height = size if size else (None, None)
    return ArtworkCandidate(art_type, url, language, votes=votes, width=width, height=height, **kw)


def urls(chosen: dict[str, list[ArtworkCandidate]], slot: str) -> list[str]:
    """The chosen URLs of one slot."""
    return [c.url for c in chosen.get(slot, [])]


def test_preferred_language_then_neutral_then_others() -> None:
    """A German poster with many votes loses to an English one, which loses to none when asked in de."""
    posters = [cand("de", language="de", votes=90), cand("neutral", language=None, votes=50),
               cand("en", language="en", votes=1), cand("zz", language="00", votes=5)]
    assert [c.url for c in rank_artwork(posters, "en")] == ["en", "neutral", "zz", "de"]
    assert [c.url for c in rank_artwork(posters, "de-DE")] == ["de", "neutral", "zz", "en"]
    assert urls(choose_artwork(posters, "fr"), "poster") == ["neutral"]


def test_votes_then_resolution_within_a_language() -> None:
    """More votes first; equal votes: the larger image."""
    posters = [cand("small", votes=5, size=(1000, 1500)), cand("big", votes=5, size=(2000, 3000)),
               cand("liked", votes=9, size=(680, 1000))]
    assert [c.url for c in rank_artwork(posters, "en")] == ["liked", "big", "small"]


def test_fanart_prefers_text_free_images() -> None:
    """Backdrops with no language beat those with text in the preferred language."""
    backdrops = [
        cand("en-text", "fanart", "en", 50, (1920, 1080)),
        cand("clean", "fanart", None, 1, (1920, 1080)),
    ]
    assert urls(choose_artwork(backdrops, "en"), "fanart") == ["clean"]
    assert urls(choose_artwork(backdrops, "en", neutral_first=()), "fanart") == ["en-text"]


def test_minimum_sizes_drop_small_images_but_keep_unknown_sizes() -> None:
    """Below the minimum is dropped; unknown width/height is given the benefit of the doubt."""
    items = [
        cand("tiny", votes=99, size=(200, 300)),
        cand("unknown", votes=50, size=None),
        cand("ok", votes=1),
        cand("small-logo", "clearlogo", votes=9, size=(200, 78)),
        cand("hd-logo", "clearlogo", votes=1, size=(800, 310)),
    ]
    chosen = choose_artwork(items, "en", limits={"poster": 5})
    assert urls(chosen, "poster") == ["unknown", "ok"]
    assert urls(chosen, "clearlogo") == ["hd-logo"]
    relaxed = choose_artwork(items, "en", limits={"poster": 5}, min_sizes={})
    assert urls(relaxed, "poster") == ["tiny", "unknown", "ok"]


def test_limits_and_extrafanart() -> None:
    """One of each type by default; fanart gets 1 + extrafanart; limit 0 drops the type."""
    items = [cand(f"f{i}", "fanart", None, votes=10 - i, size=(1920, 1080)) for i in range(5)]
    items += [cand(f"p{i}", votes=i) for i in range(3)] + [cand("b", "banner", size=(1000, 185))]
    chosen = choose_artwork(items, "en", extrafanart=2)
    assert urls(chosen, "fanart") == ["f0", "f1", "f2"]
    assert urls(chosen, "poster") == ["p2"]
    assert "banner" not in choose_artwork(items, "en", limits={"banner": 0})
    assert set(choose_artwork(items, "en", types=["poster"])) == {"poster"}
    with pytest.raises(ValueError, match="extrafanart"):
        choose_artwork(items, extrafanart=-1)


def test_season_posters_get_their_own_slots() -> None:
    """Season art is chosen per season, apart from the show poster."""
    items = [cand("show"), cand("s1a", season=1, votes=1), cand("s1b", season=1, votes=3),
             cand("s0", season=0), cand("s12", season=12)]
    chosen = choose_artwork(items, "en")
    assert urls(chosen, "poster") == ["show"]
    assert urls(chosen, "season01-poster") == ["s1b"]
    assert urls(chosen, "season00-poster") == ["s0"]
    assert art_key(items[-1]) == "season12-poster"


def test_duplicate_urls_from_two_sources_count_once() -> None:
    """The same URL offered twice is chosen once."""
    items = [cand("same", votes=3), cand("same", votes=3, source="fanart"), cand("other", votes=1)]
    assert urls(choose_artwork(items, "en", limits={"poster": 3}), "poster") == ["same", "other"]


def test_candidates_validate_and_round_trip() -> None:
    """Unknown types are refused; to_dict/from_dict keep every field."""
    with pytest.raises(ValueError, match="unknown artwork type 'cover'"):
        ArtworkCandidate("cover", "http://x")
    with pytest.raises(ValueError, match="unknown artwork source"):
        ArtworkCandidate("poster", "http://x", source="imdb")
    original = cand("http://x/p.jpg", season=2, votes=4.0, source="fanart")
    assert ArtworkCandidate.from_dict(original.to_dict()) == original
