"""Files beside media under attack: a text NFO kept, copies not hardlinks, symlink swaps, owners, long names."""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path
from typing import Any

import pytest
from conftest import HEADERS, make_config
from fakes.images import header_jpeg, png_bytes
from fakes.tmdb import FakeTmdb, sample_movie

from agent.cache import AssetCache, CachedAsset
from agent.clock import FakeClock
from agent.errors import AgentError, ConfigError, PathError
from agent.fsutil import RecentWrites, is_temp_name
from agent.publish import PlannedFile, Publisher
from agent.store import Database

MATRIX = "The Matrix (1999)"
SCENE_NFO = (b"\xdb\xdb\xdb\xdb\xdb\xdb  THE.MATRIX.1999.1080p.BluRay.x264-GROUP  \xdb\xdb\xdb\xdb\xdb\xdb\r\n"
             b"\xb0\xb1\xb2 Release date: 2009-01-01  \xb2\xb1\xb0\r\n"
             b"Size: 8.7 GB    Source: Blu-ray    Video: x264 @ 12 Mbps\r\n")


@pytest.fixture
def library(tmp_path: Path) -> Path:
    """A library root with one movie folder."""
    folder = tmp_path / "Movies" / MATRIX
    folder.mkdir(parents=True)
    (folder / f"{MATRIX}.mkv").write_bytes(b"video")
    return tmp_path / "Movies"


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A folder outside every library."""
    path = tmp_path / "outside"
    path.mkdir()
    return path


@pytest.fixture
async def cache(db: Database, tmp_path: Path, clock: FakeClock) -> AssetCache:
    """A cache on the same filesystem as the library (where a hardlink would be possible)."""
    return AssetCache(db, tmp_path / "data" / "cache", None, clock)


@pytest.fixture
def publisher(db: Database, cache: AssetCache, clock: FakeClock, library: Path) -> Publisher:
    """A publisher allowed to write only inside the library."""
    return Publisher(db, cache, clock, RecentWrites(clock), allowed_roots=[library])


async def _asset(cache: AssetCache, data: bytes, art_type: str, position: int = 0) -> CachedAsset:
    """Cache bytes and reference them for movie 1."""
    asset = await cache.store_bytes(data)
    await cache.add_reference(asset.sha256, "movie", 1, art_type, position)
    return asset


def _plan(asset: CachedAsset, name: str, art_type: str, position: int = 0) -> PlannedFile:
    """A planned asset file."""
    return PlannedFile.asset(name, asset.sha256, asset.ext, art_type, position)


def _sha(path: Path) -> str:
    """sha256 of a file's bytes."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


# ---------------------------------------------------------------- 1: a release's text NFO is kept


async def test_scene_text_nfo_kept_as_nfo_orig(make_client: Any, tmp_path: Path, aiohttp_server: Any) -> None:
    """Scan -> enrich -> publish over a release's text .nfo: its bytes are in .nfo-orig, ours in .nfo."""
    fake = FakeTmdb(movies={603: sample_movie()})
    url = str((await aiohttp_server(fake.app)).make_url("")).rstrip("/")
    cfg = make_config(tmp_path, extra={"providers": {"tmdb": {
        "api_key": fake.api_key, "base_url": f"{url}/3", "image_base_url": f"{url}/t/p/original"}}})
    client = await make_client(cfg, clock=FakeClock())
    folder = tmp_path / "media" / "movies" / MATRIX
    folder.mkdir(parents=True)
    (folder / f"{MATRIX}.mkv").write_bytes(b"\x1aE\xdf\xa3 matrix video")
    nfo = folder / f"{MATRIX}.nfo"
    nfo.write_bytes(SCENE_NFO)
    resp = await client.post("/api/libraries/Movies/scan", headers=HEADERS)
    assert resp.status in (200, 202), await resp.text()
    await client.agent.queue.run_until_idle()
    failed, _ = await client.agent.queue.list(status="failed")
    assert not failed, [(j.type, j.error) for j in failed]

    kept = folder / f"{MATRIX}.nfo-orig"
    assert kept.read_bytes() == SCENE_NFO
    assert nfo.read_bytes().lstrip().startswith(b"<?xml") and b"<title>The Matrix</title>" in nfo.read_bytes()
    # fields first, then again with artwork: the first publish kept the release's file, the second none
    first, *later = sorted((await client.agent.queue.list(type_="publish"))[0], key=lambda j: j.id)
    assert first.result["kept_original"] == [str(kept)], first.result
    assert later and all(j.result["kept_original"] == [] for j in later), [j.result for j in later]

    # publishing again keeps nothing more; a rescan does not take the kept copy for an NFO
    again = await client.agent.queue.enqueue("publish", {"entity": "movie", "id": 1})
    await client.agent.queue.run_until_idle()
    done = await client.agent.queue.get(again.id)
    assert done.status.value == "completed" and done.result["kept_original"] == [], done.result
    assert sorted(p.name for p in folder.iterdir() if ".nfo" in p.name) == [f"{MATRIX}.nfo", kept.name]
    resp = await client.post("/api/libraries/Movies/scan", headers=HEADERS)
    assert resp.status in (200, 202), await resp.text()
    await client.agent.queue.run_until_idle()
    rows = await client.agent.db.fetchall("SELECT nfo_path, nfo_error FROM movies")
    assert [(r["nfo_path"], r["nfo_error"]) for r in rows] == [(str(nfo), None)]


async def test_nfo_orig_name_taken_picks_a_free_one(publisher: Publisher, library: Path) -> None:
    """An existing .nfo-orig with other bytes is never overwritten: the text goes to .nfo-orig.1."""
    folder = library / MATRIX
    (folder / "movie.nfo").write_bytes(SCENE_NFO)
    (folder / "movie.nfo-orig").write_bytes(b"someone else's notes")
    report = await publisher.publish("movie", 1, folder, [PlannedFile.nfo("movie.nfo", b"<movie/>",
                                                                          keep_original=True)])
    assert (folder / "movie.nfo-orig").read_bytes() == b"someone else's notes"
    assert (folder / "movie.nfo-orig.1").read_bytes() == SCENE_NFO
    assert (folder / "movie.nfo").read_bytes() == b"<movie/>"
    assert report.kept_original == [str(folder / "movie.nfo-orig.1")]


# ---------------------------------------------------------------- 4: published art is a copy


async def test_in_place_edit_of_published_art_leaves_cache_intact(publisher: Publisher, cache: AssetCache,
                                                                  library: Path) -> None:
    """Writing into fanart.png beside the movie never changes the cached image."""
    folder = library / MATRIX
    fanart = await _asset(cache, png_bytes(40, 20), "fanart")
    before = _sha(fanart.path)
    await publisher.publish("movie", 1, folder, [_plan(fanart, "fanart.png", "fanart")])
    published = folder / "fanart.png"
    assert published.read_bytes() == fanart.path.read_bytes()
    with open(published, "r+b") as handle:
        handle.seek(8)
        handle.write(b"edited in place by an image editor")
    assert _sha(fanart.path) == before
    assert published.stat().st_ino != fanart.path.stat().st_ino


async def test_old_hardlink_to_cache_is_replaced_by_a_copy(publisher: Publisher, cache: AssetCache,
                                                           library: Path) -> None:
    """A file an older version hardlinked to the cache is swapped for a copy; identical copies stay."""
    folder = library / MATRIX
    poster = await _asset(cache, header_jpeg(10, 15), "poster")
    os.link(poster.path, folder / "poster.jpg")
    report = await publisher.publish("movie", 1, folder, [_plan(poster, "poster.jpg", "poster")])
    assert [Path(p).name for p in report.written] == ["poster.jpg"]
    assert (folder / "poster.jpg").stat().st_ino != poster.path.stat().st_ino
    assert poster.path.stat().st_nlink == 1
    inode = (folder / "poster.jpg").stat().st_ino
    report = await publisher.publish("movie", 1, folder, [_plan(poster, "poster.jpg", "poster")])
    assert report.written == [] and (folder / "poster.jpg").stat().st_ino == inode


# ---------------------------------------------------------------- 5: symlink swaps


def _swap_after_check(monkeypatch: pytest.MonkeyPatch, folder: Path, outside: Path) -> list[Path]:
    """The race at its worst: the first path check swaps `folder` for a symlink to `outside` right after it
    returns, and every later path check still sees the folder as it was (only the same object is safe)."""
    real_realpath = os.path.realpath
    before = real_realpath(folder)
    swapped: list[Path] = []

    def checked_then_swapped(path: Any, *args: Any, **kwargs: Any) -> Any:
        """Answer as if nothing had moved; move the folder after the first answer."""
        text = os.fspath(path)
        if not isinstance(text, str) or not (text == str(folder) or text.startswith(f"{folder}/")):
            return real_realpath(path, *args, **kwargs)
        answer = os.path.normpath(before + text[len(str(folder)):])
        if not swapped:
            folder.rename(folder.with_name(folder.name + " (moved)"))
            folder.symlink_to(outside, target_is_directory=True)
            swapped.append(folder)
        return answer

    monkeypatch.setattr(os.path, "realpath", checked_then_swapped)
    return swapped


async def test_folder_swapped_for_symlink_after_check_writes_nothing_outside(
        publisher: Publisher, cache: AssetCache, library: Path, outside: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The folder becomes a symlink to outside between the check and the write: PathError, nothing outside."""
    folder = library / MATRIX
    poster = await _asset(cache, header_jpeg(10, 15), "poster")
    swapped = _swap_after_check(monkeypatch, folder, outside)
    with pytest.raises(PathError) as caught:
        await publisher.publish("movie", 1, folder, [PlannedFile.nfo(f"{MATRIX}.nfo", b"<movie/>"),
                                                     _plan(poster, "poster.jpg", "poster"),
                                                     _plan(poster, "extrafanart/fanart1.jpg", "fanart", 1)])
    assert swapped and str(folder) in caught.value.message and "symbolic link" in caught.value.message
    assert list(outside.iterdir()) == []


async def test_stale_removal_after_swap_deletes_nothing_outside(
        publisher: Publisher, library: Path, outside: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A stale file's folder swapped for a symlink after the check: the look-alike outside stays."""
    folder = library / MATRIX
    await publisher.publish("movie", 1, folder, [PlannedFile.nfo("old.nfo", b"<movie/>")])
    (outside / "old.nfo").write_bytes(b"<movie/>")
    other = library / "Other"
    other.mkdir()
    swapped = _swap_after_check(monkeypatch, folder, outside)
    report = await publisher.publish("movie", 1, other, [PlannedFile.nfo("new.nfo", b"<movie/>")])
    assert swapped
    assert (outside / "old.nfo").read_bytes() == b"<movie/>"
    assert report.removed == [] and report.kept_foreign == [str(folder / "old.nfo")]


async def test_media_folder_symlinked_outside_is_refused(publisher: Publisher, library: Path,
                                                         outside: Path) -> None:
    """A media folder that is a symlink to a folder outside the library is refused, nothing written."""
    (library / "Linked").symlink_to(outside, target_is_directory=True)
    with pytest.raises(PathError, match="outside"):
        await publisher.publish("movie", 1, library / "Linked", [PlannedFile.nfo("movie.nfo", b"<movie/>")])
    assert list(outside.iterdir()) == []


async def test_symlink_inside_the_library_still_publishes(publisher: Publisher, library: Path) -> None:
    """A folder symlinked to another folder of the same library is written through its real folder."""
    (library / "Alias").symlink_to(library / MATRIX, target_is_directory=True)
    (library / MATRIX / "extrafanart-real").mkdir()
    (library / MATRIX / "extrafanart").symlink_to("extrafanart-real", target_is_directory=True)
    report = await publisher.publish("movie", 1, library / "Alias",
                                     [PlannedFile.nfo("movie.nfo", b"<movie/>"),
                                      PlannedFile.nfo("extrafanart/x.nfo", b"<movie/>")])
    assert len(report.written) == 2
    assert (library / MATRIX / "movie.nfo").read_bytes() == b"<movie/>"
    assert (library / MATRIX / "extrafanart-real" / "x.nfo").read_bytes() == b"<movie/>"


# ---------------------------------------------------------------- 7: owner, group, mode


async def test_replaced_nfo_keeps_owner_group_and_mode(publisher: Publisher, library: Path) -> None:
    """An NFO owned by 1000:1000 with mode 0660 stays so after the agent rewrites it."""
    nfo = library / MATRIX / "movie.nfo"
    nfo.write_bytes(b"<movie><title>old</title></movie>")
    os.chown(nfo, 1000, 1000)
    os.chmod(nfo, 0o660)
    await publisher.publish("movie", 1, nfo.parent, [PlannedFile.nfo("movie.nfo", b"<movie/>")])
    info = nfo.stat()
    assert nfo.read_bytes() == b"<movie/>"
    assert (info.st_uid, info.st_gid, stat.S_IMODE(info.st_mode)) == (1000, 1000, 0o660)


async def test_new_files_get_folder_group_and_umask(db: Database, cache: AssetCache, clock: FakeClock,
                                                    library: Path) -> None:
    """New files and sub-folders take the folder's group and the configured umask."""
    folder = library / MATRIX
    os.chown(folder, 0, 4321)
    os.chmod(folder, 0o775)
    publisher = Publisher(db, cache, clock, RecentWrites(clock), allowed_roots=[library], umask=0o027)
    fan = await _asset(cache, header_jpeg(12, 10), "fanart", position=1)
    await publisher.publish("movie", 1, folder, [PlannedFile.nfo("movie.nfo", b"<movie/>"),
                                                 _plan(fan, "extrafanart/fanart1.jpg", "fanart", 1)])
    for path, mode in ((folder / "movie.nfo", 0o640), (folder / "extrafanart" / "fanart1.jpg", 0o640),
                       (folder / "extrafanart", 0o750)):
        info = path.stat()
        assert (info.st_gid, stat.S_IMODE(info.st_mode)) == (4321, mode), path


def test_publish_umask_config(tmp_path: Path) -> None:
    """publish.umask is an octal string; absent means the process umask; a bare number is refused."""
    assert make_config(tmp_path).publish.umask is None
    assert make_config(tmp_path, extra={"publish": {"umask": "027"}}).publish.umask == 0o027
    assert make_config(tmp_path, extra={"publish": {"umask": "0o002"}}).publish.umask == 0o002
    with pytest.raises(ConfigError, match=r"publish\.umask"):
        make_config(tmp_path, extra={"publish": {"umask": 18}})
    with pytest.raises(ConfigError, match=r"publish\.umask"):
        make_config(tmp_path, extra={"publish": {"umask": "0999"}})


# ---------------------------------------------------------------- 8: names at the limit


async def test_video_name_at_the_limit_publishes(publisher: Publisher, cache: AssetCache,
                                                 library: Path) -> None:
    """A 247-byte video stem: its 251-byte NFO is written; a 258-byte art name fails naming that file."""
    stem = "M" * 240 + " (1999)"
    assert len(stem.encode()) == 247
    folder = library / "Long"
    folder.mkdir()
    (folder / f"{stem}.mkv").write_bytes(b"video")
    report = await publisher.publish("movie", 1, folder, [PlannedFile.nfo(f"{stem}.nfo", b"<movie/>")])
    assert [Path(p).name for p in report.written] == [f"{stem}.nfo"]
    assert (folder / f"{stem}.nfo").read_bytes() == b"<movie/>"
    poster = await _asset(cache, header_jpeg(10, 15), "poster")
    with pytest.raises(AgentError) as caught:
        await publisher.publish("movie", 1, folder, [_plan(poster, f"{stem}-poster.jpg", "poster")])
    assert f"{stem}-poster.jpg" in caught.value.message and "255" in caught.value.message
    assert [p.name for p in folder.iterdir() if is_temp_name(p.name)] == []


async def test_text_nfo_at_the_limit_is_kept_under_a_shortened_name(publisher: Publisher,
                                                                    library: Path) -> None:
    """Keeping a 251-byte text NFO: the .nfo-orig name is shortened to fit 255 bytes."""
    stem = "M" * 240 + " (1999)"
    folder = library / MATRIX
    (folder / f"{stem}.nfo").write_bytes(SCENE_NFO)
    report = await publisher.publish("movie", 1, folder, [PlannedFile.nfo(f"{stem}.nfo", b"<movie/>",
                                                                          keep_original=True)])
    [kept] = [Path(p) for p in report.kept_original]
    assert kept.name.endswith(".nfo-orig") and len(kept.name.encode()) <= 255
    assert kept.read_bytes() == SCENE_NFO
