"""The agents sharing a store: what each said of itself at start, and when it was last heard from."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from typing import Any

from agent.store import jobs


def register(conn: sqlite3.Connection, name: str, libraries: Sequence[str], players: Sequence[str], version: str,
             now: float, alone: bool = False) -> None:
    """This agent is up, with these libraries and players; `alone` (an SQLite store) forgets any other name
    (the same agent under an earlier host name)."""
    if alone:
        conn.execute("DELETE FROM agents WHERE name != ?", (name,))
    conn.execute(
        "INSERT INTO agents (name, libraries, players, version, started_at, last_seen, stopped_at)"
        " VALUES (?, ?, ?, ?, ?, ?, NULL) ON CONFLICT(name) DO UPDATE SET libraries = excluded.libraries,"
        " players = excluded.players, version = excluded.version, started_at = excluded.started_at,"
        " last_seen = excluded.last_seen, stopped_at = NULL",
        (name, json.dumps(list(libraries)), json.dumps(list(players)), version, now, now))


def heartbeat(conn: sqlite3.Connection, name: str, held: Sequence[int], now: float, lease_until: float,
              expire: bool) -> tuple[int, list[tuple[int, str]], list[jobs.Cascade]]:
    """Renew the leases of the jobs this agent holds and its last_seen; with `expire`, re-queue the jobs whose
    lease ran out (their agent went quiet). Returns (leases renewed, [(job id, agent that lost it)], cascades).
    """
    renewed = jobs.renew(conn, name, held, lease_until)
    conn.execute("UPDATE agents SET last_seen = ? WHERE name = ?", (now, name))
    if not expire:
        return renewed, [], []
    lost, cascaded = jobs.expire(conn, held, now)
    return renewed, lost, cascaded


def stopped(conn: sqlite3.Connection, name: str, now: float) -> None:
    """This agent stopped cleanly."""
    conn.execute("UPDATE agents SET stopped_at = ?, last_seen = ? WHERE name = ?", (now, now, name))


def listing(conn: sqlite3.Connection) -> list[dict[str, Any]]:
    """Every agent with its running job count, by name."""
    running = dict(conn.execute("SELECT worker, COUNT(*) FROM job_queue WHERE status = 'running'"
                                " AND worker IS NOT NULL GROUP BY worker").fetchall())
    out = []
    for r in conn.execute("SELECT name, libraries, players, version, started_at, last_seen, stopped_at"
                          " FROM agents ORDER BY name"):
        out.append({"name": r["name"], "libraries": json.loads(r["libraries"]), "players": json.loads(r["players"]),
                    "version": r["version"], "started_at": r["started_at"], "last_seen": r["last_seen"],
                    "stopped_at": r["stopped_at"], "running": int(running.get(r["name"], 0))})
    return out


def owners(conn: sqlite3.Connection) -> dict[str, str | None]:
    """Each stored library's owning agent, by library name (None: no agent named, an SQLite store)."""
    return {r[0]: r[1] for r in conn.execute("SELECT name, agent FROM libraries")}


def others_players(conn: sqlite3.Connection, name: str) -> set[str]:
    """Player names that other agents listed at their start."""
    found: set[str] = set()
    for (players,) in conn.execute("SELECT players FROM agents WHERE name != ?", (name,)):
        found.update(json.loads(players))
    return found
