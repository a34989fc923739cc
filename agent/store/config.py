"""What the config mirrors into the store: libraries, players, player groups and path mappings."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from agent.errors import UserError

# Libraries belong to an agent on a shared store (`agent` names it); on SQLite `agent` is NULL and the one
# agent owns them all. Each function below sees only the libraries of `agent`.


def libraries(conn: sqlite3.Connection, agent: str | None = None) -> list[tuple[str, str, str]]:
    """Every stored library of `agent` as (name, kind, path), oldest first."""
    return [(r[0], r[1], r[2]) for r in conn.execute(
        "SELECT name, kind, path FROM libraries WHERE agent IS ? ORDER BY id", (agent,))]


def libraries_with_items(conn: sqlite3.Connection, agent: str | None = None) -> list[tuple[str, str, str, int]]:
    """Every stored library of `agent` as (name, kind, path, how many movies and series it holds), by name."""
    return [(r[0], r[1], r[2], r[3]) for r in conn.execute(
        "SELECT l.name, l.kind, l.path, (SELECT COUNT(*) FROM movies m WHERE m.library_id = l.id)"
        " + (SELECT COUNT(*) FROM series s WHERE s.library_id = l.id) FROM libraries l WHERE l.agent IS ?"
        " ORDER BY l.name", (agent,))]


def rename_library(conn: sqlite3.Connection, old: str, new: str, agent: str | None = None) -> None:
    """Give a stored library of `agent` a new name (its items stay with it)."""
    conn.execute("UPDATE libraries SET name = ? WHERE name = ? AND agent IS ?", (new, old, agent))


def put_library(conn: sqlite3.Connection, name: str, kind: str, path: str, now: float,
                agent: str | None = None) -> None:
    """Insert a library of `agent` or update its kind and path; another agent's library of that name is refused.

    A library no agent owns yet (a store copied from SQLite by `migrate --to`) becomes `agent`'s.
    """
    row = conn.execute("SELECT agent FROM libraries WHERE name = ?", (name,)).fetchone()
    if row is not None and row[0] is not None and row[0] != agent:
        raise UserError(f"library {name!r} belongs to agent {row[0]!r} on this store; library names are shared"
                        " by every agent on one database: give this one another name (or set agent.name to"
                        f" {row[0]!r} if this is that agent, moved)")
    conn.execute(
        "INSERT INTO libraries (name, kind, path, created_at, agent) VALUES (?, ?, ?, ?, ?)"
        " ON CONFLICT(name) DO UPDATE SET kind = excluded.kind, path = excluded.path, agent = excluded.agent",
        (name, kind, path, now, agent))


def keep_only_libraries(conn: sqlite3.Connection, names: Sequence[str], agent: str | None = None) -> None:
    """Drop every library of `agent` (and, by cascade, its items) not named."""
    if names:
        conn.execute(f"DELETE FROM libraries WHERE agent IS ? AND name NOT IN ({','.join('?' * len(names))})",
                     [agent, *names])
    else:
        conn.execute("DELETE FROM libraries WHERE agent IS ?", (agent,))


def clear_mappings(conn: sqlite3.Connection) -> None:
    """Forget every path mapping (the config's are written again right after)."""
    conn.execute("DELETE FROM path_mappings")


def add_mapping(conn: sqlite3.Connection, owner_kind: str, owner_name: str, position: int, remote: str,
                local: str) -> None:
    """One path mapping of a source or player."""
    conn.execute("INSERT INTO path_mappings (owner_kind, owner_name, position, remote, local)"
                 " VALUES (?, ?, ?, ?, ?)", (owner_kind, owner_name, position, remote, local))


def player_groups(conn: sqlite3.Connection) -> dict[str, int]:
    """Every player group's id by name."""
    return {row["name"]: row["id"] for row in conn.execute("SELECT id, name FROM media_player_groups")}


def add_player_group(conn: sqlite3.Connection, name: str) -> int:
    """A new player group; returns its id."""
    return int(conn.execute("INSERT INTO media_player_groups (name) VALUES (?)", (name,)).lastrowid or 0)


def put_player(conn: sqlite3.Connection, name: str, type_: str, group_id: int, position: int, url: str) -> None:
    """Insert a player or update its type, group, position and URL (its state columns are kept)."""
    conn.execute(
        "INSERT INTO media_players (name, type, group_id, position, url) VALUES (?, ?, ?, ?, ?)"
        " ON CONFLICT(name) DO UPDATE SET type = excluded.type, group_id = excluded.group_id,"
        " position = excluded.position, url = excluded.url", (name, type_, group_id, position, url))


def keep_only_players(conn: sqlite3.Connection, names: Sequence[str]) -> None:  # also other agents' players
    """Drop every player not named."""
    if names:
        conn.execute(f"DELETE FROM media_players WHERE name NOT IN ({','.join('?' * len(names))})", list(names))
    else:
        conn.execute("DELETE FROM media_players")
