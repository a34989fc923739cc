"""The webhook_events table: accepted webhooks, the jobs they queued, and the ones left without a job."""

from __future__ import annotations

import json
import sqlite3


def insert_event(conn: sqlite3.Connection, source: str, event_type: str, payload: str, event: str, now: float,
                 ignored: str | None, agent: str | None = None) -> int:
    """Record one accepted webhook: the decoded body and the parsed event, each as JSON text; returns its id.

    `agent`: the agent that received it, on a shared store (None on SQLite)."""
    cur = conn.execute(
        "INSERT INTO webhook_events (source, event_type, payload, event, received_at, ignored, agent)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)",
        (source, event_type, payload, event, now, ignored, agent),
    )
    return int(cur.lastrowid or 0)


def set_job_ids(conn: sqlite3.Connection, event_id: int, job_ids: list[int]) -> None:
    """Remember which jobs an event queued."""
    conn.execute("UPDATE webhook_events SET job_ids = ? WHERE id = ?", (json.dumps(job_ids), event_id))


def orphan_events(conn: sqlite3.Connection, agent: str | None = None) -> list[int]:
    """Recorded webhook events of `agent` that need work but never got their job (a stop between the two writes)."""
    rows = conn.execute(
        "SELECT e.id FROM webhook_events e WHERE e.agent IS ? AND e.ignored IS NULL AND e.job_ids = '[]'"
        " AND NOT EXISTS"
        " (SELECT 1 FROM job_queue j WHERE j.type = 'webhook'"
        " AND CAST(json_extract(j.payload, '$.event_id') AS INTEGER) = e.id)"
        " ORDER BY e.id", (agent,)
    )
    return [r["id"] for r in rows]


def event(conn: sqlite3.Connection, event_id: int) -> sqlite3.Row | None:
    """One recorded event's source, decoded body (`payload`) and parsed event (`event`, NULL before 0004), or None."""
    return conn.execute("SELECT source, payload, event FROM webhook_events WHERE id = ?", (event_id,)).fetchone()
