"""The meta table (small key/value facts the agent keeps, e.g. when cache_gc last ran) and expiry sweeps."""

from __future__ import annotations

import sqlite3


def get(conn: sqlite3.Connection, key: str) -> str | None:
    """One value from the meta table."""
    row = conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
    return row["value"] if row else None


def put(conn: sqlite3.Connection, key: str, value: str) -> None:
    """Store one value in the meta table."""
    conn.execute(
        "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
        (key, value),
    )


def forget(conn: sqlite3.Connection, key: str) -> None:
    """Remove one value."""
    conn.execute("DELETE FROM meta WHERE key = ?", (key,))
