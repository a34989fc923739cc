"""A process killed with SIGKILL mid-job: the next process recovers the job and completes it exactly once."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from conftest import subprocess_env

ROOT = Path(__file__).resolve().parent.parent

SCRIPT = '''
import asyncio
import os
import sys
from pathlib import Path

from agent.queue import Queue
from agent.store import SqliteDatabase

data, mode = Path(sys.argv[1]), sys.argv[2]
marker, started = data / "effects.txt", data / "started"


async def touch(ctx):
    """Idempotent effect: one line per job id, however often the job runs; blocks on the first run."""
    line = f"job {ctx.job.id} effect"
    if line not in (marker.read_text().splitlines() if marker.exists() else []):
        with marker.open("a") as fh:
            fh.write(line + "\\n")
            fh.flush()
            os.fsync(fh.fileno())
    if mode == "first":
        started.write_text(str(ctx.job.attempts))
        while not (data / "never").exists():
            await asyncio.sleep(0.01)
    return {"attempt": ctx.job.attempts}


async def main():
    db = SqliteDatabase(data / "metarr.sqlite")
    await db.open()
    queue = Queue(db)
    queue.register("touch", touch)
    if mode == "first":
        await queue.enqueue("touch", {"path": "x"})
        await queue.start()
        await asyncio.Event().wait()
    else:
        print("recovered", await queue.recover(), flush=True)
        await queue.run_until_idle()
        await db.close()


asyncio.run(main())
'''


def run_script(script: Path, data: Path, mode: str) -> subprocess.Popen[str]:
    """Start the script in a new process with the package importable."""
    env = subprocess_env()
    env["PYTHONPATH"] = str(ROOT)
    return subprocess.Popen([sys.executable, str(script), str(data), mode], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for_file(path: Path, proc: subprocess.Popen[str], timeout: float = 20.0) -> None:
    """Poll for a file with a deadline; fail early if the process died."""
    deadline = time.monotonic() + timeout
    while not path.exists():
        if proc.poll() is not None:
            err = proc.stderr.read() if proc.stderr else ""
            raise AssertionError(f"process exited with {proc.returncode}: {err}")
        if time.monotonic() > deadline:
            raise AssertionError(f"{path.name} did not appear within {timeout} s")
        time.sleep(0.02)


def rows(db: Path) -> list[sqlite3.Row]:
    """Every job row, read with the stdlib."""
    conn = sqlite3.connect(db)
    conn.row_factory = sqlite3.Row
    try:
        return conn.execute("SELECT * FROM job_queue ORDER BY id").fetchall()
    finally:
        conn.close()


def test_kill_9_mid_job_then_recover_completes_exactly_once(tmp_path: Path) -> None:
    """SIGKILL while the handler runs; a second process re-queues it and completes it once."""
    script = tmp_path / "crashy.py"
    script.write_text(SCRIPT, encoding="utf-8")
    data = tmp_path / "data"
    data.mkdir()

    first = run_script(script, data, "first")
    try:
        wait_for_file(data / "started", first)
    finally:
        os.kill(first.pid, signal.SIGKILL)
        first.wait(10)
        for stream in (first.stdout, first.stderr):
            if stream:
                stream.close()
    assert first.returncode == -signal.SIGKILL
    [crashed] = rows(data / "metarr.sqlite")
    assert (crashed["status"], crashed["attempts"]) == ("running", 1)

    second = run_script(script, data, "recover")
    out, err = second.communicate(timeout=30)
    assert second.returncode == 0, err
    assert "recovered 1" in out

    [done] = rows(data / "metarr.sqlite")
    assert done["status"] == "completed" and done["result"] == '{"attempt": 2}'
    assert done["attempts"] == 2 and done["completed_at"] is not None
    assert (data / "effects.txt").read_text().splitlines() == [f"job {done['id']} effect"]
    assert not [r for r in rows(data / "metarr.sqlite") if r["status"] == "running"]
