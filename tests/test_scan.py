"""The scan service over real temporary trees: naming cases, NFOs, incremental rescans, upgrades, moves."""

from __future__ import annotations

import asyncio
import gc
import hashlib
import json
import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from conftest import make_config, open_test_agent

import agent.library.scanner as scan_module
import agent.library.walk_movies as discover_module
import agent.library.walk_series as series_module
from agent.clock import FakeClock
from agent.errors import PermanentFailure
from agent.hints import Hints
from agent.jobs.scan import build_request, scan_parts
from agent.library.scan import ScanReport, _walk_reader, heap_frozen, run_scan
from agent.services import Services as Agent
from agent.store import media

SAMPLES = Path(__file__).parent / "nfo_samples"


def touch(root: Path, *names: str, data: bytes = b"x") -> None:
    """Create files (and their folders) under root."""
    for name in names:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


def sample(name: str) -> bytes:
    """Bytes of an NFO sample written by a real tool."""
    return (SAMPLES / name).read_bytes()


@pytest.fixture
async def agent(tmp_path: Path, clock: FakeClock) -> AsyncIterator[Agent]:
    """An agent with an open store over empty Movies and TV libraries."""
    async with open_test_agent(make_config(tmp_path), clock) as a:
        yield a


def movies_root(agent: Agent) -> Path:
    """The Movies library folder."""
    return agent.cfg.libraries[0].path


def tv_root(agent: Agent) -> Path:
    """The TV library folder."""
    return agent.cfg.libraries[1].path


async def scan(agent: Agent, library: str = "Movies", **payload: Any) -> ScanReport:
    """Run one scan the way the job handler does."""
    return await run_scan(scan_parts(agent), build_request(agent.cfg, {"library": library, **payload}))


async def rows(agent: Agent, table: str) -> list[dict[str, Any]]:
    """Every row of a table as dicts, by id."""
    return [dict(r) for r in await agent.db.fetchall(f"SELECT * FROM {table} ORDER BY id")]


async def enrich_jobs(agent: Agent) -> list[dict[str, Any]]:
    """Payloads of queued enrich jobs."""
    found = await agent.db.fetchall(
        "SELECT payload, priority FROM job_queue WHERE type = 'enrich' ORDER BY id"
    )
    return [{**json.loads(r["payload"]), "job_priority": r["priority"]} for r in found]


async def test_movie_naming_cases(agent: Agent) -> None:
    """Folder per movie, shared folder, extras ignored, discs, stacks, junk, and `Title (Year)` winning."""
    root = movies_root(agent)
    touch(
        root,
        "The Matrix (1999)/The Matrix (1999).mkv",
        "The Matrix (1999)/The Matrix (1999)-trailer.mkv",
        "The Matrix (1999)/Sample/sample.mkv",
        "The Matrix (1999)/Extras/Making of.mkv",
        "The Matrix (1999)/.DS_Store",
        "The Matrix (1999)/Thumbs.db",
        "Collection/Alpha (2001).mkv",
        "Collection/Beta (2002).mkv",
        "Heat (1995)/BDMV/index.bdmv",
        "Alien (1979)/VIDEO_TS/VIDEO_TS.IFO",
        "Dune (1984)/Dune cd1.avi",
        "Dune (1984)/Dune cd2.avi",
        "Blade Runner (1982)/br.final.cut.1080p.mkv",
        "Partial (2020)/Partial (2020).mkv.part",
    )
    report = await scan(agent)
    found = {r["title"]: r for r in await rows(agent, "movies")}
    assert set(found) == {"The Matrix", "Alpha", "Beta", "Heat", "Alien", "Dune", "Blade Runner"}
    assert report.added == 7 and report.updated == report.unchanged == report.missing == 0
    assert found["The Matrix"]["year"] == 1999 and found["The Matrix"]["file"].endswith(
        "The Matrix (1999).mkv"
    )
    assert found["Heat"]["file"].endswith("index.bdmv") and found["Alien"]["file"].endswith("VIDEO_TS.IFO")
    assert found["Dune"]["file"].endswith("Dune cd1.avi")
    assert found["Blade Runner"]["year"] == 1982
    assert found["Alpha"]["path"] == found["Beta"]["path"] == str(root / "Collection")
    assert all(r["status"] == "unidentified" for r in found.values())
    assert len(await enrich_jobs(agent)) == 7
    lib = await agent.db.fetchone("SELECT last_scan_at FROM libraries WHERE name = 'Movies'")
    assert lib["last_scan_at"] == agent.clock.now()


async def test_series_layouts(agent: Agent) -> None:
    """Season folders, S01 folders, Specials, multi-episode files and daily shows."""
    root = tv_root(agent)
    touch(
        root,
        "Show A (2010)/Season 01/Show A - S01E01 - Pilot.mkv",
        "Show A (2010)/S02/Show A - S02E01E02.mkv",
        "Show A (2010)/Specials/Show A - S00E01.mkv",
        "Show A (2010)/season01-poster.jpg",
        "Show A (2010)/poster.jpg",
        "Daily Show/Daily Show 2015-03-04.mkv",
        "Show A (2010)/Season 01/Show A - S01E01 - Pilot-thumb.jpg",
    )
    report = await scan(agent, "TV")
    shows = {r["title"]: r for r in await rows(agent, "series")}
    assert set(shows) == {"Show A", "Daily Show"} and shows["Show A"]["year"] == 2010
    assert json.loads(shows["Show A"]["artwork_found"])["poster"].endswith("poster.jpg")
    eps = await rows(agent, "episodes")
    keyed = {(e["season"], e["episode"]): e for e in eps if e["series_id"] == shows["Show A"]["id"]}
    assert set(keyed) == {(1, 1), (2, 1), (2, 2), (0, 1)}
    assert keyed[(2, 1)]["file"] == keyed[(2, 2)]["file"]
    assert keyed[(1, 1)]["title"] == "Pilot"
    assert json.loads(keyed[(1, 1)]["artwork_found"])["thumb"].endswith("Pilot-thumb.jpg")
    daily = [e for e in eps if e["series_id"] == shows["Daily Show"]["id"]]
    assert len(daily) == 1 and daily[0]["aired"] == "2015-03-04"
    seasons = await agent.db.fetchall(
        "SELECT season, artwork_found FROM seasons WHERE series_id = ? ORDER BY season",
        (shows["Show A"]["id"],),
    )
    assert [s["season"] for s in seasons] == [0, 1, 2]
    assert "poster" in json.loads(seasons[1]["artwork_found"])
    assert report.added == 2 + 5
    assert keyed[(1, 1)]["season_id"] is not None


@pytest.mark.parametrize(
    ("nfo", "title", "ids"),
    [
        ("kodi_movie.nfo", "The Matrix", {"tmdb_id": 603, "imdb_id": "tt0133093"}),
        ("jellyfin_movie.nfo", "Alien", {"tmdb_id": 348}),
        ("tmm_movie.nfo", "Le Fabuleux Destin d'Amélie Poulain", {"tmdb_id": 194}),
        ("radarr_movie.nfo", "Dune Part Two", {"tmdb_id": 693134}),
        ("ember_movie.nfo", "Blade Runner", {"imdb_id": "tt0083658"}),
        ("url_imdb.nfo", "Folder Title", {"imdb_id": "tt0133093"}),
        ("url_tmdb_movie.nfo", "Folder Title", {"tmdb_id": 603}),
        ("xml_plus_url.nfo", "The Matrix (Director's notes)", {"tmdb_id": 603}),
        ("utf16_bom.nfo", "Crouching Tiger 卧虎藏龙", {}),
    ],
)
async def test_movie_nfos_from_every_writer(agent: Agent, nfo: str, title: str, ids: dict[str, Any]) -> None:
    """Kodi, Jellyfin, tinyMediaManager, Radarr, Ember and URL-only NFOs fill the new row."""
    folder = movies_root(agent) / "Folder Title (2000)"
    touch(folder, "Folder Title (2000).mkv")
    (folder / "Folder Title (2000).nfo").write_bytes(sample(nfo))
    await scan(agent)
    (row,) = await rows(agent, "movies")
    assert row["title"] == title and row["nfo_error"] is None
    assert row["nfo_path"] == str(folder / "Folder Title (2000).nfo")
    for key, value in ids.items():
        assert row[key] == value
    assert row["status"] == ("identified" if ids else "unidentified")


async def test_show_and_episode_nfos(agent: Agent) -> None:
    """tvshow.nfo fills the series; single and multi-episode NFOs fill each episode row."""
    show = tv_root(agent) / "GoT"
    touch(
        show, "Season 01/GoT - S01E01.mkv", "Season 01/GoT - S01E02E03.mkv", "Season 02/GoT - S02E01E02.mkv"
    )
    (show / "tvshow.nfo").write_bytes(sample("tvshow_episodeguide.nfo"))
    (show / "Season 01" / "GoT - S01E01.nfo").write_bytes(sample("episode.nfo"))
    (show / "Season 01" / "GoT - S01E02E03.nfo").write_bytes(sample("multi_episode.nfo"))
    (show / "Season 02" / "GoT - S02E01E02.nfo").write_bytes(sample("multi_episode.nfo"))
    await scan(agent, "TV")
    (series,) = await rows(agent, "series")
    assert (
        series["title"] == "Game of Thrones"
        and series["tvdb_id"] == 121361
        and series["status"] == "identified"
    )
    eps = {(e["season"], e["episode"]): e for e in await rows(agent, "episodes")}
    assert eps[1, 1]["title"] == "Winter Is Coming" and eps[1, 1]["tvdb_id"] == 3254641
    # the sample holds S01E01 and S01E02: matched by number, E03 gets nothing it does not own
    assert eps[1, 2]["title"] == "Pilot (2)" and eps[1, 3]["title"] is None
    # in season 2 the numbers do not match the file's season: nothing is misattributed
    assert eps[2, 1]["file"] == eps[2, 2]["file"] and eps[2, 1]["title"] is None


async def test_malformed_nfo_is_reported_and_left_untouched(agent: Agent) -> None:
    """A broken NFO gives nfo_error and a report error; its bytes and mtime never change."""
    folder = movies_root(agent) / "Broken (2001)"
    touch(folder, "Broken (2001).mkv")
    nfo = folder / "Broken (2001).nfo"
    nfo.write_bytes(sample("truncated.nfo"))
    os.utime(nfo, ns=(1_600_000_000_000_000_000, 1_600_000_000_000_000_000))
    before = (nfo.read_bytes(), nfo.stat().st_mtime_ns)
    report = await scan(agent)
    (row,) = await rows(agent, "movies")
    assert row["title"] == "Broken" and "malformed XML" in row["nfo_error"]
    assert any("malformed XML" in e for e in report.errors)
    assert (nfo.read_bytes(), nfo.stat().st_mtime_ns) == before


async def test_unchanged_rescan_parses_nothing_and_queues_nothing(
    agent: Agent, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A second scan of an unchanged library reads no NFO and enqueues no job."""
    folder = movies_root(agent) / "The Matrix (1999)"
    touch(folder, "The Matrix (1999).mkv")
    (folder / "The Matrix (1999).nfo").write_bytes(sample("kodi_movie.nfo"))
    show = tv_root(agent) / "GoT"
    touch(show, "Season 01/GoT - S01E01.mkv")
    (show / "tvshow.nfo").write_bytes(sample("tvshow_episodeguide.nfo"))
    await scan(agent)
    await scan(agent, "TV")
    calls: list[bytes] = []
    real = scan_module.parse_nfo
    monkeypatch.setattr(
        scan_module, "parse_nfo", lambda data, kind=None: calls.append(data) or real(data, kind)
    )
    jobs_before = await agent.db.fetchone("SELECT COUNT(*) AS n FROM job_queue")
    movies = await scan(agent)
    tv = await scan(agent, "TV")
    assert calls == []
    assert (movies.added, movies.updated, movies.unchanged) == (0, 0, 1)
    assert (tv.added, tv.updated, tv.unchanged) == (0, 0, 2)
    assert (await agent.db.fetchone("SELECT COUNT(*) AS n FROM job_queue"))["n"] == jobs_before["n"]
    # touching the folder makes the scan look again, but an identical NFO is not parsed a second time
    touch(folder, "poster.jpg")
    again = await scan(agent)
    assert calls == [] and again.updated == 1


async def test_changed_show_reads_its_episodes_state_once(agent: Agent, monkeypatch: pytest.MonkeyPatch) -> None:
    """A new episode in a known show: old rows keep their ids and NFOs are not parsed again; a gone one is missing."""
    show = tv_root(agent) / "Show"
    touch(show, "Season 01/Show - S01E01.mkv", "Season 01/Show - S01E02.mkv")
    touch(show, "Season 01/Show - S01E01.nfo", data=b"<episodedetails><title>Pilot</title></episodedetails>")
    touch(tv_root(agent), "Second/Season 01/Second - S01E01.mkv")
    await scan(agent, "TV")
    before = {(r["series_id"], r["episode"]): r["id"] for r in await rows(agent, "episodes")}
    calls: list[bytes] = []
    real = scan_module.parse_nfo
    monkeypatch.setattr(scan_module, "parse_nfo", lambda data, kind=None: calls.append(data) or real(data, kind))
    (show / "Season 01" / "Show - S01E02.mkv").unlink()
    touch(show, "Season 01/Show - S01E03.mkv")
    report = await scan(agent, "TV")
    assert calls == []
    # added E03; missing E02; unchanged: Show (its own fields did not change), its E01, Second and its E01
    assert (report.added, report.missing, report.unchanged) == (1, 1, 4)
    after = {(r["series_id"], r["episode"]): r for r in await rows(agent, "episodes")}
    assert all(after[key]["id"] == eid for key, eid in before.items())
    show_id = next(r["id"] for r in await rows(agent, "series") if r["title"] == "Show")
    assert after[(show_id, 1)]["title"] == "Pilot"  # kept what its NFO said, without reading it again
    gone = [r for r in after.values() if r["missing_since"] is not None]
    assert [r["episode"] for r in gone] == [2]


async def test_agents_own_nfo_is_not_reimported(agent: Agent, monkeypatch: pytest.MonkeyPatch) -> None:
    """An NFO whose hash matches published_files is the agent's own: not parsed, no error."""
    folder = movies_root(agent) / "Mine (2003)"
    touch(folder, "Mine (2003).mkv")
    nfo = folder / "Mine (2003).nfo"
    nfo.write_bytes(sample("truncated.nfo"))

    await agent.db.execute(
        "INSERT INTO published_files (path, entity_type, entity_id, kind, sha256, written_at)"
        " VALUES (?, 'movie', 1, 'nfo', ?, 0)",
        (str(nfo), hashlib.sha256(nfo.read_bytes()).hexdigest()),
    )
    monkeypatch.setattr(scan_module, "parse_nfo", lambda *a: pytest.fail("own NFO was parsed"))
    await scan(agent)
    (row,) = await rows(agent, "movies")
    assert row["nfo_error"] is None and row["nfo_path"] == str(nfo)


async def test_upgrade_keeps_row_id_and_locks(agent: Agent) -> None:
    """A replaced file in the same folder updates the row: same id, locks and edits survive."""
    folder = movies_root(agent) / "Heat (1995)"
    touch(folder, "Heat (1995) WEBDL-1080p.mkv")
    await scan(agent)
    (row,) = await rows(agent, "movies")

    def edit(conn: Any) -> None:
        item = media.load(conn, "movie", row["id"])
        media.save(conn, item, {"plot": "my own words"}, 1.0, lock=True)

    await agent.db.write(edit)
    await agent.db.execute("UPDATE job_queue SET status = 'completed'")  # the first enrichment ran
    (folder / "Heat (1995) WEBDL-1080p.mkv").unlink()
    touch(folder, "Heat (1995) Bluray-2160p.mkv", data=b"bigger file")
    report = await scan(agent, folder=str(folder), source="webhook", upgrade=True, priority=1)
    (after,) = await rows(agent, "movies")
    assert after["id"] == row["id"] and after["file"].endswith("Bluray-2160p.mkv")
    assert after["plot"] == "my own words" and json.loads(after["locked_fields"]) == ["plot"]
    assert report.movies == [row["id"]] and report.updated == 1 and report.added == 0
    job = (await enrich_jobs(agent))[-1]
    assert job["update"] == "Modified" and job["job_priority"] == 1


async def test_episode_upgrade_keeps_row(agent: Agent) -> None:
    """An episode file replaced by a better one keeps its episode row."""
    season = tv_root(agent) / "Show" / "Season 01"
    touch(season, "Show - S01E01 - HDTV.avi")
    await scan(agent, "TV")
    (ep,) = await rows(agent, "episodes")
    (season / "Show - S01E01 - HDTV.avi").unlink()
    touch(season, "Show - S01E01 - Bluray.mkv", data=b"new")
    await scan(agent, "TV")
    (after,) = await rows(agent, "episodes")
    assert after["id"] == ep["id"] and after["file"].endswith("Bluray.mkv") and after["missing_since"] is None


async def test_moved_movie_keeps_its_record(agent: Agent) -> None:
    """A folder renamed elsewhere is matched by size + partial hash: same row, new path."""
    data = os.urandom(200_000)
    old = movies_root(agent) / "Old Name (2004)"
    touch(old, "Old Name (2004).mkv", data=data)
    touch(movies_root(agent), "Other (2005)/Other (2005).mkv", data=os.urandom(300))
    await scan(agent)
    before = {r["title"]: r for r in await rows(agent, "movies")}
    new = movies_root(agent) / "A-M" / "New Name (2004)"
    new.parent.mkdir()
    shutil.move(old, new)
    (new / "Old Name (2004).mkv").rename(new / "New Name (2004).mkv")
    report = await scan(agent)
    after = {r["id"]: r for r in await rows(agent, "movies")}
    moved = after[before["Old Name"]["id"]]
    assert len(after) == 2 and moved["path"] == str(new) and moved["missing_since"] is None
    assert moved["file"] == str(new / "New Name (2004).mkv")
    assert report.missing == 0 and report.added == 0 and report.updated == 1


async def test_moved_movie_matched_by_ids_after_missing(agent: Agent) -> None:
    """A missing row comes back when its tmdb id shows up in another folder."""
    old = movies_root(agent) / "Matrix"
    touch(old, "Matrix.mkv")
    (old / "movie.nfo").write_bytes(sample("kodi_movie.nfo"))
    touch(movies_root(agent), "Kept (2001)/Kept (2001).mkv")  # an emptied root is refused, not judged
    await scan(agent)
    (row,) = [r for r in await rows(agent, "movies") if r["path"] == str(old)]
    shutil.rmtree(old)
    assert (await scan(agent)).missing == 1
    new = movies_root(agent) / "The Matrix (1999)"
    touch(new, "The Matrix (1999).mkv", data=b"different bytes")
    (new / "movie.nfo").write_bytes(sample("kodi_movie.nfo"))
    await scan(agent)
    (after,) = [r for r in await rows(agent, "movies") if r["id"] == row["id"]]
    assert after["id"] == row["id"] and after["path"] == str(new) and after["missing_since"] is None


async def test_missing_marked_then_deleted_after_grace(agent: Agent, clock: FakeClock) -> None:
    """A vanished folder marks its row missing; past missing_grace_days the row is deleted."""
    folder = movies_root(agent) / "Gone (2010)"
    touch(folder, "Gone (2010).mkv")
    touch(movies_root(agent), "Kept (2001)/Kept (2001).mkv")  # an emptied root is refused, not judged
    season = tv_root(agent) / "Show" / "Season 01"
    touch(season, "Show - S01E01.mkv", "Show - S01E02.mkv")
    await scan(agent)
    await scan(agent, "TV")
    shutil.rmtree(folder)
    (season / "Show - S01E02.mkv").unlink()
    movies = await scan(agent)
    tv = await scan(agent, "TV")
    assert movies.missing == 1 and tv.missing == 1
    row = {r["path"]: r for r in await rows(agent, "movies")}[str(folder)]
    assert row["missing_since"] == clock.now()
    eps = {e["episode"]: e for e in await rows(agent, "episodes")}
    assert eps[1]["missing_since"] is None and eps[2]["missing_since"] == clock.now()
    clock.advance(agent.cfg.watcher.missing_grace_days * 86400 + 1)
    assert (await scan(agent)).deleted == 1
    assert (await scan(agent, "TV")).deleted == 1
    assert [r["title"] for r in await rows(agent, "movies")] == ["Kept"]
    assert [e["episode"] for e in await rows(agent, "episodes")] == [1]


async def test_vanished_show_and_its_episodes_are_deleted_after_grace(agent: Agent, clock: FakeClock) -> None:
    """A show folder that stays gone past the grace period takes its episode rows with it."""
    touch(tv_root(agent), "Gone/Season 01/Gone - S01E01.mkv", "Gone/Season 01/Gone - S01E02.mkv")
    touch(tv_root(agent), "Kept/Season 01/Kept - S01E01.mkv")
    await scan(agent, "TV")
    shutil.rmtree(tv_root(agent) / "Gone")
    assert (await scan(agent, "TV")).missing == 1  # the show (its episodes wait with it)
    clock.advance(agent.cfg.watcher.missing_grace_days * 86400 + 1)
    report = await scan(agent, "TV")
    assert report.deleted == 3 and report.unchanged == 2
    assert [r["title"] for r in await rows(agent, "series")] == ["Kept"]
    assert len(await rows(agent, "episodes")) == 1


async def test_webhook_folder_scan_applies_hints(agent: Agent) -> None:
    """A webhook scan of one folder takes the ids from its hints and queues enrich with hints and priority."""
    folder = movies_root(agent) / "Arrival (2016)"
    touch(folder, "Arrival (2016).mkv")
    touch(movies_root(agent), "Elsewhere (2000)/Elsewhere (2000).mkv")
    hints = {"title": "Arrival", "ids": {"tmdb_id": 329865, "imdb_id": "tt2543164"}}
    report = await scan(
        agent,
        folder=str(folder),
        file=str(folder / "Arrival (2016).mkv"),
        source="webhook",
        hints=hints,
        priority=1,
    )
    (row,) = await rows(agent, "movies")
    assert row["tmdb_id"] == 329865 and row["status"] == "identified" and report.errors == []
    (job,) = await enrich_jobs(agent)
    assert job["hints"] == hints and job["priority"] == 1 and job["update"] == "Created"
    again = await scan(agent, folder=str(folder), source="webhook", hints=hints, priority=1)
    assert again.unchanged == 1 and again.movies == [row["id"]]


async def test_payload_errors_are_permanent(agent: Agent, tmp_path: Path) -> None:
    """An unknown library or a folder outside the library fails for good, naming the problem."""
    with pytest.raises(PermanentFailure, match=r"Nope.*Movies, TV"):
        build_request(agent.cfg, {"library": "Nope"})
    with pytest.raises(PermanentFailure, match="not inside library"):
        build_request(agent.cfg, {"library": "Movies", "folder": str(tmp_path)})
    with pytest.raises(PermanentFailure, match="source"):
        build_request(agent.cfg, {"library": "Movies", "source": "carrier pigeon"})
    with pytest.raises(PermanentFailure, match="scan payload: hints must be an object"):
        build_request(agent.cfg, {"library": "Movies", "hints": ["Arrival"]})
    with pytest.raises(PermanentFailure, match=r"scan payload: hints.year must be a int, got '2016'"):
        build_request(agent.cfg, {"library": "Movies", "hints": {"title": "Arrival", "year": "2016"}})
    hinted = build_request(agent.cfg, {"library": "Movies", "hints": {"title": "Arrival", "ids": {"tmdb_id": 1}}})
    assert hinted.hints == Hints(title="Arrival", ids={"tmdb_id": 1})


async def test_file_not_recognised_is_reported(agent: Agent) -> None:
    """A named file the walk does not pick up (a sample) is an error in the result."""
    folder = movies_root(agent) / "Film (2011)"
    touch(folder, "Film (2011).mkv", "Film (2011)-sample.mkv")
    report = await scan(agent, folder=str(folder), file=str(folder / "Film (2011)-sample.mkv"))
    assert report.added == 1 and "not recognised" in report.errors[0]


async def test_unchanged_rescan_builds_no_candidates(agent: Agent, monkeypatch: pytest.MonkeyPatch) -> None:
    """A rescan compares signatures first: only the changed folder is parsed into a full candidate."""
    for i in range(3):
        touch(movies_root(agent), f"M{i} (200{i})/M{i} (200{i}).mkv")
        touch(tv_root(agent), f"Show {i}/Season 01/Show {i} - S01E01.mkv")
    await scan(agent)
    await scan(agent, "TV")
    built: list[str] = []
    real_movie, real_show = discover_module._candidate, series_module._series
    monkeypatch.setattr(discover_module, "_candidate", lambda f, *a: built.append(f) or real_movie(f, *a))
    monkeypatch.setattr(series_module, "_series", lambda f, *a: built.append(f) or real_show(f, *a))
    movies, tv = await scan(agent), await scan(agent, "TV")
    assert built == []
    assert (movies.unchanged, tv.unchanged) == (3, 6)
    touch(movies_root(agent), "M1 (2001)/M1 (2001).nfo", data=b"<movie><title>Changed</title></movie>")
    touch(tv_root(agent), "Show 2/Season 01/Show 2 - S01E02.mkv")
    movies, tv = await scan(agent), await scan(agent, "TV")
    assert built == [str(movies_root(agent) / "M1 (2001)"), str(tv_root(agent) / "Show 2")]
    assert (movies.updated, movies.unchanged) == (1, 2)
    assert (tv.added, tv.unchanged) == (1, 6)  # the new episode; 3 shows and their 3 old episodes
    titles = {r["title"] for r in await rows(agent, "movies")}
    assert titles == {"M0", "Changed", "M2"}


async def test_rescan_hashes_known_movie_folders_without_listing_entries(
    agent: Agent, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A folder the store holds as one movie is hashed whole; only a changed or shared one is walked in full."""
    root = movies_root(agent)
    touch(root, "A (2001)/A (2001).mkv", "B (2002)/B (2002).mkv", "B (2002)/poster.jpg")
    touch(root, "Pair/One (2003).mkv", "Pair/Two (2004).mkv", "Disc (2005)/BDMV/index.bdmv")
    assert (await scan(agent)).added == 5
    listed: list[str] = []
    real = discover_module.scan_folder
    monkeypatch.setattr(discover_module, "scan_folder", lambda path: listed.append(path) or real(path))
    report = await scan(agent)
    assert report.unchanged == 5 and report.updated == report.added == 0
    names = sorted(os.path.basename(p) for p in listed)
    assert names == ["BDMV", "Disc (2005)", "Pair", "movies"]  # root, the shared folder, the disc: in full
    touch(root, "B (2002)/B (2002).nfo", data=b"<movie><title>Bee</title></movie>")
    listed.clear()
    report = await scan(agent)
    assert report.updated == 1 and report.unchanged == 4
    assert str(root / "B (2002)") in listed
    assert "Bee" in {r["title"] for r in await rows(agent, "movies")}


async def test_new_rows_continue_ids_and_write_each_column_set(agent: Agent) -> None:
    """NewRows hands out ids at once after the largest existing one and writes rows of different shapes."""
    touch(movies_root(agent), "Heat (1995)/Heat (1995).mkv")
    await scan(agent)
    lib = (await rows(agent, "movies"))[0]["library_id"]
    top = (await rows(agent, "movies"))[0]["id"]

    def run(conn: Any) -> list[int]:
        """Add two rows of different column sets and flush them."""
        batch = media.NewRows("movie")
        base = {"library_id": lib, "path": "/m", "status": "unidentified", "created_at": 1.0, "updated_at": 1.0}
        ids = [
            batch.add(conn, {**base, "file": "/m/a.mkv", "title": "A"}),
            batch.add(conn, {**base, "file": "/m/b.mkv", "year": 2001}),
        ]
        assert conn.execute("SELECT COUNT(*) FROM movies").fetchone()[0] == 1  # nothing written before flush
        batch.flush(conn)
        return ids

    assert await agent.db.write(run) == [top + 1, top + 2]
    found = {r["id"]: (r["file"], r["title"], r["year"]) for r in await rows(agent, "movies")}
    assert found[top + 1] == ("/m/a.mkv", "A", None) and found[top + 2] == ("/m/b.mkv", None, 2001)


async def test_scans_freeze_the_heap_only_while_they_run(agent: Agent) -> None:
    """gc.freeze keeps full collections off the server's older objects during scans, and only then."""
    assert gc.get_freeze_count() == 0
    with heap_frozen():
        assert gc.get_freeze_count() > 0
        with heap_frozen():  # a second library scanning at the same time
            pass
        assert gc.get_freeze_count() > 0  # the first scan still runs
    assert gc.get_freeze_count() == 0
    touch(movies_root(agent), "Heat (1995)/Heat (1995).mkv")
    assert (await scan(agent)).added == 1
    assert gc.get_freeze_count() == 0


async def test_walk_reader_reads_through_the_loop_and_gives_up_when_it_stops(agent: Agent) -> None:
    """The walk thread's reader returns the read's result; with the loop stopped it raises instead of hanging."""
    fetch = _walk_reader(scan_parts(agent), asyncio.get_running_loop())
    count = await asyncio.to_thread(fetch, lambda conn: conn.execute("SELECT COUNT(*) FROM movies").fetchone()[0])
    assert count == 0
    stopped = asyncio.new_event_loop()  # never runs: as if the agent had stopped
    try:
        reads: list[int] = []
        with pytest.raises(RuntimeError, match="stopped"):
            await asyncio.to_thread(_walk_reader(scan_parts(agent), stopped), lambda conn: reads.append(1))
        assert reads == []
    finally:
        stopped.close()
