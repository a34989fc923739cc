"""The media_players and playback_state tables: player connection state, what they play, captured playback."""

from __future__ import annotations

import sqlite3


def expire_playback(conn: sqlite3.Connection, now: float) -> int:
    """Delete captured playback states that were never restored and have expired; returns how many."""
    sql = "DELETE FROM playback_state WHERE restored_at IS NULL AND expires_at < ?"
    return conn.execute(sql, (now,)).rowcount
