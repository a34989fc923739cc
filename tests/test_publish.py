"""Tests for file naming and the safe publisher, with real files and a real database."""

from __future__ import annotations

import errno
import hashlib
import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from fakes.images import header_jpeg, png_bytes

from agent import dirfd
from agent.cache import AssetCache, CachedAsset
from agent.clock import FakeClock
from agent.errors import AgentError, PathError, UserError
from agent.fsutil import RecentWrites, is_temp_name
from agent.publish import PlannedFile, Publisher, art_filename, nfo_target
from agent.store import Database, SqliteDatabase
from agent.store.media import Item


def make_png(width: int, height: int) -> bytes:
    """A valid PNG of the given size."""
    return png_bytes(width, height)


def make_jpeg(width: int, height: int) -> bytes:
    """A minimal JPEG whose SOF0 carries the size."""
    return header_jpeg(width, height)


def _item(entity: str, stem: str | None) -> Item:
    """An item whose video (a movie's or an episode's) is `<folder>/<stem>.mkv`; a series has only its folder."""
    row: dict[str, str] = {"path": "/media/folder"}
    if stem is not None:
        row["file"] = f"/media/folder/{stem}.mkv"
    return Item(entity=entity, id=1, row=row, fields={})


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    """A real, migrated database."""
    database = SqliteDatabase(tmp_path / "metarr.sqlite")
    await database.open()
    yield database
    await database.close()


@pytest.fixture
def library(tmp_path: Path) -> Path:
    """A library root with one movie folder."""
    movie = tmp_path / "Movies" / "The Matrix (1999)"
    movie.mkdir(parents=True)
    (movie / "The Matrix (1999).mkv").write_bytes(b"video")
    return tmp_path / "Movies"


@pytest.fixture
def clock() -> FakeClock:
    """Pinned time."""
    return FakeClock()


@pytest.fixture
async def cache(db: Database, tmp_path: Path, clock: FakeClock) -> AssetCache:
    """A cache on the same filesystem as the library."""
    return AssetCache(db, tmp_path / "data" / "cache", None, clock)


@pytest.fixture
def recent(clock: FakeClock) -> RecentWrites:
    """The watcher's registry."""
    return RecentWrites(clock)


@pytest.fixture
def publisher(db: Database, cache: AssetCache, clock: FakeClock, recent: RecentWrites,
              library: Path) -> Publisher:
    """A publisher allowed to write only inside the library."""
    return Publisher(db, cache, clock, recent, allowed_roots=[library])


async def _asset(cache: AssetCache, data: bytes, art_type: str, entity: tuple[str, int] = ("movie", 1),
                 position: int = 0) -> CachedAsset:
    """Cache bytes and reference them."""
    asset = await cache.store_bytes(data)
    await cache.add_reference(asset.sha256, entity[0], entity[1], art_type, position)
    return asset


def _plan(asset: CachedAsset, name: str, art_type: str, position: int = 0) -> PlannedFile:
    """A planned asset file."""
    return PlannedFile.asset(name, asset.sha256, asset.ext, art_type, position)


def _temps(folder: Path) -> list[Path]:
    """Temp files anywhere under folder."""
    return [p for p in folder.rglob("*") if is_temp_name(p.name)]


def test_art_filenames_movie_folder_and_shared() -> None:
    """Movie folder names, shared-folder names, extrafanart and real extensions."""
    assert art_filename("poster", "jpg") == "poster.jpg"
    assert art_filename("poster", "png") == "poster.png"  # never lie about the format
    assert art_filename("fanart", "jpeg") == "fanart.jpg"
    assert art_filename("clearlogo", "png") == "clearlogo.png"
    assert art_filename("discart", "png") == "discart.png"
    assert art_filename("keyart", "jpg") == "keyart.jpg"
    assert art_filename("fanart", "jpg", position=2) == "extrafanart/fanart2.jpg"
    assert art_filename("poster", "jpg", stem="Heat (1995)", shared_folder=True) == "Heat (1995)-poster.jpg"
    assert art_filename("clearlogo", "png", stem="Heat", shared_folder=True) == "Heat-clearlogo.png"
    assert art_filename("fanart", "jpg", stem="Heat", shared_folder=True, position=1) == "Heat-fanart1.jpg"
    with pytest.raises(UserError, match="stem"):
        art_filename("poster", "jpg", shared_folder=True)
    with pytest.raises(UserError, match="unknown artwork type"):
        art_filename("wallpaper", "jpg")
    with pytest.raises(UserError, match="extension"):
        art_filename("poster", "gif")
    with pytest.raises(UserError, match="stem"):
        art_filename("poster", "jpg", stem="../evil", shared_folder=True)


def test_art_filenames_series_season_episode() -> None:
    """Season art by number or slot name, specials, episode thumbs and NFO names."""
    assert art_filename("poster", "jpg", season=1) == "season01-poster.jpg"
    assert art_filename("season12-banner", "jpg") == "season12-banner.jpg"
    assert art_filename("fanart", "jpg", season=0) == "season-specials-fanart.jpg"
    assert art_filename("season00-landscape", "png") == "season-specials-landscape.png"
    assert art_filename("thumb", "jpg", stem="Show - S01E02") == "Show - S01E02-thumb.jpg"
    with pytest.raises(UserError, match="season"):
        art_filename("clearlogo", "png", season=1)
    with pytest.raises(UserError, match="thumb"):
        art_filename("thumb", "jpg")
    assert nfo_target(_item("movie", "The Matrix (1999)"), False).name == "The Matrix (1999).nfo"
    assert nfo_target(_item("movie", "The Matrix (1999)"), False, movie_filename="movie").name == "movie.nfo"
    assert nfo_target(_item("series", None), False).name == "tvshow.nfo"
    assert nfo_target(_item("episode", "Show - S01E02"), False).name == "Show - S01E02.nfo"


async def test_publish_writes_links_and_records(publisher: Publisher, cache: AssetCache, db: Database,
                                                library: Path, recent: RecentWrites) -> None:
    """NFO and art are written, art is a copy of the cache file, rows and library paths are recorded."""
    folder = library / "The Matrix (1999)"
    poster = await _asset(cache, make_jpeg(1000, 1500), "poster")
    logo = await _asset(cache, make_png(8, 3), "clearlogo")
    files = [PlannedFile.nfo("The Matrix (1999).nfo", b"<movie><title>The Matrix</title></movie>"),
             _plan(poster, "poster.jpg", "poster"), _plan(logo, "clearlogo.png", "clearlogo")]
    report = await publisher.publish("movie", 1, folder, files)
    assert sorted(Path(p).name for p in report.written) == ["The Matrix (1999).nfo", "clearlogo.png",
                                                            "poster.jpg"]
    assert report.changed and report.skipped == [] and report.removed == []
    assert (folder / "poster.jpg").read_bytes() == poster.path.read_bytes()
    assert (folder / "poster.jpg").stat().st_ino != poster.path.stat().st_ino
    assert (folder / "The Matrix (1999).nfo").read_bytes().startswith(b"<movie>")
    assert recent.contains(folder / "poster.jpg")
    rows = await db.fetchall("SELECT path, kind FROM published_files ORDER BY path")
    assert [(Path(r["path"]).name, r["kind"]) for r in rows] == [
        ("The Matrix (1999).nfo", "nfo"), ("clearlogo.png", "asset"), ("poster.jpg", "asset")]
    refs = {r.art_type: r.library_path for r in await cache.references("movie", 1)}
    assert refs == {"poster": str(folder / "poster.jpg"), "clearlogo": str(folder / "clearlogo.png")}
    nfo_hash = hashlib.sha256(b"<movie><title>The Matrix</title></movie>").hexdigest()
    assert await publisher.written_hash(folder / "The Matrix (1999).nfo") == nfo_hash
    assert await publisher.written_hash(folder / "fanart.jpg") is None


async def test_identical_republish_touches_nothing(publisher: Publisher, cache: AssetCache,
                                                   library: Path) -> None:
    """A second publish of the same plan rewrites nothing: mtimes and inodes unchanged."""
    folder = library / "The Matrix (1999)"
    poster = await _asset(cache, make_jpeg(10, 10), "poster")
    files = [PlannedFile.nfo("movie.nfo", b"<movie/>"), _plan(poster, "poster.jpg", "poster")]
    await publisher.publish("movie", 1, folder, files)
    for name in ("movie.nfo", "poster.jpg"):
        os.utime(folder / name, (1_000_000, 1_000_000), follow_symlinks=False)
    before = {n: (folder / n).stat() for n in ("movie.nfo", "poster.jpg")}
    report = await publisher.publish("movie", 1, folder, files)
    assert report.written == [] and not report.changed
    assert sorted(Path(p).name for p in report.skipped) == ["movie.nfo", "poster.jpg"]
    for name, st in before.items():
        now = (folder / name).stat()
        assert (now.st_mtime, now.st_ino) == (st.st_mtime, st.st_ino)


async def test_stale_own_files_removed_foreign_kept(publisher: Publisher, cache: AssetCache,
                                                    library: Path, db: Database) -> None:
    """Renamed and dropped files the agent wrote are removed; a file a person replaced is kept."""
    folder = library / "The Matrix (1999)"
    (folder / "Old Name.mkv").write_bytes(b"v")
    poster = await _asset(cache, make_jpeg(10, 10), "poster")
    fans = [await _asset(cache, make_jpeg(20 + i, 10), "fanart", position=i) for i in range(4)]
    first = [PlannedFile.nfo("Old Name.nfo", b"<movie/>"), _plan(poster, "Old Name-poster.jpg", "poster")]
    first += [_plan(f, art_filename("fanart", "jpg", position=i), "fanart", i) for i, f in enumerate(fans)]
    await publisher.publish("movie", 1, folder, first)
    assert (folder / "extrafanart" / "fanart3.jpg").exists()

    # a person replaces extrafanart/fanart2.jpg with their own image; a foreign file sits beside it
    (folder / "extrafanart" / "fanart2.jpg").unlink()
    (folder / "extrafanart" / "fanart2.jpg").write_bytes(b"my own picture")
    (folder / "fanart.jpg").unlink()
    (folder / "landscape.jpg").write_bytes(b"not ours")

    second = [PlannedFile.nfo("New Name.nfo", b"<movie/>"), _plan(poster, "New Name-poster.jpg", "poster"),
              _plan(fans[0], "fanart.jpg", "fanart", 0),
              _plan(fans[1], "extrafanart/fanart1.jpg", "fanart", 1)]
    report = await publisher.publish("movie", 1, folder, second)
    assert sorted(Path(p).name for p in report.removed) == ["Old Name-poster.jpg", "Old Name.nfo",
                                                            "fanart3.jpg"]
    assert [Path(p).name for p in report.kept_foreign] == ["fanart2.jpg"]
    assert (folder / "extrafanart" / "fanart2.jpg").read_bytes() == b"my own picture"
    assert (folder / "landscape.jpg").read_bytes() == b"not ours"
    assert not (folder / "Old Name.nfo").exists() and not (folder / "extrafanart" / "fanart3.jpg").exists()
    assert (folder / "fanart.jpg").exists()  # re-written although deleted by hand
    rows = await db.fetchall("SELECT path FROM published_files")
    assert sorted(Path(r["path"]).name for r in rows) == ["New Name-poster.jpg", "New Name.nfo", "fanart.jpg",
                                                          "fanart1.jpg"]

    # dropping the last extrafanart removes the emptied folder only if nothing foreign is left
    (folder / "extrafanart" / "fanart2.jpg").unlink()
    report = await publisher.publish("movie", 1, folder, second[:3])
    assert [Path(p).name for p in report.removed] == ["fanart1.jpg"]
    assert not (folder / "extrafanart").exists()


async def test_identical_foreign_file_not_claimed(publisher: Publisher, cache: AssetCache,
                                                  library: Path) -> None:
    """A user's file that already has the planned bytes is skipped and never later deleted."""
    folder = library / "The Matrix (1999)"
    data = make_jpeg(30, 30)
    (folder / "poster.jpg").write_bytes(data)
    poster = await _asset(cache, data, "poster")
    report = await publisher.publish("movie", 1, folder, [_plan(poster, "poster.jpg", "poster")])
    assert [Path(p).name for p in report.skipped] == ["poster.jpg"]
    assert await publisher.written_hash(folder / "poster.jpg") is None
    report = await publisher.publish("movie", 1, folder, [])
    assert report.removed == [] and (folder / "poster.jpg").exists()


async def test_paths_outside_roots_refused(publisher: Publisher, tmp_path: Path, library: Path) -> None:
    """Folders outside the roots, escaping names and symlinked sub-folders are refused."""
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    with pytest.raises(PathError, match="outside"):
        await publisher.publish("movie", 1, outside, [PlannedFile.nfo("movie.nfo", b"x")])
    with pytest.raises(PathError, match="outside"):
        await publisher.publish("movie", 1, library / ".." / "elsewhere", [PlannedFile.nfo("a.nfo", b"x")])
    folder = library / "The Matrix (1999)"
    with pytest.raises(PathError):
        await publisher.publish("movie", 1, folder, [PlannedFile.nfo("../escape.nfo", b"x")])
    with pytest.raises(PathError):
        await publisher.publish("movie", 1, folder, [PlannedFile.nfo("/etc/passwd", b"x")])
    (folder / "extrafanart").symlink_to(outside)
    with pytest.raises(PathError, match="outside"):
        await publisher.publish("movie", 1, folder, [PlannedFile.nfo("extrafanart/fanart1.nfo", b"x")])
    assert list(outside.iterdir()) == []
    (library / "link").symlink_to(outside)
    with pytest.raises(PathError, match="outside"):
        await publisher.publish("movie", 1, library / "link", [PlannedFile.nfo("movie.nfo", b"x")])
    assert list(outside.iterdir()) == []
    with pytest.raises(PathError, match="does not exist"):
        await publisher.publish("movie", 1, library / "Nope", [PlannedFile.nfo("movie.nfo", b"x")])


async def test_crash_mid_publish_then_rerun(publisher: Publisher, cache: AssetCache, library: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """os.replace failing on the 2nd file leaves no temp or partial file; a re-run completes."""
    folder = library / "The Matrix (1999)"
    (folder / "poster.jpg").write_bytes(b"previous poster")
    poster = await _asset(cache, make_jpeg(10, 10), "poster")
    fanart = await _asset(cache, make_jpeg(30, 10), "fanart")
    files = [PlannedFile.nfo("movie.nfo", b"<movie/>"), _plan(poster, "poster.jpg", "poster"),
             _plan(fanart, "fanart.jpg", "fanart")]
    real_replace = os.replace
    calls = {"n": 0}

    def flaky_replace(src: str | os.PathLike[str], dst: str | os.PathLike[str], **dir_fds: int) -> None:
        calls["n"] += 1
        if calls["n"] == 2:
            raise OSError(errno.EIO, "I/O error")
        real_replace(src, dst, **dir_fds)

    monkeypatch.setattr(dirfd.os, "replace", flaky_replace)
    with pytest.raises(AgentError, match=r"poster\.jpg"):
        await publisher.publish("movie", 1, folder, files)
    monkeypatch.setattr(dirfd.os, "replace", real_replace)
    assert _temps(library) == []
    assert (folder / "poster.jpg").read_bytes() == b"previous poster"
    assert not (folder / "fanart.jpg").exists()
    assert (folder / "movie.nfo").read_bytes() == b"<movie/>"

    report = await publisher.publish("movie", 1, folder, files)
    assert sorted(Path(p).name for p in report.written) == ["fanart.jpg", "poster.jpg"]
    assert [Path(p).name for p in report.skipped] == ["movie.nfo"]
    assert (folder / "poster.jpg").read_bytes() == poster.path.read_bytes()
    assert _temps(library) == []


async def test_missing_cache_asset_is_clear(publisher: Publisher, cache: AssetCache, library: Path) -> None:
    """Publishing an asset whose cache file is gone names the problem."""
    poster = await _asset(cache, make_jpeg(10, 10), "poster")
    poster.path.unlink()
    with pytest.raises(AgentError, match="missing from the cache"):
        await publisher.publish("movie", 1, library / "The Matrix (1999)",
                                [_plan(poster, "poster.jpg", "poster")])


async def test_series_season_episode_publish(publisher: Publisher, cache: AssetCache, library: Path) -> None:
    """Season art lands in the series folder, episode NFO and thumb beside the episode."""
    show = library / "Show"
    season_dir = show / "Season 01"
    season_dir.mkdir(parents=True)
    art = await _asset(cache, make_jpeg(5, 7), "season01-poster", entity=("series", 3))
    thumb = await _asset(cache, make_jpeg(16, 9), "thumb", entity=("episode", 9))
    await publisher.publish("series", 3, show, [PlannedFile.nfo("tvshow.nfo", b"<tvshow/>"),
                                                _plan(art, art_filename("season01-poster", "jpg"),
                                                      "season01-poster")])
    stem = "Show - S01E01"
    await publisher.publish("episode", 9, season_dir, [
        PlannedFile.nfo(nfo_target(_item("episode", stem), False).name, b"<episodedetails/>"),
        _plan(thumb, art_filename("thumb", "jpg", stem=stem), "thumb")])
    assert (show / "season01-poster.jpg").exists() and (show / "tvshow.nfo").exists()
    assert (season_dir / "Show - S01E01.nfo").exists() and (season_dir / "Show - S01E01-thumb.jpg").exists()
    # the series' own stale cleanup does not touch files of the episode
    report = await publisher.publish("series", 3, show, [PlannedFile.nfo("tvshow.nfo", b"<tvshow/>")])
    assert [Path(p).name for p in report.removed] == ["season01-poster.jpg"]
    assert (season_dir / "Show - S01E01-thumb.jpg").exists()
