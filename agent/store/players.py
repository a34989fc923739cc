"""The media_players and playback_state tables: player connection state, what they play, captured playback."""

from __future__ import annotations

import json
import sqlite3
from typing import Any


def expire_playback(conn: sqlite3.Connection, now: float) -> int:
    """Delete captured playback states that were never restored and have expired; returns how many."""
    sql = "DELETE FROM playback_state WHERE restored_at IS NULL AND expires_at < ?"
    return conn.execute(sql, (now,)).rowcount


# ---------------------------------------------------------------- media_players: connection state, now playing


def mark_connected(conn: sqlite3.Connection, name: str, now: float, error: str | None = None) -> None:
    """state=connected, last_seen_at=now, last_error=error (a player that answered but refused keeps one)."""
    conn.execute(
        "UPDATE media_players SET state = 'connected', last_seen_at = ?, last_error = ? WHERE name = ?",
        (now, error, name),
    )


def mark_state(conn: sqlite3.Connection, name: str, state: str, error: str | None) -> None:
    """Set state and last_error, keeping last_seen_at."""
    conn.execute("UPDATE media_players SET state = ?, last_error = ? WHERE name = ?", (state, error, name))


def store_now_playing(conn: sqlite3.Connection, name: str, now_playing: dict[str, Any] | None) -> None:
    """Save what a player plays as JSON (NULL when idle)."""
    conn.execute(
        "UPDATE media_players SET now_playing = ? WHERE name = ?",
        (json.dumps(now_playing) if now_playing is not None else None, name),
    )


# ---------------------------------------------------------------- playback_state: captures across an upgrade


def media_key(entity: str, item_id: int) -> str:
    """The key playback_state rows of one item share."""
    return f"{entity}:{item_id}"


def replace_captures(
    conn: sqlite3.Connection,
    player: str,
    entity: str,
    item_id: int,
    rows: list[dict[str, Any]],
    now: float,
    expires: float,
) -> None:
    """Replace this player's open captures of the same old files with `rows` (one per old file and user)."""
    key = media_key(entity, item_id)
    for old_file in sorted({row["old_file"] for row in rows}):
        conn.execute(
            "DELETE FROM playback_state WHERE player = ? AND media_key = ? AND old_file = ?"
            " AND restored_at IS NULL",
            (player, key, old_file),
        )
    for row in rows:
        conn.execute(
            "INSERT INTO playback_state (player, entity_type, entity_id, media_key, old_file, player_item_id,"
            " position, total, playcount, lastplayed, was_playing, captured_at, expires_at, player_user,"
            " played) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (player, entity, item_id, key, row["old_file"], row["player_item_id"], row["position"],
             row["total"], row["playcount"], row["lastplayed"], row["was_playing"], now, expires,
             row.get("player_user"), row.get("played")),
        )


def open_captures(conn: sqlite3.Connection, entity: str, item_id: int, now: float) -> list[dict[str, Any]]:
    """Unrestored, unexpired, not-failed captures of one item, oldest first."""
    rows = conn.execute(
        "SELECT * FROM playback_state WHERE media_key = ? AND restored_at IS NULL"
        " AND restore_error IS NULL AND expires_at > ? ORDER BY id",
        (media_key(entity, item_id), now),
    )
    return [dict(r) for r in rows]


def has_open_capture(conn: sqlite3.Connection, entity: str, item_id: int, now: float) -> bool:
    """Whether an unrestored, unexpired capture of the item waits (restore_error or not)."""
    row = conn.execute(
        "SELECT 1 FROM playback_state WHERE entity_type = ? AND entity_id = ? AND restored_at IS NULL"
        " AND expires_at > ? LIMIT 1",
        (entity, item_id, now),
    ).fetchone()
    return row is not None


def finish_capture(
    conn: sqlite3.Connection, row_id: int, now: float, new_file: str | None, error: str | None
) -> None:
    """Mark one capture restored (restored_at) or failed (restore_error, cut to 1000 characters)."""
    if error is None:
        conn.execute(
            "UPDATE playback_state SET restored_at = ?, new_file = ? WHERE id = ?", (now, new_file, row_id)
        )
    else:
        conn.execute(
            "UPDATE playback_state SET restore_error = ?, new_file = ? WHERE id = ?",
            (error[:1000], new_file, row_id),
        )


def capture_state(
    conn: sqlite3.Connection, entity: str, item_id: int, since: float, now: float
) -> tuple[bool, int | None]:
    """(already captured, id of a playback_capture job still to run) for one item within the capture window."""
    job = conn.execute(
        "SELECT id, status FROM job_queue WHERE type = 'playback_capture'"
        " AND status IN ('pending', 'running', 'completed')"
        " AND json_extract(payload, '$.entity') = ? AND json_extract(payload, '$.id') = ?"
        " AND created_at >= ? ORDER BY id DESC LIMIT 1",
        (entity, item_id, since),
    ).fetchone()
    if job is not None and job["status"] != "completed":
        return True, job["id"]
    return has_open_capture(conn, entity, item_id, now) or job is not None, None


def any_player(conn: sqlite3.Connection) -> bool:
    """Whether any agent sharing the store has a player configured."""
    return conn.execute("SELECT 1 FROM media_players LIMIT 1").fetchone() is not None
