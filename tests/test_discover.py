"""Discovery of movies and series in real folder trees under tmp_path."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from agent.errors import PathError
from agent.library.walk import Entry, folder_signature, scan_folder
from agent.library.walk_movies import MovieCandidate, MovieStub, discover_movies, movie_at, movie_key
from agent.library.walk_series import SeriesCandidate, SeriesStub, discover_series, series_at


def touch(root: Path, *names: str, data: bytes = b"x") -> None:
    """Create files (and their folders) under root."""
    for name in names:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


def movies(root: Path, only: Path | None = None) -> dict[str, MovieCandidate]:
    """Discovered movies keyed by their main file's name."""
    return {os.path.basename(m.file): m for m in discover_movies(root, only)}


def test_movie_folder_with_extras_nfo_artwork_and_ids(tmp_path: Path) -> None:
    """One movie per folder; trailers, samples, extras folders and junk are left out."""
    folder = tmp_path / "A-M" / "The Matrix (1999) {tmdb-603}"
    touch(
        folder,
        "The Matrix (1999).mkv",
        "The Matrix (1999)-trailer.mkv",
        "sample.mkv",
        "Featurettes/Making of.mkv",
        "Trailers/trailer.mp4",
        ".DS_Store",
        "@eaDir/poster.jpg",
        "The Matrix (1999).nfo",
        "movie.nfo",
        "folder.jpg",
        "backdrop.png",
        "clearlogo.png",
        "disc.png",
        "The Matrix (1999)-landscape.jpg",
        "extrafanart/fanart2.jpg",
        "extrafanart/fanart1.jpg",
    )
    found = movies(tmp_path)
    assert list(found) == ["The Matrix (1999).mkv"]
    movie = found["The Matrix (1999).mkv"]
    assert (movie.title, movie.year, movie.ids) == ("The Matrix", 1999, {"tmdb": "603"})
    assert movie.folder == str(folder) and not movie.shared_folder and movie.disc is None
    assert movie.nfo == str(folder / "The Matrix (1999).nfo")
    assert movie.artwork == {
        "poster": str(folder / "folder.jpg"),
        "fanart": str(folder / "backdrop.png"),
        "clearlogo": str(folder / "clearlogo.png"),
        "discart": str(folder / "disc.png"),
        "landscape": str(folder / "The Matrix (1999)-landscape.jpg"),
    }
    assert movie.extrafanart == [str(folder / "extrafanart/fanart1.jpg"), str(folder / "extrafanart/fanart2.jpg")]
    assert movie.size == 1


def test_nfo_fallbacks(tmp_path: Path) -> None:
    """movie.nfo, then a folder's only .nfo, are used when `<stem>.nfo` is missing."""
    touch(tmp_path, "One (2001)/One (2001).mkv", "One (2001)/movie.nfo")
    touch(tmp_path, "Two (2002)/two.mkv", "Two (2002)/whatever.nfo")
    touch(tmp_path, "Three (2003)/three.mkv", "Three (2003)/a.nfo", "Three (2003)/b.nfo")
    found = movies(tmp_path)
    assert found["One (2001).mkv"].nfo == str(tmp_path / "One (2001)/movie.nfo")
    assert found["two.mkv"].nfo == str(tmp_path / "Two (2002)/whatever.nfo")
    assert found["three.mkv"].nfo is None
    assert found["two.mkv"].title == "Two" and found["two.mkv"].year == 2002


def test_shared_folder(tmp_path: Path) -> None:
    """Several movies in one folder: each is a movie; only `<stem>-*` art and `<stem>.nfo` count."""
    touch(
        tmp_path,
        "Mixed/Heat (1995).mkv",
        "Mixed/Heat (1995)-poster.jpg",
        "Mixed/Heat (1995).nfo",
        "Mixed/Ronin.1998.720p.mkv",
        "Mixed/poster.jpg",
        "Mixed/movie.nfo",
        "Loose (2005).mp4",
    )
    found = movies(tmp_path)
    assert set(found) == {"Heat (1995).mkv", "Ronin.1998.720p.mkv", "Loose (2005).mp4"}
    heat, ronin, loose = found["Heat (1995).mkv"], found["Ronin.1998.720p.mkv"], found["Loose (2005).mp4"]
    assert heat.shared_folder and ronin.shared_folder and loose.shared_folder
    assert heat.artwork == {"poster": str(tmp_path / "Mixed/Heat (1995)-poster.jpg")}
    assert heat.nfo == str(tmp_path / "Mixed/Heat (1995).nfo")
    assert ronin.artwork == {} and ronin.nfo is None
    assert (ronin.title, ronin.year) == ("Ronin", 1998)
    assert (loose.title, loose.year) == ("Loose", 2005)
    before = ronin.signature
    touch(tmp_path, "Mixed/Heat (1995)-fanart.jpg")
    again = movies(tmp_path)
    assert again["Ronin.1998.720p.mkv"].signature == before
    assert again["Heat (1995).mkv"].signature != heat.signature


def test_disc_layouts(tmp_path: Path) -> None:
    """BDMV and VIDEO_TS folders are one movie each, whose file is the disc index."""
    touch(tmp_path, "Blu (2010)/BDMV/index.bdmv", "Blu (2010)/BDMV/STREAM/00001.m2ts", "Blu (2010)/poster.jpg")
    touch(tmp_path, "Dvd (1990)/VIDEO_TS/VIDEO_TS.IFO", "Dvd (1990)/VIDEO_TS/VTS_01_1.VOB")
    touch(tmp_path, "Dvd (1990)/VIDEO_TS/VIDEO_TS.nfo")
    found = movies(tmp_path)
    assert set(found) == {"index.bdmv", "VIDEO_TS.IFO"}
    blu, dvd = found["index.bdmv"], found["VIDEO_TS.IFO"]
    assert (blu.disc, blu.title, blu.year) == ("bluray", "Blu", 2010)
    assert blu.artwork == {"poster": str(tmp_path / "Blu (2010)/poster.jpg")}
    assert (blu.file, blu.parts) == (str(tmp_path / "Blu (2010)/BDMV/index.bdmv"), [blu.file])
    assert (dvd.disc, dvd.folder, dvd.nfo) == (
        "dvd",
        str(tmp_path / "Dvd (1990)"),
        str(tmp_path / "Dvd (1990)/VIDEO_TS/VIDEO_TS.nfo"),
    )


def test_stacks(tmp_path: Path) -> None:
    """cd1/cd2 files and CD1/CD2 folders are one movie whose file is the first part."""
    touch(tmp_path, "Long (1980)/Long cd2.avi", "Long (1980)/Long cd1.avi", "Long (1980)/Long.nfo")
    touch(tmp_path, "Split (1985)/CD1/split.avi", "Split (1985)/CD2/split.avi")
    found = movies(tmp_path)
    assert set(found) == {"Long cd1.avi", "split.avi"}
    long = found["Long cd1.avi"]
    assert [os.path.basename(p) for p in long.parts] == ["Long cd1.avi", "Long cd2.avi"]
    assert long.nfo == str(tmp_path / "Long (1980)/Long.nfo") and not long.shared_folder
    split = found["split.avi"]
    assert split.parts == [str(tmp_path / "Split (1985)/CD1/split.avi"), str(tmp_path / "Split (1985)/CD2/split.avi")]
    assert (split.title, split.year) == ("Split", 1985)


def test_only_limits_the_walk(tmp_path: Path) -> None:
    """`only` walks one folder; a file or extras folder means its movie; outside the root is an error."""
    touch(tmp_path, "A (2001)/A (2001).mkv", "A (2001)/Trailers/t.mkv", "B (2002)/B (2002).mkv")
    assert set(movies(tmp_path, tmp_path / "A (2001)")) == {"A (2001).mkv"}
    assert set(movies(tmp_path, tmp_path / "A (2001)/Trailers")) == {"A (2001).mkv"}
    assert set(movies(tmp_path, tmp_path / "B (2002)/B (2002).mkv")) == {"B (2002).mkv"}
    assert movies(tmp_path, tmp_path / "Gone (2003)") == {}
    with pytest.raises(PathError, match="not inside library"):
        list(discover_movies(tmp_path / "A (2001)", tmp_path / "B (2002)"))
    with pytest.raises(PathError, match="not a folder"):
        list(discover_movies(tmp_path / "missing"))


def test_signature_changes_with_names_sizes_and_mtimes(tmp_path: Path) -> None:
    """The signature moves when a file is added, grows or is touched, and is stable otherwise."""
    touch(tmp_path, "S (2000)/S (2000).mkv")
    first = movies(tmp_path)["S (2000).mkv"].signature
    assert movies(tmp_path)["S (2000).mkv"].signature == first
    touch(tmp_path, "S (2000)/poster.jpg")
    second = movies(tmp_path)["S (2000).mkv"].signature
    assert second != first
    (tmp_path / "S (2000)/S (2000).mkv").write_bytes(b"xy")
    third = movies(tmp_path)["S (2000).mkv"].signature
    assert third != second
    os.utime(tmp_path / "S (2000)/poster.jpg", ns=(1, 1))
    assert movies(tmp_path)["S (2000).mkv"].signature != third
    assert folder_signature(scan_folder(str(tmp_path / "S (2000)"))) == folder_signature(
        reversed(scan_folder(str(tmp_path / "S (2000)")))
    )


def test_series(tmp_path: Path) -> None:
    """Seasons from folders and names, specials, multi-episodes, art per season, unmatched files reported."""
    show = tmp_path / "Drama" / "Show (2010) {tvdb-12345}"
    touch(
        show,
        "tvshow.nfo",
        "poster.jpg",
        "fanart.jpg",
        "season01-poster.jpg",
        "season-specials-poster.jpg",
        "season-all-banner.jpg",
        "Season 01/Show - S01E01 - Pilot.mkv",
        "Season 01/Show - S01E01 - Pilot.nfo",
        "Season 01/Show - S01E01 - Pilot-thumb.jpg",
        "Season 01/Show S01E02E03.mkv",
        "Season 01/folder.jpg",
        "Season 01/Show S01E04.mkv.part",
        "Season 01/Show-trailer.mkv",
        "S02/04.mkv",
        "Specials/Show S00E01.mkv",
        "Show S03E01.mkv",
        "Season 01/Behind.mkv",
    )
    found = list(discover_series(tmp_path))
    assert len(found) == 1
    series = found[0]
    assert (series.folder, series.title, series.year) == (str(show), "Show", 2010)
    assert series.ids == {"tvdb": "12345"} and series.nfo == str(show / "tvshow.nfo")
    assert series.artwork == {"poster": str(show / "poster.jpg"), "fanart": str(show / "fanart.jpg")}
    assert series.season_artwork == {
        0: {"poster": str(show / "season-specials-poster.jpg")},
        1: {"poster": str(show / "season01-poster.jpg")},
        "all": {"banner": str(show / "season-all-banner.jpg")},
    }
    assert series.seasons == {0: str(show / "Specials"), 1: str(show / "Season 01"), 2: str(show / "S02")}
    eps = {(e.season, tuple(e.episodes)): e for e in series.episodes}
    assert set(eps) == {(0, (1,)), (1, (1,)), (1, (2, 3)), (2, (4,)), (3, (1,))}
    pilot = eps[(1, (1,))]
    assert pilot.title == "Pilot" and pilot.nfo == str(show / "Season 01/Show - S01E01 - Pilot.nfo")
    assert pilot.thumb == str(show / "Season 01/Show - S01E01 - Pilot-thumb.jpg")
    assert series.unmatched == [str(show / "Season 01/Behind.mkv")]
    before = series.signature
    touch(show, "Season 01/Show S01E05.mkv")
    after = next(iter(discover_series(tmp_path, show / "Season 01")))
    assert after.folder == str(show) and after.signature != before


def test_series_only_and_daily(tmp_path: Path) -> None:
    """`only` on an episode file finds its show; air-dated episodes carry the date."""
    touch(tmp_path, "News/Season 2024/News.2024.03.15.mkv", "Other/Other S01E01.mkv")
    found = list(discover_series(tmp_path, tmp_path / "News/Season 2024/News.2024.03.15.mkv"))
    assert [s.title for s in found] == ["News"]
    (episode,) = found[0].episodes
    assert (episode.season, episode.episodes, episode.aired) == (2024, [], "2024-03-15")


def _bare_walk(path: str) -> int:
    """The baseline: scandir plus one stat per entry, nothing else."""
    count = 0
    with os.scandir(path) as it:
        for entry in it:
            entry.stat()
            count += 1
            if entry.is_dir():
                count += _bare_walk(entry.path)
    return count


def test_discovery_cost_is_a_few_bare_walks(tmp_path: Path) -> None:
    """On 3,000 movie folders discovery stays within a few multiples of a bare scandir+stat walk."""
    for i in range(3000):
        folder = tmp_path / ("A-M" if i % 2 else "N-Z") / f"Movie {i:05d} (2000)"
        folder.mkdir(parents=True)
        for name in (f"Movie {i:05d} (2000).mkv", f"Movie {i:05d} (2000).nfo", "poster.jpg", "fanart.jpg"):
            (folder / name).write_bytes(b"x")
    list(discover_movies(tmp_path))  # warm the page cache and the name caches alike
    bare = min(_timed(lambda: _bare_walk(str(tmp_path))) for _ in range(3))
    full = min(_timed(lambda: sum(1 for _ in discover_movies(tmp_path))) for _ in range(3))
    assert sum(1 for _ in discover_movies(tmp_path)) == 3000
    assert full < 8 * bare + 0.05, (full, bare)


def _timed(fn: object) -> float:
    """Seconds one call of fn takes."""
    start = time.perf_counter()
    fn()  # type: ignore[operator]
    return time.perf_counter() - start


def test_known_movies_come_back_as_stubs_with_the_same_signature(tmp_path: Path) -> None:
    """`known` sees each movie's key, file and signature first; a yes gives a stub, a no the full candidate."""
    touch(tmp_path, "A (2001)/A (2001).mkv", "A (2001)/poster.jpg", "B (2002)/B cd1.avi", "B (2002)/B cd2.avi")
    touch(tmp_path, "Shared/X (2003).mkv", "Shared/Y (2004).mkv", "C (2005)/CD1/C.avi", "C (2005)/CD2/C.avi")
    full = {str(m.file): m for m in discover_movies(tmp_path)}
    asked: list[tuple[str, str, str]] = []

    def known(key: str, file: str, signature: str) -> bool:
        """Say yes to everything but A, remembering what was asked."""
        asked.append((key, file, signature))
        return "A (2001)" not in file

    found = list(discover_movies(tmp_path, known=known))
    assert len(asked) == len(full) == 5
    for key, file, signature in asked:
        cand = full[file]
        assert signature == cand.signature
        assert key == movie_key(str(cand.folder), str(cand.file), cand.shared_folder)
    stubs = [f for f in found if isinstance(f, MovieStub)]
    assert [str(f.file) for f in found if isinstance(f, MovieCandidate)] == [str(tmp_path / "A (2001)/A (2001).mkv")]
    for stub in stubs:
        cand = full[stub.file]
        assert (stub.folder, stub.parts, stub.shared_folder) == (
            str(cand.folder),
            [str(p) for p in cand.parts],
            cand.shared_folder,
        )
        assert movie_at(stub) == cand  # read again in full when its row went away after the walk
    assert movie_at(MovieStub(str(tmp_path / "Gone"), str(tmp_path / "Gone/G.mkv"), [], False, "")) is None


def test_known_shows_come_back_as_stubs_with_the_same_signature(tmp_path: Path) -> None:
    """A show's signature covers every entry below it by relative name; a known show is a stub."""
    touch(tmp_path, "S (2010)/tvshow.nfo", "S (2010)/Season 01/S - S01E01.mkv", "S (2010)/Season 01/Extra/x.mkv")
    touch(tmp_path, "T (2011)/T - S01E01.mkv")
    full = {str(s.folder): s for s in discover_series(tmp_path)}
    asked: dict[str, str] = {}

    def known(folder: str, signature: str) -> bool:
        """Say yes to S only."""
        asked[folder] = signature
        return folder.endswith("S (2010)")

    found = list(discover_series(tmp_path, known=known))
    assert asked == {folder: cand.signature for folder, cand in full.items()}
    stub = next(f for f in found if isinstance(f, SeriesStub))
    assert stub.folder == str(tmp_path / "S (2010)") and stub.entries == 5
    assert [str(f.folder) for f in found if isinstance(f, SeriesCandidate)] == [str(tmp_path / "T (2011)")]
    assert series_at(stub.folder) == full[stub.folder]
    # the same signature as hashing (path relative to the show, size, mtime) of every file below it
    show = tmp_path / "S (2010)"
    rows = []
    for dirpath, dirnames, filenames in os.walk(show):
        for name in dirnames + filenames:
            path = os.path.join(dirpath, name)
            st = os.stat(path)
            folder = os.path.isdir(path)  # a folder counts by name only (size and mtime 0)
            size, mtime = (0, 0) if folder else (st.st_size, st.st_mtime_ns)
            rows.append(Entry(os.path.relpath(path, show), path, False, size, mtime))
    assert folder_signature(rows) == full[str(show)].signature


def test_artwork_order_stem_names_then_folder_names_then_image_type(tmp_path: Path) -> None:
    """`<part stem>-x` beats `<stack base>-x`, which beats folder-wide names; .jpg beats .png of one name."""
    folder = tmp_path / "Long (1980)"
    touch(
        folder,
        "Long cd1.avi",
        "Long cd2.avi",
        "poster.jpg",
        "Long-poster.jpg",
        "Long cd1-poster.jpg",
        "fanart.jpg",
        "Long-backdrop.jpg",
        "banner.png",
        "banner.jpg",
        "Long-Thumb.PNG",
        "thumb.jpg",
        "Long cd1.png",
    )
    (movie,) = discover_movies(tmp_path)
    assert isinstance(movie, MovieCandidate)
    assert movie.artwork == {
        "poster": str(folder / "Long cd1-poster.jpg"),
        "fanart": str(folder / "Long-backdrop.jpg"),
        "banner": str(folder / "banner.jpg"),
        "landscape": str(folder / "Long-Thumb.PNG"),
    }
    (folder / "Long cd1-poster.jpg").unlink()
    (folder / "Long-poster.jpg").unlink()
    (folder / "poster.jpg").unlink()
    (movie,) = discover_movies(tmp_path)
    assert isinstance(movie, MovieCandidate) and movie.artwork["poster"] == str(folder / "Long cd1.png")


def test_symlinked_folders_are_followed_once_and_loops_end(tmp_path: Path) -> None:
    """A symlinked movie or show folder is walked; a link back up the tree is not walked again."""
    lib, elsewhere = tmp_path / "lib", tmp_path / "elsewhere"
    touch(lib, "A (2001)/A (2001).mkv", "Nested/B (2002)/B (2002).mkv")
    touch(elsewhere, "C (2003)/C (2003).mkv")
    (lib / "C (2003)").symlink_to(elsewhere / "C (2003)", target_is_directory=True)
    (lib / "Nested" / "B (2002)" / "loop").symlink_to(lib, target_is_directory=True)
    (lib / "Nested" / "again").symlink_to(lib / "Nested", target_is_directory=True)
    found = [c.file for c in discover_movies(lib)]
    assert sorted(os.path.basename(f) for f in found) == ["A (2001).mkv", "B (2002).mkv", "C (2003).mkv"]
    tv = tmp_path / "tv"
    touch(tv, "Show/Season 01/Show - S01E01.mkv", "Group/Second/Season 01/Second - S01E01.mkv")
    (tv / "Group" / "back").symlink_to(tv, target_is_directory=True)
    shows = [os.path.basename(str(s.folder)) for s in discover_series(tv)]
    assert sorted(shows) == ["Second", "Show"]
