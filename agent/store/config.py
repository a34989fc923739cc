"""What the config mirrors into the store: libraries, players, player groups and path mappings."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence


def libraries(conn: sqlite3.Connection) -> list[tuple[str, str, str]]:
    """Every stored library as (name, kind, path), oldest first."""
    return [(r[0], r[1], r[2]) for r in conn.execute("SELECT name, kind, path FROM libraries ORDER BY id")]


def libraries_with_items(conn: sqlite3.Connection) -> list[tuple[str, str, str, int]]:
    """Every stored library as (name, kind, path, how many movies and series it holds), by name."""
    return [(r[0], r[1], r[2], r[3]) for r in conn.execute(
        "SELECT l.name, l.kind, l.path, (SELECT COUNT(*) FROM movies m WHERE m.library_id = l.id)"
        " + (SELECT COUNT(*) FROM series s WHERE s.library_id = l.id) FROM libraries l ORDER BY l.name")]


def rename_library(conn: sqlite3.Connection, old: str, new: str) -> None:
    """Give a stored library a new name (its items stay with it)."""
    conn.execute("UPDATE libraries SET name = ? WHERE name = ?", (new, old))


def put_library(conn: sqlite3.Connection, name: str, kind: str, path: str, now: float) -> None:
    """Insert a library or update its kind and path."""
    conn.execute(
        "INSERT INTO libraries (name, kind, path, created_at) VALUES (?, ?, ?, ?)"
        " ON CONFLICT(name) DO UPDATE SET kind = excluded.kind, path = excluded.path",
        (name, kind, path, now))


def keep_only_libraries(conn: sqlite3.Connection, names: Sequence[str]) -> None:
    """Drop every library (and, by cascade, its items) not named."""
    if names:
        conn.execute(f"DELETE FROM libraries WHERE name NOT IN ({','.join('?' * len(names))})", list(names))
    else:
        conn.execute("DELETE FROM libraries")


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


def keep_only_players(conn: sqlite3.Connection, names: Sequence[str]) -> None:
    """Drop every player not named."""
    if names:
        conn.execute(f"DELETE FROM media_players WHERE name NOT IN ({','.join('?' * len(names))})", list(names))
    else:
        conn.execute("DELETE FROM media_players")
