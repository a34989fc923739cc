"""Scans never lose records by looking at the wrong place: folder scopes, vanished roots, shared data_dirs."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import make_config, only_scan, open_test_agent, write_config

from agent.cli import main
from agent.clock import FakeClock
from agent.config import load_config
from agent.errors import UserError
from agent.jobs import scan as scan_job
from agent.queue.model import Status
from agent.services import Services as Agent
from agent.store import media

GONE = "is missing or empty; nothing was marked missing"


def touch(path: Path, data: bytes = b"x") -> None:
    """Create a file and its folders."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def scans_only(a: Agent) -> Agent:
    """Leave the agent's queue with the scan handler and a no-op enrich (the scans' follow-ups)."""
    only_scan(a)

    async def enrich(ctx: Any) -> dict[str, Any]:
        """The scans' follow-ups are not what these tests look at."""
        return {}

    a.queue.register("enrich", enrich)
    return a


@pytest.fixture
async def agent(tmp_path: Path, clock: FakeClock) -> AsyncIterator[Agent]:
    """An agent over empty Movies and TV libraries."""
    async with open_test_agent(make_config(tmp_path), clock) as a:
        yield scans_only(a)


async def run_scan_job(agent: Agent, library: str = "Movies", folder: str | None = None) -> Any:
    """Queue a scan job, drain the queue, return the finished job."""
    job = await scan_job.enqueue_scan(agent.queue, library, folder)
    await agent.queue.run_until_idle()
    return await agent.queue.get(job.id)


async def watcher_scan(agent: Agent, library: str, folder: Path) -> Any:
    """A settled folder change the way the watcher hands it over; drain the queue, return the scan job."""
    lib = agent.cfg.library(library)
    assert lib is not None
    await agent.watchers._on_change(lib.path)(library, folder)
    await agent.queue.run_until_idle()
    row = await agent.db.fetchone("SELECT id FROM job_queue WHERE type = 'scan' ORDER BY id DESC LIMIT 1")
    return await agent.queue.get(row["id"])


async def movie_rows(agent: Agent) -> dict[str, dict[str, Any]]:
    """Movie rows by file name."""
    rows = await agent.db.fetchall("SELECT * FROM movies ORDER BY id")
    return {os.path.basename(r["file"]): dict(r) for r in rows}


# --- item 2: a folder rescan judges only what is inside that folder ---------------------------------


async def test_sibling_folder_rescan_leaves_a_root_level_movie_alone(agent: Agent, clock: FakeClock) -> None:
    """A movie file directly in the root survives watcher scans of a sibling folder past the grace period."""
    root = agent.cfg.libraries[0].path
    touch(root / "Heat (1995).mkv")
    sibling = root / "Alien (1979)"
    touch(sibling / "Alien (1979).mkv")
    assert (await run_scan_job(agent)).status == Status.COMPLETED
    heat = (await movie_rows(agent))["Heat (1995).mkv"]

    def lock(conn: Any) -> None:
        """Edit and lock the plot, as a user would."""
        item = media.load(conn, "movie", heat["id"])
        media.save(conn, item, {"plot": "my words"}, clock.now(), lock=True)

    await agent.db.write(lock)
    touch(sibling / "Alien (1979).nfo", b"<movie><title>Alien</title></movie>")
    job = await watcher_scan(agent, "Movies", sibling)
    assert job.status == Status.COMPLETED and job.result["missing"] == 0
    assert job.payload["folder"] == str(sibling) and job.payload["source"] == "watcher"
    clock.advance(agent.cfg.watcher.missing_grace_days * 86400 + 1)
    touch(sibling / "Alien (1979).nfo", b"<movie><title>Alien</title><year>1979</year></movie>")
    job = await watcher_scan(agent, "Movies", sibling)
    assert job.status == Status.COMPLETED and job.result["missing"] == 0 and job.result["deleted"] == 0
    after = (await movie_rows(agent))["Heat (1995).mkv"]
    assert after["id"] == heat["id"] and after["missing_since"] is None
    assert after["plot"] == "my words" and json.loads(after["locked_fields"]) == ["plot"]


async def test_folder_scan_of_a_sub_folder_leaves_its_movie_alone(agent: Agent) -> None:
    """A scan of a movie's `Subs` folder does not judge the movie folder that holds it."""
    folder = agent.cfg.libraries[0].path / "Heat (1995)"
    touch(folder / "Heat (1995).mkv")
    touch(folder / "Subs" / "Heat.en.srt")
    await run_scan_job(agent)
    job = await run_scan_job(agent, folder=str(folder / "Subs"))
    assert job.status == Status.COMPLETED and job.result["missing"] == 0
    assert (await movie_rows(agent))["Heat (1995).mkv"]["missing_since"] is None


async def test_vanished_folder_scan_still_marks_what_was_inside(agent: Agent) -> None:
    """The scope rule still judges what lay inside the scanned folder: its vanished movie goes missing."""
    root = agent.cfg.libraries[0].path
    touch(root / "Heat (1995).mkv")
    touch(root / "Gone (2010)" / "Gone (2010).mkv")
    await run_scan_job(agent)
    shutil.rmtree(root / "Gone (2010)")
    job = await watcher_scan(agent, "Movies", root / "Gone (2010)")
    assert job.status == Status.COMPLETED and job.result["missing"] == 1
    rows = await movie_rows(agent)
    assert rows["Gone (2010).mkv"]["missing_since"] is not None and rows["Heat (1995).mkv"]["missing_since"] is None


async def test_season_folder_scan_still_judges_its_show(agent: Agent) -> None:
    """A scan of a season folder walks its show: an episode deleted there is marked missing."""
    season = agent.cfg.libraries[1].path / "Show" / "Season 01"
    touch(season / "Show - S01E01.mkv")
    touch(season / "Show - S01E02.mkv")
    await run_scan_job(agent, "TV")
    (season / "Show - S01E02.mkv").unlink()
    job = await run_scan_job(agent, "TV", folder=str(season))
    assert job.status == Status.COMPLETED and job.result["missing"] == 1
    eps = {r["episode"]: r["missing_since"] for r in await agent.db.fetchall("SELECT * FROM episodes")}
    assert eps[1] is None and eps[2] is not None


# --- item 3: a vanished library root is not an empty library ----------------------------------------


async def health_warnings(client: Any) -> list[dict[str, Any]]:
    """The library_root_missing warnings /api/health reports (the other checks are tests/test_health.py's)."""
    resp = await client.get("/api/health")
    assert resp.status == 200
    return [w for w in (await resp.json())["warnings"] if w["code"] == "library_root_missing"]


async def populated_client(make_client: Any, tmp_path: Path, clock: FakeClock) -> Any:
    """The real app over a Movies library holding two movies (its enrich follow-ups dropped)."""
    client = await make_client(make_config(tmp_path), clock)
    agent = client.agent
    root = agent.cfg.libraries[0].path
    touch(root / "Heat (1995)" / "Heat (1995).mkv")
    touch(root / "Alien (1979)" / "Alien (1979).mkv")
    job = await scan_job.enqueue_scan(agent.queue, "Movies")
    await agent.db.execute("UPDATE job_queue SET status = 'cancelled' WHERE id != ?", (job.id,))
    await agent.queue.run_until_idle()
    assert (await agent.queue.get(job.id)).status == Status.COMPLETED
    await agent.db.execute("DELETE FROM job_queue WHERE type = 'enrich'")
    assert len(await movie_rows(agent)) == 2
    return client


async def assert_refused_and_nothing_missing(client: Any, root: Path) -> None:
    """Full and watcher folder scans fail naming the root; no row is marked missing; health warns."""
    agent = client.agent
    full = await run_scan_job(agent)
    assert full.status == Status.FAILED and full.attempts == 1
    assert full.error.startswith(f"library root {root} {GONE}")
    folder = await watcher_scan(agent, "Movies", root / "Heat (1995)")
    assert folder.status == Status.FAILED and GONE in folder.error
    rows = await movie_rows(agent)
    assert len(rows) == 2 and all(r["missing_since"] is None for r in rows.values())
    (warning,) = await health_warnings(client)
    assert warning["code"] == "library_root_missing" and warning["subject"] == "Movies"
    assert str(root) in warning["message"] and GONE in warning["message"]


async def test_renamed_root_fails_the_scan_and_marks_nothing(
    make_client: Any, tmp_path: Path, clock: FakeClock
) -> None:
    """A root renamed away (or unmounted) fails every scan of it; back in place, scans and health recover."""
    client = await populated_client(make_client, tmp_path, clock)
    root = client.agent.cfg.libraries[0].path
    assert await health_warnings(client) == []
    root.rename(root.with_name("movies-renamed"))
    await assert_refused_and_nothing_missing(client, root)
    clock.advance(client.agent.cfg.watcher.missing_grace_days * 86400 + 1)
    root.with_name("movies-renamed").rename(root)
    job = await run_scan_job(client.agent)
    assert job.status == Status.COMPLETED and job.result["unchanged"] == 2 and job.result["missing"] == 0
    assert await health_warnings(client) == []


async def test_emptied_root_fails_the_scan_and_marks_nothing(
    make_client: Any, tmp_path: Path, clock: FakeClock
) -> None:
    """A root that is an empty folder (an unmounted mount point) while the store holds its items fails too."""
    client = await populated_client(make_client, tmp_path, clock)
    root = client.agent.cfg.libraries[0].path
    elsewhere = tmp_path / "disk"
    shutil.move(str(root), str(elsewhere))
    root.mkdir()
    touch(root / ".DS_Store")  # OS litter does not make a folder a library
    await assert_refused_and_nothing_missing(client, root)


async def test_new_empty_library_scans_fine(make_client: Any, tmp_path: Path, clock: FakeClock) -> None:
    """An empty root with no items in the store is a new library, not a vanished one."""
    client = await make_client(make_config(tmp_path), clock)
    job = await run_scan_job(client.agent)
    assert job.status == Status.COMPLETED and job.result["added"] == 0
    assert await health_warnings(client) == []


def test_cli_scan_wait_names_the_empty_root(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`scan --wait` over an emptied root exits 1 with the reason on one line; nothing is marked missing."""
    path = write_config(tmp_path)
    root = tmp_path / "media" / "movies"
    touch(root / "Solo (2018)" / "Solo (2018).mkv")
    assert main(["scan", "Movies", "--wait", "--config", str(path)]) == 0
    shutil.rmtree(root / "Solo (2018)")
    capsys.readouterr()
    assert main(["scan", "Movies", "--wait", "--config", str(path)]) == 1
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert f"library root {root} {GONE}" in err
    with sqlite3.connect(tmp_path / "data" / "metarr.sqlite") as conn:
        assert conn.execute("SELECT missing_since FROM movies").fetchall() == [(None,)]


async def test_root_unmounted_during_the_walk_marks_nothing(
    agent: Agent, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A root that empties between the first check and the end of the walk still fails before judging."""
    import agent.library.scan as scan_module

    root = agent.cfg.libraries[0].path
    touch(root / "Heat (1995)" / "Heat (1995).mkv")
    assert (await run_scan_job(agent)).status == Status.COMPLETED
    real = scan_module.discover_movies

    def unmount_then_walk(*args: Any, **kwargs: Any) -> Any:
        """The drive goes away just as the walk begins."""
        shutil.move(str(root), str(tmp_path / "disk"))
        root.mkdir()
        return real(*args, **kwargs)

    monkeypatch.setattr(scan_module, "discover_movies", unmount_then_walk)
    job = await run_scan_job(agent)
    assert job.status == Status.FAILED and GONE in job.error
    assert [r["missing_since"] for r in (await movie_rows(agent)).values()] == [None]


# --- item 3: two configs on one data_dir ----------------------------------------------------------------


def other_config(tmp_path: Path, where: str, libraries: list[dict[str, Any]]) -> Path:
    """A copy of write_config's file at tmp_path/where/agent.yaml (same data_dir) with other libraries."""
    data = yaml.safe_load((tmp_path / "agent.yaml").read_text(encoding="utf-8"))
    data["libraries"] = libraries
    path = tmp_path / where / "agent.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def library(name: str, kind: str, path: Path) -> dict[str, Any]:
    """One library entry of a config."""
    path.mkdir(parents=True, exist_ok=True)
    return {"name": name, "kind": kind, "path": str(path), "watch": "off"}


async def first_config_with_a_movie(tmp_path: Path) -> Path:
    """write_config's config, opened once, with one movie scanned into Movies; returns its path."""
    path = write_config(tmp_path)
    touch(tmp_path / "media" / "movies" / "Heat (1995)" / "Heat (1995).mkv")
    async with open_test_agent(load_config(path)) as agent:
        assert (await run_scan_job(scans_only(agent))).status == Status.COMPLETED
    return path


def stored(tmp_path: Path) -> tuple[dict[str, tuple[int, str]], list[tuple[int, str]]]:
    """({library name: (id, path)}, [(movie library_id, file name)]) as the database holds them."""
    with sqlite3.connect(tmp_path / "data" / "metarr.sqlite") as conn:
        libs = {r[0]: (r[1], r[2]) for r in conn.execute("SELECT name, id, path FROM libraries")}
        movies = [(r[0], os.path.basename(r[1])) for r in conn.execute("SELECT library_id, file FROM movies")]
    return libs, movies


async def test_second_config_with_other_libraries_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Another config with other libraries on the same data_dir is refused naming both; nothing is pruned."""
    first = await first_config_with_a_movie(tmp_path)
    before = stored(tmp_path)
    second = other_config(tmp_path, "example", [library("Films", "movies", tmp_path / "elsewhere")])
    with pytest.raises(UserError) as caught:
        async with open_test_agent(load_config(second)):
            pass
    message = caught.value.message
    assert str(first.resolve()) in message and str(second.resolve()) in message and "Movies" in message
    assert stored(tmp_path) == before and set(before[0]) == {"Movies", "TV"} and len(before[1]) == 1
    assert await asyncio.to_thread(main, ["scan", "--wait", "--config", str(second)]) == 1  # its own loop
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and str(first.resolve()) in err and str(second.resolve()) in err
    assert stored(tmp_path) == before
    async with open_test_agent(load_config(first)):  # the owner still opens it
        pass


async def test_copied_config_with_the_same_libraries_takes_over(tmp_path: Path) -> None:
    """The example copied to config/agent.yaml (same libraries) opens the data; the original still does too."""
    first = await first_config_with_a_movie(tmp_path)
    before = stored(tmp_path)
    copy = tmp_path / "config" / "agent.yaml"
    copy.parent.mkdir()
    shutil.copy(first, copy)
    for path in (copy, first, copy):
        async with open_test_agent(load_config(path)):
            pass
        assert stored(tmp_path) == before


async def test_renaming_a_library_in_its_config_keeps_its_items(tmp_path: Path) -> None:
    """Movies renamed to Films (same folder) in the same config: same library row, its movies kept."""
    await first_config_with_a_movie(tmp_path)
    (libs, movies) = stored(tmp_path)
    media_dir = tmp_path / "media"
    write_config(tmp_path, libraries=[library("Films", "movies", media_dir / "movies")])
    async with open_test_agent(load_config(tmp_path / "agent.yaml")):
        pass
    after_libs, after_movies = stored(tmp_path)
    assert after_libs == {"Films": libs["Movies"]} and after_movies == movies


async def test_a_library_removed_from_its_own_config_is_removed(tmp_path: Path) -> None:
    """The config that owns data_dir may still drop a library (and its items): an edit is an intention."""
    await first_config_with_a_movie(tmp_path)
    write_config(tmp_path, libraries=[library("TV", "series", tmp_path / "media" / "tv")])
    async with open_test_agent(load_config(tmp_path / "agent.yaml")):
        pass
    assert stored(tmp_path) == ({"TV": stored(tmp_path)[0]["TV"]}, [])


async def test_other_config_may_drop_libraries_that_hold_nothing(tmp_path: Path) -> None:
    """A first run of the example with empty demo libraries does not lock the data to it."""
    write_config(tmp_path)
    async with open_test_agent(load_config(tmp_path / "agent.yaml")):
        pass
    second = other_config(tmp_path, "config", [library("Films", "movies", tmp_path / "films")])
    async with open_test_agent(load_config(second)):
        pass
    assert set(stored(tmp_path)[0]) == {"Films"}


async def test_deleting_the_owner_file_hands_the_data_over(tmp_path: Path) -> None:
    """The refusal names the file to delete to hand data_dir to the other config on purpose; then it opens."""
    await first_config_with_a_movie(tmp_path)
    second = other_config(tmp_path, "example", [library("Films", "movies", tmp_path / "elsewhere")])
    with pytest.raises(UserError) as caught:
        async with open_test_agent(load_config(second)):
            pass
    owner_file = tmp_path / "data" / "config-owner.json"
    assert str(owner_file) in caught.value.message
    owner_file.unlink()
    async with open_test_agent(load_config(second)):
        pass
    assert stored(tmp_path) == ({"Films": stored(tmp_path)[0]["Films"]}, [])
