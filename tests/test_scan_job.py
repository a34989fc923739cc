"""The scan job through the real queue, the watcher service, and `metarr-agent scan`."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from conftest import HEADERS, make_config, only_scan, open_test_agent, wait_for, write_config

from agent.cli import main
from agent.clock import FakeClock
from agent.jobs import scan as scan_job
from agent.process import DataDirLock
from agent.queue.model import Status
from agent.services import Services as Agent


@pytest.fixture
async def agent(tmp_path: Path, clock: FakeClock) -> AsyncIterator[Agent]:
    """An agent with an open store and only the scan handler registered."""
    async with open_test_agent(make_config(tmp_path), clock) as a:
        only_scan(a)
        yield a


def touch(path: Path, data: bytes = b"x") -> None:
    """Create a file and its folders."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


async def test_scan_job_result_progress_and_library_row(agent: Agent) -> None:
    """A queued scan completes with the contract's result, emits scan:progress and stamps the library."""
    root = agent.cfg.libraries[0].path
    for i in range(3):
        touch(root / f"Film {i} (200{i})" / f"Film {i} (200{i}).mkv")
    events: list[tuple[str, dict[str, Any]]] = []
    agent.events.subscribe(lambda t, d: events.append((t, d)))
    job = await scan_job.enqueue_scan(agent.queue, "Movies", source="user", priority=2)
    assert job.dedupe_key == "scan:Movies:" and job.lock_key == "scan:Movies"
    await agent.queue.run_until_idle()
    done = await agent.queue.get(job.id)
    assert done.status == Status.COMPLETED
    assert {"movies", "series", "episodes", "added", "updated", "unchanged", "missing"} <= set(done.result)
    assert done.result["added"] == 3 and len(done.result["movies"]) == 3
    progress = [d for t, d in events if t == "scan:progress"]
    assert progress and progress[-1]["library"] == "Movies" and progress[-1]["seen"] == 3
    assert any(t == "job:progress" and d["job_id"] == job.id for t, d in events)
    lib = await agent.db.fetchone(
        "SELECT last_scan_at, last_scan_job_id FROM libraries WHERE name = 'Movies'"
    )
    assert lib["last_scan_job_id"] == job.id and lib["last_scan_at"] == agent.clock.now()
    enrich = await agent.db.fetchall("SELECT payload, dedupe_key FROM job_queue WHERE type = 'enrich'")
    assert sorted(r["dedupe_key"] for r in enrich) == sorted(
        f"enrich:movie:{i}" for i in done.result["movies"]
    )


async def test_bad_payloads_fail_permanently(agent: Agent, tmp_path: Path) -> None:
    """Unknown library and a folder outside it fail at once with the problem named."""
    bad = await agent.queue.enqueue("scan", {"library": "Music", "source": "user"})
    outside = await agent.queue.enqueue("scan", {"library": "Movies", "folder": str(tmp_path / "elsewhere")})
    await agent.queue.run_until_idle()
    bad_job, outside_job = await agent.queue.get(bad.id), await agent.queue.get(outside.id)
    assert bad_job.status == Status.FAILED and "'Music'" in bad_job.error and "Movies, TV" in bad_job.error
    assert outside_job.status == Status.FAILED and "not inside library" in outside_job.error
    assert bad_job.attempts == 1


async def test_series_episodes_enrich_after_their_show(agent: Agent) -> None:
    """Episode enrich jobs depend on the show's enrich job queued in the same scan."""
    touch(agent.cfg.libraries[1].path / "Show" / "Season 01" / "Show - S01E01.mkv")
    await scan_job.enqueue_scan(agent.queue, "TV")
    await agent.queue.run_until_idle()
    jobs = {
        json.loads(r["payload"])["entity"]: r["id"]
        for r in await agent.db.fetchall("SELECT id, payload FROM job_queue WHERE type = 'enrich'")
    }
    dep = await agent.db.fetchone(
        "SELECT depends_on FROM job_dependencies WHERE job_id = ?", (jobs["episode"],)
    )
    assert dep["depends_on"] == jobs["series"]


async def test_scan_jobs_enrich_jobs_each_start_an_item_chain(agent: Agent) -> None:
    """Enrich jobs a scan job queues each start their item's chain (chain NULL: their own id), so each item's
    follow-ups sort before the next item's lookup rather than behind every lookup of the scan; every job the
    scan caused names it as its origin."""
    for name in ("Heat (1995)", "Ronin (1998)"):
        touch(agent.cfg.libraries[0].path / name / f"{name}.mkv")
    scan = await scan_job.enqueue_scan(agent.queue, "Movies")
    await agent.queue.run_until_idle()
    rows = await agent.db.fetchall("SELECT chain, origin FROM job_queue WHERE type = 'enrich'")
    assert [r["chain"] for r in rows] == [None, None]
    assert [r["origin"] for r in rows] == [scan.id, scan.id]  # still the scan's work, for the dashboard


async def test_watcher_service_queues_folder_scans(make_client: Any, tmp_path: Path) -> None:
    """A watched library's changed folder becomes a low-priority scan of that folder; health counts it."""
    movies = tmp_path / "media" / "movies"
    cfg = make_config(
        tmp_path,
        extra={"watcher": {"quiet_seconds": 0.1}},
        libraries=[
            {"name": "Movies", "kind": "movies", "path": str(movies), "watch": "auto"},
            {"name": "TV", "kind": "series", "path": str(tmp_path / "media" / "tv"), "watch": "off"},
        ],
    )
    client = await make_client(cfg)
    health = await (await client.get("/api/health")).json()
    assert health["watchers"] == 1
    folder = movies / "New Film (2020)"
    touch(folder / "New Film (2020).mkv")

    async def queued() -> Any:
        return await client.agent.db.fetchone("SELECT * FROM job_queue WHERE type = 'scan'")

    row = await wait_for(queued, timeout=10)
    payload = json.loads(row["payload"])
    assert payload == {"library": "Movies", "source": "watcher", "folder": str(folder)}
    assert row["priority"] == 10 and row["dedupe_key"] == f"scan:Movies:{folder}"
    assert row["lock_key"] == "scan:Movies"
    resp = await client.get("/api/libraries", headers=HEADERS)
    assert resp.status == 200


def test_cli_scan_wait_prints_summary(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`scan --wait` runs the scan here and prints a summary (no progress frames: stderr is not a terminal)."""
    path = write_config(tmp_path)
    touch(tmp_path / "media" / "movies" / "Solo (2018)" / "Solo (2018).mkv")
    assert main(["scan", "Movies", "--wait", "--config", str(path)]) == 0
    out, err = capsys.readouterr()
    assert "Movies: 1 added, 0 updated, 0 unchanged, 0 missing" in out
    assert "\r" not in err
    assert main(["scan", "--wait", "--config", str(path)]) == 0
    out, _ = capsys.readouterr()
    assert "Movies: 0 added, 0 updated, 1 unchanged, 0 missing" in out and "TV: 0 added" in out


def test_cli_scan_without_wait_queues_jobs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Without --wait the scan is only queued in the database, for the agent holding data_dir's lock."""
    path = write_config(tmp_path)
    with DataDirLock(tmp_path / "data"):  # what a running `serve` holds
        assert main(["scan", "--config", str(path)]) == 0
    out = capsys.readouterr().out
    assert "queued scan of Movies: job 1" in out and "queued scan of TV: job 2" in out


def test_cli_unknown_library_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """An unknown library is a one-line error listing the libraries, exit 1."""
    path = write_config(tmp_path)
    assert main(["scan", "Music", "--config", str(path)]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "'Music'" in err and "Movies, TV" in err
