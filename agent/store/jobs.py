"""All SQL of the job queue; every function runs on the writer (or reader) thread with a stdlib connection."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Sequence
from typing import Any, Final

from agent.queue.model import Job, Outcome, Status
from agent.store.owners import bind_owners
from agent.store.pg import JOBS_CHANNEL, is_postgres, notify, serialize

_CLAIM = """
UPDATE job_queue
   SET status = 'running', attempts = attempts + 1, started_at = :now, updated_at = :now,
       worker = :worker, lease_until = :lease, progress = 0, message = NULL, cancel_requested = 0
 WHERE id = (
    SELECT j.id FROM job_queue j INDEXED BY ix_job_claim  -- matches ORDER BY: no sort of the pending set
     WHERE j.status = 'pending' AND j.run_after <= :now
       AND (j.agent IS NULL OR j.agent = :worker)
       AND j.type NOT IN (SELECT value FROM json_each(:saturated))
       AND (j.run_after < :stale OR j.type NOT IN (SELECT value FROM json_each(:elsewhere)))
       AND (j.lock_key IS NULL OR NOT EXISTS (
            SELECT 1 FROM job_queue r WHERE r.status = 'running' AND r.lock_key = j.lock_key))
       AND NOT EXISTS (
            SELECT 1 FROM job_dependencies d JOIN job_queue p ON p.id = d.depends_on
             WHERE d.job_id = j.id AND p.status != 'completed')
     ORDER BY j.priority, coalesce(j.chain, j.id), j.id
     LIMIT 1{skip_locked})
RETURNING *
"""
CLAIM_SQL = _CLAIM.format(skip_locked="")
# PostgreSQL: several agents claim at once; a row another agent is claiming is skipped, not waited for
CLAIM_SQL_PG = _CLAIM.format(skip_locked=" FOR UPDATE SKIP LOCKED")
# an outcome is written only by the agent that still holds the job (one whose lease ran out lost it)
COMPLETE_SQL = ("UPDATE job_queue SET status = 'completed', result = NULL, error = NULL, progress = 1,"
                " completed_at = ?, updated_at = ?, worker = NULL, lease_until = NULL"
                " WHERE id = ? AND status = 'running' AND worker = ?")
Cascade = tuple[int, str, str, str]  # (job id, type, new status, message): jobs changed as a side effect


_KEYS_PER_QUERY: Final = 500  # values per `IN (...)` lookup (SQLite allows 32,766 variables)
_INSERT_JOB: Final = (
    "INSERT INTO job_queue (id, type, priority, payload, max_retries, run_after, dedupe_key, lock_key, chain,"
    " origin, agent, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


def insert(conn: sqlite3.Connection, spec: dict[str, Any], now: float) -> tuple[Job, bool]:
    """Insert a job, or return the pending one with the same dedupe_key; (job, created)."""
    return insert_many(conn, [spec], now)[0]


def insert_many(conn: sqlite3.Connection, specs: Sequence[dict[str, Any]], now: float
                ) -> list[tuple[Job, bool]]:
    """Insert several jobs in one transaction (all or none); [(job, created)] in the order given."""
    placed = insert_batch(conn, specs, now)
    known: dict[int, list[int]] = {}  # a new job's dependencies are the ones it asked for
    for spec, (job_id, created) in zip(specs, placed, strict=True):
        if created:
            after = spec.get("after")
            known[job_id] = list(dict.fromkeys([*(spec.get("depends_on") or ()),
                                                *(() if after is None else (placed[after][0],))]))
    jobs = _jobs_by_id(conn, list(dict.fromkeys(job_id for job_id, _ in placed)), known)
    return [(jobs[job_id], created) for job_id, created in placed]


def insert_batch(conn: sqlite3.Connection, specs: Sequence[dict[str, Any]], now: float
                 ) -> list[tuple[int, bool]]:
    """Insert a batch of job specs in a few statements; (job id, created) per spec, in order.

    A spec is JobSpec.row()'s dict, optionally with `after`: the index of an earlier spec in the
    batch whose job this one depends on (the scan's episode jobs wait for their show's). The outcome
    is that of inserting the specs one by one: a spec whose dedupe_key has a pending job joins it
    (making it more urgent when its priority is, and adding no dependencies), the same key twice in
    a batch is one job at the more urgent priority, `depends_on` must name jobs that exist (else
    ValueError, and the caller's transaction rolls back), and a job depending on a failed or
    cancelled one fails at once. Ids continue from the largest, as SQLite would give them.

    On a shared store (PostgreSQL) each new job is bound to the agent that must run it (bind_owners),
    and agents waiting for work are told (NOTIFY) when the transaction commits.
    """
    if is_postgres(conn):
        specs = bind_owners(conn, specs)
    keys = list(dict.fromkeys(s["dedupe_key"] for s in specs if s.get("dedupe_key")))
    pending = _pending_by_key(conn, keys)
    top = conn.execute("SELECT COALESCE(MAX(id), 0) FROM job_queue").fetchone()[0]
    new_rows: list[list[Any]] = []  # [id, type, priority, ...]: ids continue from the largest
    plan: list[tuple[list[int] | None, int]] = []  # (pending [id, priority], or None and new row index)
    fresh: dict[str, int] = {}
    bumps: list[tuple[int, float, int]] = []
    for spec in specs:
        key = spec.get("dedupe_key")
        hit = pending.get(key) if key else None
        if hit is not None:
            if spec["priority"] < hit[1]:  # a user asking again makes it more urgent
                hit[1] = spec["priority"]
                bumps.append((spec["priority"], now, hit[0]))
            fold_into(conn, hit[0], spec.get("payload") or {})
            plan.append((hit, 0))
            continue
        if key and key in fresh:
            row = new_rows[fresh[key]]
            row[2] = min(row[2], spec["priority"])
            folded = _folded(json.loads(row[3]), spec.get("payload") or {})
            if folded is not None:
                row[3] = json.dumps(folded)
            plan.append((None, fresh[key]))
            continue
        if key:
            fresh[key] = len(new_rows)
        plan.append((None, len(new_rows)))
        new_rows.append(
            [top + 1 + len(new_rows), spec["type"], spec["priority"], payload_json(spec.get("payload") or {}),
             spec["max_retries"], now + float(spec.get("delay") or 0.0), key, spec.get("lock_key"),
             spec.get("chain"), spec.get("origin"), spec.get("agent") if is_postgres(conn) else None, now, now]
        )
    placed: list[tuple[int, bool]] = []
    deps: list[tuple[int, int]] = []
    named: list[int] = []  # new jobs with depends_on: checked against the table, in order
    seen_new: set[int] = set()
    for spec, (hit, index) in zip(specs, plan, strict=True):
        if hit is not None:
            placed.append((hit[0], False))
            continue
        job_id = top + 1 + index
        placed.append((job_id, index not in seen_new))
        if index in seen_new:  # the same key again in this batch: it joined that job
            continue
        seen_new.add(index)
        own = list(dict.fromkeys(spec.get("depends_on") or ()))
        if own:
            missing = sorted(d for d in own if d >= job_id)  # a job can only wait on one placed before it
            named.append(job_id)
            deps += [(job_id, d) for d in own if d < job_id]
            if missing:
                raise ValueError(f"depends_on names jobs that do not exist: {missing}")
        after = spec.get("after")
        if after is not None:
            deps.append((job_id, placed[after][0]))
    if new_rows:
        conn.executemany(_INSERT_JOB, new_rows)
    if bumps:
        conn.executemany("UPDATE job_queue SET priority = ?, updated_at = ? WHERE id = ?", bumps)
    if named:
        waiting = set(named)
        _check_named(conn, [d for j, d in deps if j in waiting])
    if deps:
        conn.executemany("INSERT OR IGNORE INTO job_dependencies (job_id, depends_on) VALUES (?, ?)", deps)
    for job_id in named:
        _fail_if_dependency_dead(conn, job_id, now)
    if new_rows or bumps:
        notify(conn, JOBS_CHANNEL)
    return placed


def _folded(into: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any] | None:
    """The payload of a job another one with the same dedupe_key folds into, when that changes it, else None.

    A player notify carries `art`, the images players must drop from their caches; the job it joins gets
    them all, and a "Created" (a new file: scan it) outranks a "Modified" (refresh it)."""
    art = extra.get("art")
    out = dict(into)
    if isinstance(art, list) and art:
        out["art"] = list(dict.fromkeys([*(into.get("art") or []), *art]))
    if extra.get("update") == "Created" and into.get("update") == "Modified":
        out["update"] = "Created"
    return out if out != into else None


def fold_into(conn: sqlite3.Connection, job_id: int, extra: dict[str, Any]) -> None:
    """Fold the payload of a job that joins (or is superseded by) pending job `job_id` into that job's."""
    if not extra.get("art") and extra.get("update") != "Created":
        return
    row = conn.execute("SELECT payload FROM job_queue WHERE id = ?", (job_id,)).fetchone()
    folded = _folded(json.loads(row[0] or "{}"), extra) if row is not None else None
    if folded is not None:
        conn.execute("UPDATE job_queue SET payload = ? WHERE id = ?", (json.dumps(folded), job_id))


def _check_named(conn: sqlite3.Connection, ids: list[int]) -> None:
    """Raise ValueError naming the ids of `depends_on` that are no job."""
    wanted = sorted(set(ids))
    found: set[int] = set()
    for start in range(0, len(wanted), _KEYS_PER_QUERY):
        chunk = wanted[start : start + _KEYS_PER_QUERY]
        found.update(r[0] for r in conn.execute(
            f"SELECT id FROM job_queue WHERE id IN ({','.join('?' * len(chunk))})", chunk))
    missing = [i for i in wanted if i not in found]
    if missing:
        raise ValueError(f"depends_on names jobs that do not exist: {missing}")


def _pending_by_key(conn: sqlite3.Connection, keys: list[str]) -> dict[str, list[int]]:
    """Pending jobs holding any of these dedupe keys: {key: [id, priority]}."""
    found: dict[str, list[int]] = {}
    for start in range(0, len(keys), _KEYS_PER_QUERY):
        chunk = keys[start : start + _KEYS_PER_QUERY]
        marks = ",".join("?" * len(chunk))
        for job_id, key, priority in conn.execute(
            "SELECT id, dedupe_key, priority FROM job_queue INDEXED BY ux_job_dedupe"  # else it scans ix_job_status
            f" WHERE status = 'pending' AND dedupe_key IS NOT NULL AND dedupe_key IN ({marks})",
            chunk,
        ):
            found[key] = [job_id, priority]
    return found


def _jobs_by_id(conn: sqlite3.Connection, ids: list[int], known: dict[int, list[int]]) -> dict[int, Job]:
    """Jobs by id, with their dependencies: `known` ones as given, the others read."""
    rows: dict[int, sqlite3.Row] = {}
    deps: dict[int, list[int]] = {job_id: list(d) for job_id, d in known.items()}
    for start in range(0, len(ids), _KEYS_PER_QUERY):
        chunk = ids[start : start + _KEYS_PER_QUERY]
        marks = ",".join("?" * len(chunk))
        rows.update((r["id"], r) for r in conn.execute(f"SELECT * FROM job_queue WHERE id IN ({marks})", chunk))
        unknown = [job_id for job_id in chunk if job_id not in known]
        if unknown:
            for job_id, dep in conn.execute(
                    "SELECT job_id, depends_on FROM job_dependencies"
                    f" WHERE job_id IN ({','.join('?' * len(unknown))})", unknown):
                deps.setdefault(job_id, []).append(dep)
    return {job_id: Job.from_row(row, deps.get(job_id, [])) for job_id, row in rows.items()}


_PLAIN_PAYLOAD: Final = frozenset({"entity", "id", "priority", "update"})
_PLAIN_WORDS: Final = frozenset({"movie", "series", "episode", "Created", "Modified"})


def payload_json(payload: dict[str, Any]) -> str:
    """json.dumps(payload); the enrich payload every scanned item gets is formatted directly (same text)."""
    if (
        payload.keys() == _PLAIN_PAYLOAD
        and payload["entity"] in _PLAIN_WORDS
        and payload["update"] in _PLAIN_WORDS
        and type(payload["id"]) is int
        and type(payload["priority"]) is int
    ):
        return (
            f'{{"entity": "{payload["entity"]}", "id": {payload["id"]}, "priority": {payload["priority"]},'
            f' "update": "{payload["update"]}"}}'
        )
    return json.dumps(payload)


def insert_each(conn: sqlite3.Connection, specs: Sequence[dict[str, Any]], now: float
                ) -> list[tuple[Job, bool] | str]:
    """Insert several jobs in one transaction, each on its own: [(job, created) or the error message]."""
    out: list[tuple[Job, bool] | str] = []
    for spec in specs:
        conn.execute("SAVEPOINT enqueue_one")
        try:
            out.append(insert(conn, spec, now))
        except (ValueError, TypeError) as exc:
            conn.execute("ROLLBACK TO enqueue_one")
            out.append(str(exc))
        conn.execute("RELEASE enqueue_one")
    return out


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
                    now: float, lease: float = 0.0, elsewhere: Sequence[str] = ()
                    ) -> tuple[list[Job], list[Cascade]]:
    """Write finished outcomes, then claim up to `want` jobs: one thread hop per dispatch round.

    `worker` is the agent's name: it claims jobs bound to it or to no agent, and holds each for `lease`
    seconds (renewed while it runs). Types in `elsewhere` (player jobs, on an agent without players) are
    left to other agents for two leases; past that no agent with players took them, and this one does, so
    nothing waits on them for ever. Returns (claimed jobs, other jobs changed as a consequence as
    [(id, type, status, message)]).
    """
    cascaded: list[Cascade] = []
    plain = [(now, now, o.job_id, worker) for o in outcomes if o.status == Status.COMPLETED and o.result is None]
    if any(o.status != Status.COMPLETED for o in outcomes):
        # retries and failures cascade (superseded twins, dependents): one writer at a time, taken before any
        # row lock so it cannot deadlock; a completion touches only its own row and needs no lock
        serialize(conn)
    if plain:
        conn.executemany(COMPLETE_SQL, plain)
    for out in outcomes:
        if out.status != Status.COMPLETED or out.result is not None:
            cascaded += record(conn, out, now, worker)
    claimed: list[Job] = []
    counts = dict(running_by_type)
    blocked = set(saturated)
    params = {"now": now, "worker": worker, "lease": now + lease, "saturated": json.dumps(sorted(blocked)),
              "elsewhere": json.dumps(sorted(elsewhere)), "stale": now - 2 * lease}
    shared = is_postgres(conn)
    if shared and want > 0:
        claim_plan(conn)
    for _ in range(want):
        if shared:  # a claim that loses a lock key to another agent's claim is undone alone
            conn.execute("SAVEPOINT claim")
        try:
            row = conn.execute(CLAIM_SQL_PG if shared else CLAIM_SQL, params).fetchone()
        except sqlite3.IntegrityError:
            if not shared:
                raise
            conn.execute("ROLLBACK TO SAVEPOINT claim")
            break  # another agent took a job with the same lock key just now: the next round looks again
        if shared:
            conn.execute("RELEASE SAVEPOINT claim")
        if row is None:
            break
        job = Job.from_row(row)
        claimed.append(job)
        counts[job.type] = counts.get(job.type, 0) + 1
        if job.type in limits and counts[job.type] >= limits[job.type] and job.type not in blocked:
            blocked.add(job.type)
            params["saturated"] = json.dumps(sorted(blocked))
    return claimed, cascaded


def claim_plan(conn: sqlite3.Connection) -> None:
    """PostgreSQL: claims in this transaction walk ix_job_claim in order and stop at the first runnable row.

    With statistics older than a burst the planner expects one pending row and sorts every pending job on
    each claim instead: 200-400 ms a round of 8 claims at 20,000 pending, against 4-14 ms this way.
    """
    conn.execute("SET LOCAL enable_sort = off; SET LOCAL enable_bitmapscan = off")


def record(conn: sqlite3.Connection, out: Outcome, now: float, worker: str) -> list[Cascade]:
    """Write one outcome; a permanent failure or cancel fails the pending dependents (recursively).

    Only while `worker` still holds the job: an agent whose lease ran out lost it to another run.
    """
    result = json.dumps(out.result) if out.result is not None else None
    if out.status == Status.PENDING:
        return to_pending(conn, out.job_id, now, error=out.error, run_after=out.run_after, worker=worker)
    cur = conn.execute(
        "UPDATE job_queue SET status = ?, result = ?, error = ?, progress = CASE WHEN ? = 'completed' THEN 1"
        " ELSE progress END, completed_at = ?, updated_at = ?, worker = NULL, lease_until = NULL"
        " WHERE id = ? AND status = 'running' AND worker = ?",
        (out.status.value, result, out.error, out.status.value, now, now, out.job_id, worker))
    if cur.rowcount and out.status in (Status.FAILED, Status.CANCELLED):
        return fail_dependents(conn, out.job_id, now)
    return []


def to_pending(conn: sqlite3.Connection, job_id: int, now: float, error: str | None = None,
               run_after: float | None = None, message: str | None = None, refund: bool = False,
               worker: str | None = None) -> list[Cascade]:
    """Put a running job back to pending, unless an identical job (same dedupe_key) is already pending.

    The partial unique index allows one pending job per dedupe_key. When a newer one was enqueued
    while this one ran, that newer job does the work: this one is cancelled as superseded, and
    whatever waited on it waits on the newer job instead. With `worker`, only while that agent holds it.
    """
    row = conn.execute("SELECT id, type, priority, dedupe_key, worker FROM job_queue"
                       " WHERE id = ? AND status = 'running'", (job_id,)).fetchone()
    if row is None or (worker is not None and row["worker"] != worker):
        return []
    twin = None
    if row["dedupe_key"] is not None:
        twin = conn.execute("SELECT id, priority FROM job_queue WHERE dedupe_key = ? AND status = 'pending'"
                            " AND id != ?", (row["dedupe_key"], job_id)).fetchone()
    if twin is None:
        conn.execute(
            "UPDATE job_queue SET status = 'pending', worker = NULL, lease_until = NULL, error = COALESCE(?, error),"
            " message = COALESCE(?, message), run_after = ?, updated_at = ?,"
            " attempts = CASE WHEN ? AND attempts > 0 THEN attempts - 1 ELSE attempts END WHERE id = ?",
            (error, message, now if run_after is None else run_after, now, refund, job_id))
        notify(conn, JOBS_CHANNEL)
        return []
    payload = conn.execute("SELECT payload FROM job_queue WHERE id = ?", (job_id,)).fetchone()[0]
    fold_into(conn, twin["id"], json.loads(payload or "{}"))
    msg = f"superseded by pending job {twin['id']} with the same dedupe_key"
    conn.execute("UPDATE job_queue SET status = 'cancelled', worker = NULL, lease_until = NULL, error = ?,"
                 " completed_at = ?, updated_at = ? WHERE id = ?", (msg, now, now, job_id))
    conn.execute("UPDATE job_dependencies SET depends_on = ? WHERE depends_on = ? AND job_id != ?"
                 " AND NOT EXISTS (SELECT 1 FROM job_dependencies d"
                 " WHERE d.job_id = job_dependencies.job_id AND d.depends_on = ?)",
                 (twin["id"], job_id, twin["id"], twin["id"]))
    conn.execute("DELETE FROM job_dependencies WHERE depends_on = ?", (job_id,))
    if row["priority"] < twin["priority"]:
        conn.execute("UPDATE job_queue SET priority = ?, updated_at = ? WHERE id = ?",
                     (row["priority"], now, twin["id"]))
    return [(job_id, row["type"], Status.CANCELLED.value, msg)]


def fail_dependents(conn: sqlite3.Connection, job_id: int, now: float) -> list[Cascade]:
    """Fail every pending job that (transitively) depends on job_id, naming the dependency."""
    failed: list[Cascade] = []
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
            failed.append((r["id"], r["type"], Status.FAILED.value, msg))
            frontier.append(r["id"])
    return failed


def set_progress(conn: sqlite3.Connection, job_id: int, progress: float, message: str | None,
                 now: float) -> bool:
    """Save progress; returns whether cancellation was requested."""
    row = conn.execute(
        "UPDATE job_queue SET progress = ?, message = ?, updated_at = ? WHERE id = ?"
        " RETURNING cancel_requested",
        (progress, message, now, job_id)).fetchone()
    return bool(row and row[0])


def cancel(conn: sqlite3.Connection, job_id: int, now: float, allow_running: bool
           ) -> tuple[Job | None, str, list[Cascade]]:
    """Cancel a pending job (or request a running one to stop); (job, what happened, dependents failed)."""
    row = conn.execute("SELECT * FROM job_queue WHERE id = ?", (job_id,)).fetchone()
    if row is None:
        return None, "missing", []
    status = Status(row["status"])
    if status == Status.PENDING:
        conn.execute("UPDATE job_queue SET status = 'cancelled', completed_at = ?, updated_at = ?, error ="
                     " 'cancelled by request' WHERE id = ?", (now, now, job_id))
        cascaded = fail_dependents(conn, job_id, now)
        return get(conn, job_id), "cancelled", cascaded
    if status == Status.RUNNING and allow_running:
        conn.execute("UPDATE job_queue SET cancel_requested = 1, updated_at = ? WHERE id = ?", (now, job_id))
        return get(conn, job_id), "requested", []
    return Job.from_row(row, _deps(conn, job_id)), status.value, []


def retry(conn: sqlite3.Connection, job_id: int, now: float) -> tuple[Job | None, str]:
    """Put a failed or cancelled job back to pending with a fresh attempt budget."""
    row = conn.execute("SELECT * FROM job_queue WHERE id = ?", (job_id,)).fetchone()
    if row is None:
        return None, "missing"
    if row["status"] not in ("failed", "cancelled"):
        return Job.from_row(row), row["status"]
    if row["dedupe_key"] is not None:
        twin = conn.execute("SELECT * FROM job_queue WHERE dedupe_key = ? AND status = 'pending'",
                            (row["dedupe_key"],)).fetchone()
        if twin is not None:
            return Job.from_row(twin, _deps(conn, twin["id"])), "duplicate"
    row = conn.execute(
        "UPDATE job_queue SET status = 'pending', attempts = 0, run_after = ?, completed_at = NULL,"
        " cancel_requested = 0, updated_at = ? WHERE id = ? RETURNING *", (now, now, job_id)).fetchone()
    return Job.from_row(row, _deps(conn, job_id)), "retried"


def recover(conn: sqlite3.Connection, now: float, worker: str | None = None) -> tuple[int, list[Cascade]]:
    """Jobs left running by a crash go back to pending (their interrupted attempt still counts).

    With `worker` (a shared store) only that agent's: the others' are theirs, or their leases'.
    Returns (how many were found running, jobs changed as a consequence).
    """
    if worker is None:
        ids = [r[0] for r in conn.execute("SELECT id FROM job_queue WHERE status = 'running' ORDER BY id")]
    else:
        ids = [r[0] for r in conn.execute("SELECT id FROM job_queue WHERE status = 'running' AND worker = ?"
                                          " ORDER BY id", (worker,))]
    cascaded: list[Cascade] = []
    for job_id in ids:
        cascaded += to_pending(conn, job_id, now, message="interrupted by a restart")
    return len(ids), cascaded


def requeue(conn: sqlite3.Connection, job_ids: Iterable[int], now: float, worker: str | None = None
            ) -> tuple[int, list[Cascade]]:
    """Graceful stop: claimed jobs that did not finish go back to pending without using an attempt."""
    ids = list(job_ids)
    cascaded: list[Cascade] = []
    for job_id in ids:
        cascaded += to_pending(conn, job_id, now, message="interrupted by shutdown",
                               refund=True, worker=worker)
    return len(ids), cascaded


def renew(conn: sqlite3.Connection, worker: str, held: Sequence[int], lease_until: float) -> int:
    """Extend the leases of the jobs this agent holds in memory (`held`); how many were renewed.

    A row claimed under this name that the agent does not hold (a claim whose reply was lost with the
    connection) is not renewed: its lease runs out and the job is run again.
    """
    renewed = 0
    ids = sorted(set(held))
    for start in range(0, len(ids), _KEYS_PER_QUERY):
        chunk = ids[start : start + _KEYS_PER_QUERY]
        renewed += conn.execute(
            f"UPDATE job_queue SET lease_until = ? WHERE status = 'running' AND worker = ?"
            f" AND id IN ({','.join('?' * len(chunk))})", [lease_until, worker, *chunk]).rowcount
    return renewed


def expire(conn: sqlite3.Connection, held: Sequence[int], now: float) -> tuple[list[tuple[int, str]], list[Cascade]]:
    """Jobs whose agent stopped renewing their lease go back to pending, to run again (exactly once).

    `held`: the jobs the calling agent holds (never its own to take back).

    The lost attempt counts, as after a crash. Returns ([(job id, the agent that lost it)], cascades).
    """
    mine = sorted(set(held))  # a few dozen at most (workers x prefetch)
    rows = conn.execute("SELECT id, worker FROM job_queue WHERE status = 'running' AND lease_until < ?"
                        + (f" AND id NOT IN ({','.join('?' * len(mine))})" if mine else "") + " ORDER BY id",
                        [now, *mine]).fetchall()
    cascaded: list[Cascade] = []
    for job_id, lost_by in rows:
        cascaded += to_pending(conn, job_id, now, message=f"run again: agent {lost_by} stopped answering")
    return [(r[0], r[1]) for r in rows], cascaded


def prune(conn: sqlite3.Connection, before: float) -> int:
    """Delete completed jobs finished before `before`; failed ones stay as dead letters."""
    cur = conn.execute("DELETE FROM job_queue WHERE status = 'completed' AND completed_at < ?", (before,))
    return cur.rowcount


def stats(conn: sqlite3.Connection) -> dict[str, int]:
    """Counts of pending, running and failed jobs."""
    out = {"pending": 0, "running": 0, "failed": 0}
    for status, n in conn.execute(
            "SELECT status, COUNT(*) FROM job_queue WHERE status IN ('pending', 'running', 'failed')"
            " GROUP BY status"):
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
                "SELECT job_id, depends_on FROM job_dependencies"
                f" WHERE job_id IN ({','.join('?' * len(ids))})", ids):
            deps.setdefault(jid, []).append(dep)
        for j in jobs:
            j.depends_on = deps.get(j.id, [])
    return jobs, total


def next_run_after(conn: sqlite3.Connection, now: float) -> float | None:
    """When the next delayed pending job becomes due."""
    row = conn.execute("SELECT MIN(run_after) FROM job_queue WHERE status = 'pending' AND run_after > ?",
                       (now,)).fetchone()
    return row[0] if row else None


def set_payload(conn: sqlite3.Connection, job_id: int, payload: dict[str, Any]) -> None:
    """Replace a job's payload (a handler remembering its progress, so a retry skips what is done)."""
    conn.execute("UPDATE job_queue SET payload = ? WHERE id = ?", (json.dumps(payload), job_id))
