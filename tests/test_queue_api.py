"""The queue over REST, /ws and the `jobs` CLI, through the real app on loopback."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from conftest import HEADERS, make_config, write_config

from agent.cli import main
from agent.config import Config
from agent.errors import PermanentFailure, RetryLater
from agent.queue import JobContext
from agent.queue.model import Status
from agent.store import SqliteDatabase
from agent.store import jobs as sql

MakeClient = Callable[..., Awaitable[Any]]


async def ok(ctx: JobContext) -> str:
    """A job that succeeds."""
    return "ok"


async def broken(ctx: JobContext) -> None:
    """A job that fails for good."""
    raise PermanentFailure("broken on purpose")


async def claim_one(client: Any) -> int:
    """Mark the next pending job running, as a worker would (no handler runs)."""
    claimed, _ = await client.agent.db.write(sql.flush_and_claim, [], 1, "test", [], {}, {},
                                             client.agent.clock.now())
    return claimed[0].id


async def test_list_filters_paginates_newest_first(make_client: MakeClient, config: Config) -> None:
    """GET /api/jobs filters by status and type and pages newest first with a total."""
    client = await make_client(config)
    q = client.agent.queue
    q.register("t.ok", ok)
    q.register("t.bad", broken)
    ids = [(await q.enqueue("t.ok", {"n": i})).id for i in range(5)]
    bad = await q.enqueue("t.bad")
    await q.run_until_idle()

    resp = await client.get("/api/jobs", headers=HEADERS, params={"limit": "2"})
    body = await resp.json()
    assert resp.status == 200 and body["total"] == 6
    assert [j["id"] for j in body["items"]] == [bad.id, ids[4]]
    resp = await client.get("/api/jobs", headers=HEADERS, params={"limit": "2", "offset": "2"})
    page2 = await resp.json()
    assert [j["id"] for j in page2["items"]] == [ids[3], ids[2]]

    failed = await (await client.get("/api/jobs", headers=HEADERS, params={"status": "failed"})).json()
    assert [j["id"] for j in failed["items"]] == [bad.id] and failed["total"] == 1
    assert failed["items"][0]["error"] == "broken on purpose"
    typed = await (await client.get("/api/jobs", headers=HEADERS, params={"type": "t.ok"})).json()
    assert typed["total"] == 5

    resp = await client.get("/api/jobs", headers=HEADERS, params={"status": "exploded"})
    assert resp.status == 400 and "unknown status" in (await resp.json())["error"]
    resp = await client.get("/api/jobs", headers=HEADERS, params={"limit": "0"})
    assert resp.status == 400


async def test_get_one_job_and_missing_ids(make_client: MakeClient, config: Config) -> None:
    """GET /api/jobs/{id} returns the DESIGN shape; unknown ids are 404, non-numbers 400."""
    client = await make_client(config)
    job = await client.agent.queue.enqueue("t", {"movie": 1}, dedupe_key="t:1")
    resp = await client.get(f"/api/jobs/{job.id}", headers=HEADERS)
    body = await resp.json()
    assert resp.status == 200
    assert body["status"] == "pending" and body["payload"] == {"movie": 1} and body["dedupe_key"] == "t:1"
    assert body["next_retry_at"] is None and body["created_at"].endswith("Z")
    assert (await client.get("/api/jobs/9999", headers=HEADERS)).status == 404
    assert (await client.get("/api/jobs/abc", headers=HEADERS)).status == 400
    assert (await client.get(f"/api/jobs/{job.id}")).status == 401


async def test_retry_over_rest(make_client: MakeClient, config: Config) -> None:
    """POST /api/jobs/{id}/retry re-queues a dead letter; a completed job is 409."""
    client = await make_client(config)
    q = client.agent.queue
    fixed = False

    async def flaky(ctx: JobContext) -> str:
        """Broken until fixed."""
        if not fixed:
            raise PermanentFailure("not yet")
        return "fixed"

    q.register("t", flaky)
    job = await q.enqueue("t")
    await q.run_until_idle()
    assert (await q.get(job.id)).status == Status.FAILED
    fixed = True
    resp = await client.post(f"/api/jobs/{job.id}/retry", headers=HEADERS)
    body = await resp.json()
    assert resp.status == 200 and body["status"] == "pending" and body["attempts"] == 0
    await q.run_until_idle()
    assert (await q.get(job.id)).result == "fixed"
    resp = await client.post(f"/api/jobs/{job.id}/retry", headers=HEADERS)
    assert resp.status == 409 and (await resp.json())["detail"] == {"status": "completed"}
    assert (await client.post("/api/jobs/4242/retry", headers=HEADERS)).status == 404


async def test_delete_cancels_pending_and_is_409_for_running_or_done(make_client: MakeClient,
                                                                    config: Config) -> None:
    """DELETE cancels a pending job; running and completed jobs are 409; POST cancel asks a running one."""
    client = await make_client(config)
    q = client.agent.queue
    q.register("t", ok)
    done = await q.enqueue("t")
    await q.run_until_idle()
    running = await q.enqueue("t")
    assert await claim_one(client) == running.id
    pending = await q.enqueue("t")

    resp = await client.delete(f"/api/jobs/{pending.id}", headers=HEADERS)
    assert resp.status == 200 and (await resp.json())["status"] == "cancelled"
    for job_id, status in ((running.id, "running"), (done.id, "completed")):
        resp = await client.delete(f"/api/jobs/{job_id}", headers=HEADERS)
        body = await resp.json()
        assert resp.status == 409 and body["detail"] == {"status": status}
    assert (await q.get(running.id)).status == Status.RUNNING

    resp = await client.post(f"/api/jobs/{running.id}/cancel", headers=HEADERS)
    assert resp.status == 202
    row = await client.agent.db.fetchone("SELECT cancel_requested FROM job_queue WHERE id = ?", (running.id,))
    assert row["cancel_requested"] == 1
    resp = await client.post(f"/api/jobs/{done.id}/cancel", headers=HEADERS)
    assert resp.status == 409


async def test_ws_events_for_a_job_that_fails_once_then_succeeds(make_client: MakeClient,
                                                                config: Config) -> None:
    """A real /ws client sees queued, started, failed(will_retry), started, completed, and queue:stats."""
    client = await make_client(config, start_workers=True)
    agent = client.agent
    calls = 0

    async def flaky(ctx: JobContext) -> dict[str, int]:
        """Fail the first time (Retry-After 0), then succeed."""
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RetryLater("HTTP 503", delay=0)
        return {"calls": calls}

    agent.queue.register("test.flaky", flaky)
    ws = await client.ws_connect("/ws", headers=HEADERS)
    first = json.loads((await ws.receive(timeout=5)).data)
    assert first["type"] == "connection:established"
    job = await agent.queue.enqueue("test.flaky")
    seen: list[dict[str, Any]] = []

    async def collect() -> None:
        """Read frames until the job completed and a queue:stats frame followed."""
        completed = False
        while True:
            frame = json.loads((await ws.receive()).data)
            seen.append(frame)
            completed = completed or (frame["type"] == "job:completed" and frame["data"]["job_id"] == job.id)
            if completed and frame["type"] == "queue:stats":
                return

    await asyncio.wait_for(collect(), 10)
    await ws.close()
    mine = [(f["type"], f["data"].get("will_retry")) for f in seen
            if f["type"].startswith("job:") and f["data"].get("job_id") == job.id]
    assert mine == [("job:queued", None), ("job:started", None), ("job:failed", True), ("job:started", None),
                    ("job:completed", None)]
    failed = next(f for f in seen if f["type"] == "job:failed")
    assert failed["data"]["error"] == "HTTP 503" and failed["data"]["attempts"] == 1
    assert seen[-1]["data"] == {"pending": 0, "running": 0, "failed": 0}
    assert all(f["timestamp"].endswith("Z") for f in seen)


def seed_jobs(tmp_path: Path) -> Path:
    """A config whose database holds one completed and one failed job; returns the config path."""
    path = write_config(tmp_path)
    cfg = make_config(tmp_path)

    async def run() -> None:
        """Insert and finish two jobs."""
        db = SqliteDatabase(cfg.data_dir / "metarr.sqlite")
        await db.open()
        from agent.queue import Queue

        q = Queue(db)
        q.register("scan", ok)
        q.register("enrich", broken)
        await q.enqueue("scan", {"library": "Movies"})
        await q.enqueue("enrich", {"movie": 7})
        await q.run_until_idle()
        await db.close()

    asyncio.run(run())
    return path


def test_cli_jobs_table_and_filters(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`metarr-agent jobs` prints a table; --status filters; --json prints the API shape."""
    path = seed_jobs(tmp_path)
    assert main(["jobs", "--config", str(path)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split()[:4] == ["ID", "TYPE", "PRI", "STATUS"]
    assert out[1].split()[:4] == ["2", "enrich", "5", "failed"] and "broken on purpose" in out[1]
    assert out[2].split()[:4] == ["1", "scan", "5", "completed"]

    assert main(["jobs", "--config", str(path), "--status", "failed", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [(j["id"], j["status"]) for j in data] == [(2, "failed")]

    assert main(["jobs", "--config", str(path), "--status", "running"]) == 0
    assert "(no jobs)" in capsys.readouterr().out

    assert main(["jobs", "--config", str(path), "--status", "bogus"]) == 1
    assert "unknown status 'bogus'" in capsys.readouterr().err


def test_cli_jobs_without_a_database_says_so(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Listing before the agent ever ran is a clear error, and creates nothing."""
    path = write_config(tmp_path)
    assert main(["jobs", "--config", str(path)]) == 1
    assert "no database at" in capsys.readouterr().err
    assert not (tmp_path / "data" / "metarr.sqlite").exists()
