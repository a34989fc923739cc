"""Which agent runs a job on a shared store (PostgreSQL): the one whose library the job is about."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any, Final

_KEYS_PER_QUERY: Final = 500  # ids per `IN (...)` lookup

# Job types that touch no files: any agent sharing the store may run them (the others run on the agent
# that owns the library of their item; see bind_owners below).
ANYWHERE: Final = frozenset({"notify_players", "playback_capture", "playback_restore"})

_ITEM_OWNER: Final = {
    "movie": "SELECT m.id, l.agent FROM movies m JOIN libraries l ON l.id = m.library_id WHERE m.id IN ({})",
    "series": "SELECT s.id, l.agent FROM series s JOIN libraries l ON l.id = s.library_id WHERE s.id IN ({})",
    "episode": "SELECT e.id, l.agent FROM episodes e JOIN series s ON s.id = e.series_id"
               " JOIN libraries l ON l.id = s.library_id WHERE e.id IN ({})",
    "season": "SELECT n.id, l.agent FROM seasons n JOIN series s ON s.id = n.series_id"
              " JOIN libraries l ON l.id = s.library_id WHERE n.id IN ({})",
}


def bind_owners(conn: sqlite3.Connection, specs: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each spec with `agent`: who must run it on a shared store.

    A job about a library (scan) or an item (enrich, artwork, publish, cleanup) runs on the agent owning
    that library: the files are local to it. Player jobs (ANYWHERE) run on any agent. Anything else
    (a webhook, cache_gc) runs on the agent that queued it (`agent` in the spec), and its dedupe and
    lock keys are that agent's own, so each agent keeps one pending cache_gc of its own.
    """
    libraries: dict[str, str | None] = {}
    owners: dict[tuple[str, int], str | None] = {}
    wanted: dict[str, set[int]] = {}
    for spec in specs:
        payload = spec.get("payload") or {}
        if spec["type"] in ANYWHERE:
            continue
        if isinstance(payload.get("library"), str):
            libraries[payload["library"]] = None
        elif payload.get("entity") in _ITEM_OWNER and type(payload.get("id")) is int:
            wanted.setdefault(payload["entity"], set()).add(payload["id"])
    if libraries:
        names = list(libraries)
        for start in range(0, len(names), _KEYS_PER_QUERY):
            chunk = names[start : start + _KEYS_PER_QUERY]
            libraries.update((r[0], r[1]) for r in conn.execute(
                f"SELECT name, agent FROM libraries WHERE name IN ({','.join('?' * len(chunk))})", chunk))
    for entity, ids in wanted.items():
        ordered = sorted(ids)
        for start in range(0, len(ordered), _KEYS_PER_QUERY):
            chunk = ordered[start : start + _KEYS_PER_QUERY]
            owners.update(((entity, r[0]), r[1]) for r in conn.execute(
                _ITEM_OWNER[entity].format(",".join("?" * len(chunk))), chunk))
    out = []
    for spec in specs:
        payload = spec.get("payload") or {}
        bound = dict(spec)
        if spec["type"] in ANYWHERE:
            bound["agent"] = None
        elif isinstance(payload.get("library"), str) and libraries.get(payload["library"]):
            bound["agent"] = libraries[payload["library"]]
        elif owners.get((payload.get("entity"), payload.get("id"))):  # type: ignore[arg-type]
            bound["agent"] = owners[(payload["entity"], payload["id"])]
        elif spec.get("agent"):
            bound["agent"] = me = spec["agent"]
            if "library" not in payload and "entity" not in payload:  # agent-local work: its keys are its own
                for key in ("dedupe_key", "lock_key"):
                    if spec.get(key):
                        bound[key] = f"{spec[key]}@{me}"
        out.append(bound)
    return out
