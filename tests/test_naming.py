"""Naming rules: movie titles and years, id tags, episodes, season folders, stacks, extras and junk."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.library import naming
from agent.library.naming import (
    EpisodeName,
    ids_from_name,
    is_extra_file,
    is_extras_folder,
    is_junk,
    is_video,
    parse_episode,
    parse_movie_name,
    parse_season_folder,
    parse_show_name,
    stack_key,
)
from agent.library.scene import fast_title_year, scene_title, scene_title_year, stop_words


@pytest.mark.parametrize(
    ("folder", "stem", "expected"),
    [
        ("The Matrix (1999)", "The Matrix (1999)", ("The Matrix", 1999)),
        ("The Matrix (1999) {tmdb-603}", None, ("The Matrix", 1999)),
        ("The Matrix (1999) [imdbid-tt0133093]", "matrix", ("The Matrix", 1999)),
        ("1917 (2019)", "1917", ("1917", 2019)),
        ("Downloads", "The.Matrix.1999.1080p.BluRay.x264", ("The Matrix", 1999)),
        ("Movies", "Blade.Runner.2049.2017.1080p", ("Blade Runner 2049", 2017)),
        ("", "Amelie (2001) - 1080p", ("Amelie", 2001)),
        ("Alien", None, ("Alien", None)),
    ],
)
def test_parse_movie_name(folder: str, stem: str | None, expected: tuple[str, int | None]) -> None:
    """Kodi/Jellyfin folders, scene names and id tags read as guessit reads `folder/file`."""
    assert parse_movie_name(folder, stem) == expected


def test_strict_names_skip_guessit(monkeypatch: pytest.MonkeyPatch) -> None:
    """`Title (Year)` and an unambiguous `Title.Year.` never reach guessit; other names are memoised."""
    calls: list[str] = []
    real = naming._guess

    def counting(name: str, kind: str) -> dict[str, object]:
        """Count guessit calls."""
        calls.append(name)
        return real(name, kind)

    monkeypatch.setattr(naming, "_guess", counting)
    naming._guess_movie.cache_clear()
    assert parse_movie_name("Heat (1995)", "Heat (1995)") == ("Heat", 1995)
    assert parse_movie_name("x", "Heat.1995.720p") == ("Heat", 1995)
    assert calls == []
    assert parse_movie_name("Some Folder", "some.unusual.name.without.year") == (
        "some unusual name without year",
        None,
    )
    assert parse_movie_name("Some Folder", "some.unusual.name.without.year")[0]
    assert calls == ["Some Folder/some.unusual.name.without.year"]  # guessit reads folder and file together


def test_ids_from_name() -> None:
    """Jellyfin/Radarr id tags give ids; zero and malformed ids are dropped."""
    assert ids_from_name("The Matrix (1999) {tmdb-603} [imdbid-tt0133093]") == {
        "tmdb": "603",
        "imdb": "tt0133093",
    }
    assert ids_from_name("Show (2010) {tvdb-12345}") == {"tvdb": "12345"}
    assert ids_from_name("Show [tvdbid=81189]") == {"tvdb": "81189"}
    assert ids_from_name("X {tmdb-0} [imdbid-123]") == {}
    assert ids_from_name("No tags (2000)") == {}


@pytest.mark.parametrize(
    ("name", "season", "expected"),
    [
        ("Show - S01E02 - The Title.mkv", None, EpisodeName(1, [2], None, "The Title")),
        ("show.s1e2.720p.hdtv.mkv", None, EpisodeName(1, [2], None, None)),
        ("Show 1x02.mkv", None, EpisodeName(1, [2], None, None)),
        ("Show.S02E01E02.mkv", None, EpisodeName(2, [1, 2], None, None)),
        ("Show S01E01-E02.mkv", None, EpisodeName(1, [1, 2], None, None)),
        ("Show S01E01-02.mkv", None, EpisodeName(1, [1, 2], None, None)),
        ("Show S01E01-E03.mkv", None, EpisodeName(1, [1, 2, 3], None, None)),
        ("Show S00E01.mkv", 3, EpisodeName(0, [1], None, None)),
        ("Show.S01E01-1080p.mkv", None, EpisodeName(1, [1], None, None)),
        ("Show.2024.03.15.mkv", None, EpisodeName(None, [], "2024-03-15", None)),
        ("Show 2024-03-15 Guest Name.mkv", 2024, EpisodeName(2024, [], "2024-03-15", "Guest Name")),
        ("Show - 012.mkv", 1, EpisodeName(1, [12], None, None)),
    ],
)
def test_parse_episode(name: str, season: int | None, expected: EpisodeName) -> None:
    """Every supported episode pattern; the file's season wins over the folder's."""
    assert parse_episode(name, season) == expected


@pytest.mark.parametrize("name", ["random.mkv", "Show 1920x1080.mkv"])
def test_parse_episode_rejects_non_episodes(name: str) -> None:
    """Resolutions and plain names are not episodes."""
    assert parse_episode(name) is None


def test_impossible_air_date_is_not_a_date() -> None:
    """A month 13 never becomes an air date."""
    result = parse_episode("Show.2024.13.45.mkv")
    assert result is None or result.aired is None


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("Season 01", 1),
        ("Season 1", 1),
        ("season.12", 12),
        ("S01", 1),
        ("Specials", 0),
        ("Season 00", 0),
        ("Extras", None),
        ("Show (2010)", None),
    ],
)
def test_parse_season_folder(name: str, expected: int | None) -> None:
    """Season folder names in the spellings Kodi, Jellyfin and Sonarr use."""
    assert parse_season_folder(name) == expected


@pytest.mark.parametrize(
    ("stem", "expected"),
    [
        ("Movie cd1", ("Movie", 1)),
        ("Movie-CD2", ("Movie", 2)),
        ("Movie part1", ("Movie", 1)),
        ("Movie.pt2", ("Movie", 2)),
        ("Movie_disc1", ("Movie", 1)),
        ("Movie dvd3", ("Movie", 3)),
        ("Movie (2000) - part 1 - x", ("Movie (2000) - x", 1)),
        ("cd1", None),
        ("Disco Inferno", None),
        ("Movie (2000)", None),
    ],
)
def test_stack_key(stem: str, expected: tuple[str, int] | None) -> None:
    """cd/part/disc/dvd/pt markers with any separator give a stack base and part."""
    assert stack_key(stem) == expected


def test_extras_junk_and_videos() -> None:
    """Extras by suffix and folder, junk and partial downloads, video extensions."""
    for stem in ("Movie-trailer", "Movie.sample", "sample", "Movie-behindthescenes", "Movie-deleted"):
        assert is_extra_file(stem), stem
    for stem in ("Movie", "The Other Side (2000)", "Sampler (2001)"):
        assert not is_extra_file(stem), stem
    for folder in ("Trailers", "extras", "Behind The Scenes", ".actors", "extrafanart", "Sample"):
        assert is_extras_folder(folder), folder
    assert not is_extras_folder("Season 01")
    for name in (
        ".DS_Store",
        "Thumbs.db",
        "@eaDir",
        "#recycle",
        ".hidden",
        "movie.mkv.part",
        "a.!qB",
        "x.tmp",
    ):
        assert is_junk(name), name
    assert not is_junk("Movie (2000).mkv")
    assert is_video("a.MKV") and is_video("b.m2ts") and is_video("c.iso")
    assert not is_video("a.nfo") and not is_video("mkv")


SCENE_AGREES = [
    "Silent.Red.12.1080p.BluRay.x264-SPARKS",
    "Red.Moon.7.DVDRip.XviD-DiAMOND",
    "Storm.Wild.0.2160p.WEB-DL.DDP5.1.HEVC-NTb",
    "Hidden.Ghost.9999.1080p.WEBRip.x265-RARBG",
    "Lost.City.2.720p.HDTV.x264-KILLERS",
    "Paper.Storm.Echo.1080p.BluRay",
    "Ghost.Rider.Spirit.Vengeance.1080p",
    "Big.Fish.BDRip.x264",
    "Up.1080p.BluRay",
]
SCENE_LEFT_TO_GUESSIT = [
    "Heat.Remastered.1080p.BluRay",  # an edition word
    "Amelie.French.1080p.BluRay",  # a language
    "The.Office.US.720p.HDTV",  # a country
    "Movie.Part.2.1080p.BluRay",  # a part
    "Moon.Red.WEB-DL",  # a streaming service right before the source
    "Silent.Red.720.DVDRip",  # a number guessit reads as a resolution
    "Heat.1995.1080p.BluRay",  # a year
    "Show.S01E02.1080p.WEB",  # an episode
    "Wall-E.1080p.BluRay",  # not plain words
    "It.1080p.BluRay",  # a two-letter word of guessit's vocabulary (Italian)
    "1917.1080p.BluRay",  # starts with a number
    "Plain Title 1080p",  # not a dotted name
    "No.Marker.At.All",
]


@pytest.mark.parametrize("name", SCENE_AGREES)
def test_scene_title_is_guessits_title(name: str) -> None:
    """Where the pre-parse answers, it gives exactly guessit's title (and guessit finds no year)."""
    from guessit import guessit

    guess = guessit(name, {"type": "movie"})
    assert scene_title(name) == guess["title"]
    assert "year" not in guess


@pytest.mark.parametrize("name", SCENE_LEFT_TO_GUESSIT)
def test_scene_title_leaves_unsure_names_to_guessit(name: str) -> None:
    """Words of guessit's vocabulary, years, episodes and odd shapes are not guessed here."""
    assert scene_title(name) is None


SCENE_YEAR_AGREES = [
    "Blade.Runner.2049.2017.1080p.BluRay.x264-GRP",
    "Night.1999.2001.1080p.WEB-DL",
    "Blue.Ghost.2063.1970.720p.HDTV.x264-KILLERS",  # 2063 is no year to guessit (its range is 1900-2034)
    "Red.1899.1950.DVDRip.XviD",
    "Blue.Ghost.1970.2063.720p.HDTV",
    "Code.Iron.1884.1080p.WEBRip.x265-RARBG",
]
SCENE_YEAR_LEFT_TO_GUESSIT = [
    "Moon.Code.2001.1999.2004.1080p",  # three year-like numbers
    "Heat.Remastered.1995.2001.1080p",  # an edition word
    "Night.1999.Cut.2001.1080p",  # the numbers are not side by side
    "1999.2001.1080p.BluRay",  # no title word
    "Night.1999.2001.Extended",  # no resolution or source after the year
]


@pytest.mark.parametrize("name", SCENE_YEAR_AGREES)
def test_scene_title_year_is_guessits(name: str) -> None:
    """A number inside the title, then the year: exactly guessit's title and year."""
    from guessit import guessit

    guess = guessit(name, {"type": "movie"})
    assert fast_title_year(name) == (guess["title"], guess.get("year"))


@pytest.mark.parametrize("name", SCENE_YEAR_LEFT_TO_GUESSIT)
def test_scene_title_year_leaves_unsure_names_to_guessit(name: str) -> None:
    """Other shapes with years go to guessit."""
    assert scene_title_year(name) is None
    assert fast_title_year(name) is None


def test_yearless_scene_names_skip_guessit(monkeypatch: pytest.MonkeyPatch) -> None:
    """A common year-less scene name gets guessit's answer without a guessit call; others still call it."""
    calls: list[str] = []
    real = naming._guess
    monkeypatch.setattr(naming, "_guess", lambda name, kind: calls.append(name) or real(name, kind))
    naming._guess_movie.cache_clear()
    name = "Iron.Code.15.2160p.WEB-DL.DDP5.1.HEVC-NTb"
    assert parse_movie_name(name, name) == ("Iron Code 15", None)
    assert calls == []
    assert parse_movie_name("Heat.Remastered.1080p.BluRay", None) == ("Heat", None)
    assert calls == ["Heat.Remastered.1080p.BluRay"]


def test_scene_vocabulary_comes_from_guessit() -> None:
    """The stop words are read from guessit's packaged config, so new guessit words are respected."""
    stops, services = stop_words()
    assert {"extended", "french", "proper", "part"} <= stops
    assert "netflix" in services
    assert "silent" not in stops and "moon" not in stops


# Families guessit reads and the old fast paths got wrong (issue 14); the folder name is what the scan passes.
GUESSIT_MOVIE_FAMILIES = [
    ("", "Aliens.SE.1986.BDRip.1080p", ("Aliens", 1986)),  # SE: special edition
    ("", "Pacific.Rim.3D.2013.COMPLETE.BLURAY-PCH", ("Pacific Rim", 2013)),  # 3D: a format
    ("", "Suicide Squad EXTENDED (2016) 2160p 4K UltraHD Blu-Ray x265 -DDR", ("Suicide Squad", 2016)),
    ("", "Alien DC (1979) [1080p]", ("Alien", 1979)),  # DC: director's cut
    ("", "Captain.America.Civil.War.HDR.1080p.HEVC.10bit.BT.2020.DTS-VISIONHDR", ("Captain America Civil War", None)),
    ("M.A.S.H. (1970)", "MASH.(1970).[Divx.5.02][Dual-Subtitulos][DVDRip]", ("MASH", 1970)),
    ("Greenberg.REPACK.LiMiTED.DVDRip.XviD-ARROW", "arw-repack-greenberg.dvdrip.xvid", ("Greenberg", None)),
    ("Sin City (BluRay) (2005)", "Sin.City.2005.BDRip.720p.x264.AC3-SEPTiC", ("Sin City", 2005)),
    ("", "www.TamilBlasters.vip - Shang-Chi (2021) 720p BDRip x264", ("Shang-Chi", 2021)),
    ("", "ulshd-the.right.stuff.1983.multi.1080p.bluray.x264", ("the right stuff", 1983)),
]  # fmt: skip


@pytest.mark.parametrize(("folder", "stem", "expected"), GUESSIT_MOVIE_FAMILIES)
def test_movie_names_as_guessit_reads_them(folder: str, stem: str, expected: tuple[str, int | None]) -> None:
    """Edition and format words are not title, a meaningful release folder beats an obfuscated file name."""
    assert parse_movie_name(folder, stem) == expected


GUESSIT_EPISODE_FAMILIES = [
    ("Show.Name.S01E02.S01E03.HDTV.XViD.Etc-Group", None, "", (1, [2, 3])),
    ("Show.Name.1x02.1x03.HDTV.XViD.Etc-Group", None, "", (1, [2, 3])),
    ("Astro.Le.Petit.Robot.S01E01+02.FRENCH.DVDRiP.X264.INT-BOOLZ.mkv", None, "", (1, [1, 2])),
    ("Project.Runway.S14E00.and.S14E01.(Eng.Subs).SDTV.x264-[2Maverick].mp4", None, "", (14, [0, 1])),
    ("Show.Name.S03E21.22.FASTSUB.VOSTFR.HDTV.XviD.GROUP", None, "", (3, [21, 22])),
    ("Bleach - s16e03-04 - 313-314", None, "", (16, [3, 4])),  # not 313 and 314
    ("That '70s Show - S07E22 - 2000 Light Years from Home.mkv", 7, "Season 07", (7, [22])),
    ("[ISLAND]One_Piece_679_[VOSTFR]_[V1]_[8bit]_[720p]_[EB7838FC].mp4", None, "", (None, [679])),
    ("[Kaerizaki-Fansub]_One_Piece_679_[VOSTFR][HD_1280x720].mp4", None, "One Piece", (None, [679])),
    ("[FASubs & TTF] Inuyasha - 099 [DVD] [B15AA1AC].mkv", None, "", (None, [99])),
    ("The Office [401] Fun Run.avi", 4, "Season 4", (4, [1])),
    ("The Office [401] Fun Run.avi", None, "The Office (US)", (4, [1])),
    ("Show Name - Temporada 4 [HDTV][Cap.408][Espanol Castellano]", None, "", (4, [8])),
    ("c48db7d2aeb040e8a920a9fd6effcbf4.mkv", None, "Hells.Kitchen.US.S17E08.1080p.x265-MeGusta-Obfuscated", (17, [8])),
    ("Friends - 07 - The One.mkv", None, "Friends S03", (3, [7])),
    ("Kaamelott - 5x44x45x46.avi", None, "", (5, [44, 45, 46])),
    ("Show.S01E01E02E03.720p.mkv", None, "", (1, [1, 2, 3])),
]  # fmt: skip


@pytest.mark.parametrize(("name", "season", "folder", "expected"), GUESSIT_EPISODE_FAMILIES)
def test_episode_names_as_guessit_reads_them(
    name: str, season: int | None, folder: str, expected: tuple[int | None, list[int]]
) -> None:
    """Multi-episode forms, years in titles, absolute anime numbers, `[401]`, `[Cap.408]`, release folders."""
    parsed = parse_episode(name, season, folder)
    assert parsed is not None
    assert (parsed.season, parsed.episodes) == expected


@pytest.mark.parametrize(
    ("folder", "expected"),
    [
        ("Coupling Season 4", ("Coupling", None)),
        ("The Office (US)", ("The Office (US)", None)),  # the country names another show than The Office (UK)
        ("Shameless (UK)", ("Shameless (UK)", None)),
        ("Doctor Who (2005)", ("Doctor Who", 2005)),
        ("Game of Thrones", ("Game of Thrones", None)),
        ("Breaking Bad {tvdb-81189}", ("Breaking Bad", None)),
    ],
)
def test_parse_show_name(folder: str, expected: tuple[str, int | None]) -> None:
    """A show folder as guessit reads a series name: season words dropped, a country kept in the title."""
    assert parse_show_name(folder) == expected


# Names the fast paths answer: each answer must be guessit's own on the same input.
FAST_MOVIES = [
    ("Heat (1995)", "Heat (1995) Bluray-1080p"),
    ("1917 (2019)", ""),
    ("Back to the Future (1985)", "back.to.the.future.1985.1080p"),
    ("Borat (2006)", "Borat.(2006).R5.PROPER.REPACK.DVDRip.XviD-PUKKA"),
    ("", "Fear and Loathing in Las Vegas (1998) - 1080p"),
    ("", "The.Kings.Speech.2010.1080p.BluRay.DTS.x264.D Z0N3"),
    ("", "12.Angry.Men.1957"),
    ("Movies", "Red.Moon.7.DVDRip.XviD-DiAMOND"),
    ("", "Blade.Runner.2049.2017.1080p.BluRay.x264-GRP"),
]
FAST_EPISODES = [
    ("Season 01", "Show.Name.S01E02.720p.HDTV.x264-GRP.mkv"),
    ("Show", "Show - S01E02 - The Title WEBDL-1080p.mkv"),
    ("Show", "Show.S02E01E02.mkv"),
    ("Show", "Show 1x02-03 - Title.mkv"),
    ("Show", "Show.2024.03.15.Guest.Name.mkv"),
    ("Ao Haru Ride", "[HorribleSubs] Ao Haru Ride - 06 [480p].mkv"),
    ("Zankyou no Terror", "[Akindo-SSK] Zankyou no Terror - 05 [720P][Sub_ITA][F5CCE87C].mkv"),
    ("Spy x Family", "[SubsPlease] Spy x Family - 05 (1080p) [ABCD1234].mkv"),
    ("One Piece", "[ISLAND]One_Piece_679_[VOSTFR]_[8bit]_[720p]_[EB7838FC].mp4"),
    ("Show", "[Group] Show - 212v2 [720p].mkv"),
]


def _counting_guess(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Record every guessit call naming makes (memos cleared first)."""
    calls: list[str] = []
    real = naming._guess
    monkeypatch.setattr(naming, "_guess", lambda name, kind: calls.append(name) or real(name, kind))
    for value in vars(naming).values():
        if callable(getattr(value, "cache_clear", None)):
            value.cache_clear()
    return calls


@pytest.mark.parametrize(("folder", "stem"), FAST_MOVIES)
def test_fast_movie_answers_are_guessits(monkeypatch: pytest.MonkeyPatch, folder: str, stem: str) -> None:
    """Where a fast path answers a movie (no guessit call), its answer is guessit's on `folder/file`."""
    from guessit import guessit

    calls = _counting_guess(monkeypatch)
    ours = parse_movie_name(folder, stem or None)
    assert calls == []
    guess = guessit(f"{folder}/{stem}" if folder and stem else folder or stem, {"type": "movie"})
    assert ours == (guess["title"], guess.get("year"))


@pytest.mark.parametrize(("folder", "name"), FAST_EPISODES)
def test_fast_episode_answers_are_guessits(monkeypatch: pytest.MonkeyPatch, folder: str, name: str) -> None:
    """Where a fast path answers an episode (no guessit call), its numbers are guessit's on `folder/file`."""
    from guessit import guessit

    calls = _counting_guess(monkeypatch)
    parsed = parse_episode(name, parse_season_folder(folder), folder)
    assert calls == [] and parsed is not None
    guess = guessit(f"{folder}/{name}", {"type": "episode"})
    numbers = guess.get("episode", [])
    assert parsed.season == guess.get("season")
    assert parsed.episodes == (numbers if isinstance(numbers, list) else [numbers])
    assert parsed.aired == (guess["date"].isoformat() if "date" in guess else None)


def test_bracketed_numbers_reach_guessit(monkeypatch: pytest.MonkeyPatch) -> None:
    """`[401]`, `[Cap.408]` and fansub groups are handed to guessit as they are, never stripped first."""
    calls = _counting_guess(monkeypatch)
    parse_episode("The Office [401] Fun Run.avi", None, "Season 4")
    parse_episode("Show Name - Temporada 4 [HDTV][Cap.408][Espanol Castellano]")
    assert calls == [
        "Season 4/The Office [401] Fun Run.avi",
        "Show Name - Temporada 4 [HDTV][Cap.408][Espanol Castellano]",
    ]


def test_scanned_shows_read_like_guessit(tmp_path: Path) -> None:
    """The TV scan passes show folders and episode folders to the parser: `(US)` kept, `Friends S03` a season."""
    from agent.library.walk_series import SeriesCandidate, discover_series

    for relative in (
        "The Office (US)/Season 4/The Office [401] Fun Run.avi",
        "Friends S03/Friends - 07 - The One.mkv",
        "Coupling Season 4/Coupling - (4x03) - Bed Time.mkv",
    ):
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / relative).write_bytes(b"x")
    shows = {show.title: show for show in discover_series(tmp_path) if isinstance(show, SeriesCandidate)}
    assert set(shows) == {"The Office (US)", "Friends", "Coupling"}
    got = {title: [(ep.season, ep.episodes) for ep in show.episodes] for title, show in shows.items()}
    assert got == {"The Office (US)": [(4, [1])], "Friends": [(3, [7])], "Coupling": [(4, [3])]}
