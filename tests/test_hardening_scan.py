"""Scans never lose records by looking at the wrong place: folder scopes, vanished roots, shared data_dirs."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from conftest import make_config

from agent.clock import FakeClock
from agent.config import Config
from agent.jobs import scan as scan_job
from agent.jobs.model import Status
from agent.library.service import _on_change
from agent.service import Agent
from agent.store import media

GONE = "is missing or empty; nothing was marked missing"


def touch(path: Path, data: bytes = b"x") -> None:
    """Create a file and its folders."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


async def open_agent(cfg: Config, clock: FakeClock | None = None) -> Agent:
    """An agent with an open store and the scan handler registered."""
    a = Agent(cfg, clock=clock)
    await a.open_store()
    scan_job.register(a)

    async def enrich(ctx: Any) -> dict[str, Any]:
        """The scans' follow-ups are not what these tests look at."""
        return {}

    a.queue.register("enrich", enrich)
    return a


@pytest.fixture
async def agent(tmp_path: Path, clock: FakeClock) -> AsyncIterator[Agent]:
    """An agent over empty Movies and TV libraries."""
    a = await open_agent(make_config(tmp_path), clock)
    yield a
    await a.db.close()


async def run_scan_job(agent: Agent, library: str = "Movies", folder: str | None = None) -> Any:
    """Queue a scan job, drain the queue, return the finished job."""
    job = await scan_job.enqueue_scan(agent, library, folder)
    await agent.queue.run_until_idle()
    return await agent.queue.get(job.id)


async def watcher_scan(agent: Agent, library: str, folder: Path) -> Any:
    """A settled folder change the way the watcher hands it over; drain the queue, return the scan job."""
    lib = agent.cfg.library(library)
    assert lib is not None
    await _on_change(agent, lib.path)(library, folder)
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
