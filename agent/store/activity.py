"""The activity read model: top-level jobs with a summary of the follow-ups they caused (the jobs whose
`origin` they are), those follow-ups, and what each job is about (an item, a library, a webhook)."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from pathlib import PurePath
from typing import Any, Final

from agent.queue.model import Job

MAX_MEMBERS: Final = 500
_TITLE_TABLES: Final = {"movie": "movies", "series": "series"}


def _with_deps(conn: sqlite3.Connection, jobs: list[Job]) -> list[Job]:
    """Fill each job's depends_on."""
    if not jobs:
        return jobs
    ids = [j.id for j in jobs]
    deps: dict[int, list[int]] = {}
    for jid, dep in conn.execute(
            f"SELECT job_id, depends_on FROM job_dependencies WHERE job_id IN ({','.join('?' * len(ids))})", ids):
        deps.setdefault(jid, []).append(dep)
    for j in jobs:
        j.depends_on = deps.get(j.id, [])
    return jobs


def heads(conn: sqlite3.Connection, status: str | None, limit: int, offset: int
          ) -> tuple[list[Job], int, dict[int, dict[str, Any]]]:
    """Jobs asked for directly (no origin; newest first), the total, and per head its follow-ups' counts.

    The summary of a head is {"total": n, "by_status": {status: n}, "by_type": {type: {status: n}}}.
    """
    where = "WHERE origin IS NULL" + (" AND status = ?" if status else "")
    params: list[Any] = [status] if status else []
    total = conn.execute(f"SELECT COUNT(*) FROM job_queue {where}", params).fetchone()[0]
    rows = conn.execute(f"SELECT * FROM job_queue {where} ORDER BY id DESC LIMIT ? OFFSET ?",
                        [*params, limit, offset]).fetchall()
    jobs = _with_deps(conn, [Job.from_row(r) for r in rows])
    summary: dict[int, dict[str, Any]] = {}
    if jobs:
        ids = [j.id for j in jobs]
        for origin, type_, state, count in conn.execute(
                "SELECT origin, type, status, COUNT(*) FROM job_queue"
                f" WHERE origin IN ({','.join('?' * len(ids))}) GROUP BY origin, type, status", ids):
            entry = summary.setdefault(origin, {"total": 0, "by_status": {}, "by_type": {}})
            entry["total"] += count
            entry["by_status"][state] = entry["by_status"].get(state, 0) + count
            entry["by_type"].setdefault(type_, {})[state] = count
    return jobs, total, summary


def chain_members(conn: sqlite3.Connection, head: int, limit: int = MAX_MEMBERS) -> tuple[list[Job], int]:
    """The follow-ups of one head in the order they were queued (at most `limit`), and how many there are."""
    total = conn.execute("SELECT COUNT(*) FROM job_queue WHERE origin = ?", (head,)).fetchone()[0]
    rows = conn.execute("SELECT * FROM job_queue WHERE origin = ? ORDER BY id LIMIT ?", (head, limit)).fetchall()
    return _with_deps(conn, [Job.from_row(r) for r in rows]), total


def _episode_labels(conn: sqlite3.Connection, ids: list[int]) -> dict[int, dict[str, Any]]:
    """Episode id -> subject ("Show S01E02 · Title")."""
    out: dict[int, dict[str, Any]] = {}
    if not ids:
        return out
    rows = conn.execute(
        "SELECT e.id, e.title, e.season, e.episode, e.file, e.series_id, s.title AS show"
        f" FROM episodes e JOIN series s ON s.id = e.series_id WHERE e.id IN ({','.join('?' * len(ids))})", ids)
    for r in rows:
        code = f"S{(r['season'] or 0):02d}E{(r['episode'] or 0):02d}" if r["episode"] is not None else ""
        name = r["title"] or (PurePath(r["file"]).stem if r["file"] else "")
        show = r["show"] or "Unknown show"
        label = " ".join(p for p in (show, code) if p) + (f" · {name}" if name else "")
        out[r["id"]] = {"kind": "episode", "id": r["id"], "series_id": r["series_id"], "title": name,
                        "label": label}
    return out


def _item_labels(conn: sqlite3.Connection, entity: str, ids: list[int]) -> dict[int, dict[str, Any]]:
    """Movie or series id -> subject ("Title (Year)")."""
    out: dict[int, dict[str, Any]] = {}
    if not ids:
        return out
    rows = conn.execute(f"SELECT id, title, year, path FROM {_TITLE_TABLES[entity]}"
                        f" WHERE id IN ({','.join('?' * len(ids))})", ids)
    for r in rows:
        title = r["title"] or (PurePath(r["path"]).name if r["path"] else f"{entity} {r['id']}")
        label = f"{title} ({r['year']})" if r["year"] else title
        out[r["id"]] = {"kind": entity, "id": r["id"], "title": title, "year": r["year"], "label": label}
    return out


def subjects(conn: sqlite3.Connection, jobs: Sequence[Job]) -> dict[int, dict[str, Any] | None]:
    """Job id -> what it is about: {"kind", "label", ...} (an item, a library folder, a webhook), or None."""
    wanted: dict[str, set[int]] = {"movie": set(), "series": set(), "episode": set(), "webhook": set()}
    for job in jobs:
        p = job.payload if isinstance(job.payload, dict) else {}
        if p.get("entity") in wanted and isinstance(p.get("id"), int):
            wanted[p["entity"]].add(p["id"])
        elif isinstance(p.get("event_id"), int):
            wanted["webhook"].add(p["event_id"])
    found: dict[str, dict[int, dict[str, Any]]] = {
        "movie": _item_labels(conn, "movie", sorted(wanted["movie"])),
        "series": _item_labels(conn, "series", sorted(wanted["series"])),
        "episode": _episode_labels(conn, sorted(wanted["episode"])),
        "webhook": {},
    }
    if wanted["webhook"]:
        ids = sorted(wanted["webhook"])
        for r in conn.execute("SELECT id, source, event_type FROM webhook_events"
                              f" WHERE id IN ({','.join('?' * len(ids))})", ids):
            found["webhook"][r["id"]] = {"kind": "webhook", "id": r["id"], "source": r["source"],
                                        "label": f"{r['source'].capitalize()} {r['event_type']}"}
    out: dict[int, dict[str, Any] | None] = {}
    for job in jobs:
        p = job.payload if isinstance(job.payload, dict) else {}
        subject: dict[str, Any] | None = None
        if p.get("entity") in found and isinstance(p.get("id"), int):
            subject = found[p["entity"]].get(p["id"]) or {
                "kind": p["entity"], "id": p["id"], "label": f"{p['entity']} {p['id']} (removed)"}
        elif isinstance(p.get("event_id"), int):
            subject = found["webhook"].get(p["event_id"]) or {
                "kind": "webhook", "id": p["event_id"], "label": f"webhook {p['event_id']}"}
        elif isinstance(p.get("library"), str):
            folder = p.get("folder") or p.get("path")
            label = p["library"] + (f" › {PurePath(folder).name}" if isinstance(folder, str) and folder else "")
            subject = {"kind": "library", "name": p["library"], "label": label}
        out[job.id] = subject
    return out


def job_dicts(conn: sqlite3.Connection, jobs: Sequence[Job]) -> list[dict[str, Any]]:
    """Jobs in API shape, each with its `subject`."""
    subject = subjects(conn, jobs)
    return [{**j.to_dict(), "subject": subject.get(j.id)} for j in jobs]


def activity(conn: sqlite3.Connection, status: str | None, limit: int, offset: int
             ) -> tuple[list[dict[str, Any]], int]:
    """The activity list: heads in API shape with `subject` and `followups` (summary, or None)."""
    jobs, total, summary = heads(conn, status, limit, offset)
    items = job_dicts(conn, jobs)
    for item in items:
        item["followups"] = summary.get(item["id"])
    return items, total


def chain(conn: sqlite3.Connection, head: int) -> dict[str, Any] | None:
    """One head with its follow-ups (in API shape with subjects), or None when there is no such job."""
    row = conn.execute("SELECT * FROM job_queue WHERE id = ?", (head,)).fetchone()
    if row is None:
        return None
    job = _with_deps(conn, [Job.from_row(row)])[0]
    members, total = chain_members(conn, head)
    dicts = job_dicts(conn, [job, *members])
    return {"job": dicts[0], "followups": dicts[1:], "total": total}

