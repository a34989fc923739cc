"""All SQL of the job queue; every function runs on the writer (or reader) thread with a sqlite3 connection."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Sequence
from typing import Any

from agent.jobs.model import Job, Outcome, Status

CLAIM_SQL = """
UPDATE job_queue
   SET status = 'running', attempts = attempts + 1, started_at = :now, updated_at = :now,
       worker = :worker, progress = 0, message = NULL, cancel_requested = 0
 WHERE id = (
    SELECT j.id FROM job_queue j INDEXED BY ix_job_claim  -- matches ORDER BY: no sort of the pending set
     WHERE j.status = 'pending' AND j.run_after <= :now
       AND j.type NOT IN (SELECT value FROM json_each(:saturated))
       AND (j.lock_key IS NULL OR NOT EXISTS (
            SELECT 1 FROM job_queue r WHERE r.status = 'running' AND r.lock_key = j.lock_key))
       AND NOT EXISTS (
            SELECT 1 FROM job_dependencies d JOIN job_queue p ON p.id = d.depends_on
             WHERE d.job_id = j.id AND p.status != 'completed')
     ORDER BY j.priority, j.id
     LIMIT 1)
RETURNING *
"""


def insert(conn: sqlite3.Connection, spec: dict[str, Any], now: float) -> tuple[Job, bool]:
    """Insert a job, or return the pending one with the same dedupe_key; (job, created)."""
    if spec.get("dedupe_key"):
        row = conn.execute(
            "SELECT * FROM job_queue WHERE dedupe_key = ? AND status = 'pending'", (spec["dedupe_key"],)
        ).fetchone()
        if row is not None:
            if spec["priority"] < row["priority"]:  # a user asking again makes it more urgent
                conn.execute("UPDATE job_queue SET priority = ?, updated_at = ? WHERE id = ?",
                             (spec["priority"], now, row["id"]))
                row = conn.execute("SELECT * FROM job_queue WHERE id = ?", (row["id"],)).fetchone()
            return Job.from_row(row, _deps(conn, row["id"])), False
    deps = list(dict.fromkeys(spec.get("depends_on") or ()))
    if deps:
        found = conn.execute(
            f"SELECT id FROM job_queue WHERE id IN ({','.join('?' * len(deps))})", deps  # noqa: S608
        ).fetchall()
        missing = set(deps) - {r["id"] for r in found}
        if missing:
            raise ValueError(f"depends_on names jobs that do not exist: {sorted(missing)}")
    cur = conn.execute(
        "INSERT INTO job_queue (type, priority, payload, max_retries, run_after, dedupe_key, lock_key,"
        " created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING *",
        (spec["type"], spec["priority"], json.dumps(spec.get("payload") or {}), spec["max_retries"],
         now + float(spec.get("delay") or 0.0), spec.get("dedupe_key"), spec.get("lock_key"), now, now),
    )
    row = cur.fetchone()
    if deps:
        conn.executemany("INSERT INTO job_dependencies (job_id, depends_on) VALUES (?, ?)",
                         [(row["id"], d) for d in deps])
        _fail_if_dependency_dead(conn, row["id"], now)
        row = conn.execute("SELECT * FROM job_queue WHERE id = ?", (row["id"],)).fetchone()
    return Job.from_row(row, deps), True


def _fail_if_dependency_dead(conn: sqlite3.Connection, job_id: int, now: float) -> None:
    """A job that depends on an already failed or cancelled job fails at once."""
    dead = conn.execute(
        "SELECT p.id, p.type, p.status FROM job_dependencies d JOIN job_queue p ON p.id = d.depends_on"
        " WHERE d.job_id = ? AND p.status IN ('failed', 'cancelled') LIMIT 1", (job_id,)
    ).fetchone()
    if dead:
        msg = f"dependency job {dead['id']} ({dead['type']}) {dead['status']}"
        conn.execute("UPDATE job_queue SET status = 'failed', error = ?, completed_at = ?, updated_at = ?"
                     " WHERE id = ?", (msg, now, now, job_id))


def _deps(conn: sqlite3.Connection, job_id: int) -> list[int]:
    """Ids this job depends on."""
    return [r[0] for r in conn.execute("SELECT depends_on FROM job_dependencies WHERE job_id = ?", (job_id,))]


def flush_and_claim(conn: sqlite3.Connection, outcomes: Sequence[Outcome], want: int, worker: str,
                    saturated: Sequence[str], running_by_type: dict[str, int], limits: dict[str, int],
                    now: float) -> tuple[list[Job], list[tuple[int, str, str]]]:
    """Write finished outcomes, then claim up to `want` jobs: one thread hop per dispatch round.

    Returns (claimed jobs, dependents failed as [(id, type, error)]).
    """
    cascaded: list[tuple[int, str, str]] = []
    for out in outcomes:
        cascaded += record(conn, out, now)
    claimed: list[Job] = []
    counts = dict(running_by_type)
    blocked = set(saturated)
    for _ in range(want):
        row = conn.execute(CLAIM_SQL, {"now": now, "worker": worker, "saturated": json.dumps(sorted(blocked))}).fetchone()
        if row is None:
            break
        job = Job.from_row(row)
        claimed.append(job)
        counts[job.type] = counts.get(job.type, 0) + 1
        if job.type in limits and counts[job.type] >= limits[job.type]:
            blocked.add(job.type)
    return claimed, cascaded


def record(conn: sqlite3.Connection, out: Outcome, now: float) -> list[tuple[int, str, str]]:
    """Write one outcome; a permanent failure or cancel fails the pending dependents (recursively)."""
    result = json.dumps(out.result) if out.result is not None else None
    if out.status == Status.PENDING:
        conn.execute(
            "UPDATE job_queue SET status = 'pending', error = ?, run_after = ?, worker = NULL, updated_at = ?"
            " WHERE id = ? AND status = 'running'", (out.error, out.run_after, now, out.job_id))
        return []
    conn.execute(
        "UPDATE job_queue SET status = ?, result = ?, error = ?, progress = CASE WHEN ? = 'completed' THEN 1"
        " ELSE progress END, completed_at = ?, updated_at = ?, worker = NULL WHERE id = ? AND status = 'running'",
        (out.status.value, result, out.error, out.status.value, now, now, out.job_id))
    if out.status in (Status.FAILED, Status.CANCELLED):
        return fail_dependents(conn, out.job_id, now)
    return []


def fail_dependents(conn: sqlite3.Connection, job_id: int, now: float) -> list[tuple[int, str, str]]:
    """Fail every pending job that (transitively) depends on job_id, naming the dependency."""
    failed: list[tuple[int, str, str]] = []
    frontier = [job_id]
    while frontier:
        parent = frontier.pop()
        prow = conn.execute("SELECT type, status FROM job_queue WHERE id = ?", (parent,)).fetchone()
        rows = conn.execute(
            "SELECT j.id, j.type FROM job_dependencies d JOIN job_queue j ON j.id = d.job_id"
            " WHERE d.depends_on = ? AND j.status = 'pending'", (parent,)).fetchall()
        for r in rows:
            msg = f"dependency job {parent} ({prow['type']}) {prow['status']}"
            conn.execute("UPDATE job_queue SET status = 'failed', error = ?, completed_at = ?, updated_at = ?"
                         " WHERE id = ?", (msg, now, now, r["id"]))
            failed.append((r["id"], r["type"], msg))
            frontier.append(r["id"])
    return failed


def set_progress(conn: sqlite3.Connection, job_id: int, progress: float, message: str | None, now: float) -> bool:
    """Save progress; returns whether cancellation was requested."""
    row = conn.execute(
        "UPDATE job_queue SET progress = ?, message = ?, updated_at = ? WHERE id = ? RETURNING cancel_requested",
        (progress, message, now, job_id)).fetchone()
    return bool(row and row[0])


def cancel(conn: sqlite3.Connection, job_id: int, now: float, allow_running: bool) -> tuple[Job | None, str]:
    """Cancel a pending job (or request a running one to stop); returns (job, what happened)."""
    row = conn.execute("SELECT * FROM job_queue WHERE id = ?", (job_id,)).fetchone()
    if row is None:
        return None, "missing"
    status = Status(row["status"])
    if status == Status.PENDING:
        conn.execute("UPDATE job_queue SET status = 'cancelled', completed_at = ?, updated_at = ?, error ="
                     " 'cancelled by request' WHERE id = ?", (now, now, job_id))
        fail_dependents(conn, job_id, now)
        return Job.from_row(conn.execute("SELECT * FROM job_queue WHERE id = ?", (job_id,)).fetchone()), "cancelled"
    if status == Status.RUNNING and allow_running:
        conn.execute("UPDATE job_queue SET cancel_requested = 1, updated_at = ? WHERE id = ?", (now, job_id))
        return Job.from_row(row), "requested"
    return Job.from_row(row), status.value


def retry(conn: sqlite3.Connection, job_id: int, now: float) -> tuple[Job | None, str]:
    """Put a failed or cancelled job back to pending with a fresh attempt budget."""
    row = conn.execute("SELECT * FROM job_queue WHERE id = ?", (job_id,)).fetchone()
    if row is None:
        return None, "missing"
    if row["status"] not in ("failed", "cancelled"):
        return Job.from_row(row), row["status"]
    row = conn.execute(
        "UPDATE job_queue SET status = 'pending', attempts = 0, run_after = ?, completed_at = NULL,"
        " cancel_requested = 0, updated_at = ? WHERE id = ? RETURNING *", (now, now, job_id)).fetchone()
    return Job.from_row(row, _deps(conn, job_id)), "retried"


def recover(conn: sqlite3.Connection, now: float) -> int:
    """Jobs left running by a crash go back to pending (their interrupted attempt still counts)."""
    cur = conn.execute("UPDATE job_queue SET status = 'pending', worker = NULL, run_after = ?, updated_at = ?,"
                       " message = 'interrupted by a restart' WHERE status = 'running'", (now, now))
    return cur.rowcount


def requeue(conn: sqlite3.Connection, job_ids: Iterable[int], now: float) -> int:
    """Graceful stop: running jobs that did not finish go back to pending without using an attempt."""
    ids = list(job_ids)
    if not ids:
        return 0
    cur = conn.executemany(
        "UPDATE job_queue SET status = 'pending', worker = NULL, attempts = MAX(attempts - 1, 0), run_after = ?,"
        " updated_at = ?, message = 'interrupted by shutdown' WHERE id = ? AND status = 'running'",
        [(now, now, i) for i in ids])
    return cur.rowcount


def prune(conn: sqlite3.Connection, before: float) -> int:
    """Delete completed jobs finished before `before`; failed ones stay as dead letters."""
    return conn.execute("DELETE FROM job_queue WHERE status = 'completed' AND completed_at < ?", (before,)).rowcount


def stats(conn: sqlite3.Connection) -> dict[str, int]:
    """Counts of pending, running and failed jobs."""
    out = {"pending": 0, "running": 0, "failed": 0}
    for status, n in conn.execute(
            "SELECT status, COUNT(*) FROM job_queue WHERE status IN ('pending', 'running', 'failed') GROUP BY status"):
        out[status] = n
    return out


def get(conn: sqlite3.Connection, job_id: int) -> Job | None:
    """One job with its dependencies."""
    row = conn.execute("SELECT * FROM job_queue WHERE id = ?", (job_id,)).fetchone()
    return Job.from_row(row, _deps(conn, job_id)) if row else None


def listing(conn: sqlite3.Connection, status: str | None, type_: str | None, limit: int, offset: int
            ) -> tuple[list[Job], int]:
    """Jobs newest first with filters, and the total matching."""
    where, params = [], []
    if status:
        where.append("status = ?")
        params.append(status)
    if type_:
        where.append("type = ?")
        params.append(type_)
    clause = f"WHERE {' AND '.join(where)}" if where else ""
    total = conn.execute(f"SELECT COUNT(*) FROM job_queue {clause}", params).fetchone()[0]
    rows = conn.execute(f"SELECT * FROM job_queue {clause} ORDER BY id DESC LIMIT ? OFFSET ?",
                        [*params, limit, offset]).fetchall()
    jobs = [Job.from_row(r) for r in rows]
    if jobs:
        ids = [j.id for j in jobs]
        deps: dict[int, list[int]] = {}
        for jid, dep in conn.execute(
                f"SELECT job_id, depends_on FROM job_dependencies WHERE job_id IN ({','.join('?' * len(ids))})", ids):
            deps.setdefault(jid, []).append(dep)
        for j in jobs:
            j.depends_on = deps.get(j.id, [])
    return jobs, total


def next_run_after(conn: sqlite3.Connection, now: float) -> float | None:
    """When the next delayed pending job becomes due."""
    row = conn.execute("SELECT MIN(run_after) FROM job_queue WHERE status = 'pending' AND run_after > ?", (now,)).fetchone()
    return row[0] if row else None
