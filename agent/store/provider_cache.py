"""The provider_cache table: provider answers (JSON text) kept until they expire."""

from __future__ import annotations

import sqlite3


def fresh_body(conn: sqlite3.Connection, provider: str, key: str, now: float) -> str | None:
    """The stored answer for (provider, key) if it has not expired, else None."""
    row = conn.execute("SELECT body FROM provider_cache WHERE provider = ? AND key = ? AND expires_at > ?",
                       (provider, key, now)).fetchone()
    return row["body"] if row else None


def put(conn: sqlite3.Connection, provider: str, key: str, now: float, expires: float, body: str) -> None:
    """Insert or replace one cached answer."""
    conn.execute(
        "INSERT INTO provider_cache (provider, key, fetched_at, expires_at, body) VALUES (?, ?, ?, ?, ?) "
        "ON CONFLICT (provider, key) DO UPDATE SET fetched_at = excluded.fetched_at, "
        "expires_at = excluded.expires_at, body = excluded.body",
        (provider, key, now, expires, body),
    )


def purge_expired(conn: sqlite3.Connection, now: float) -> int:
    """Delete rows past their expiry; returns how many went."""
    return conn.execute("DELETE FROM provider_cache WHERE expires_at <= ?", (now,)).rowcount


def clear(conn: sqlite3.Connection, provider: str | None) -> int:
    """Delete all rows, or one provider's rows; returns how many went."""
    if provider is None:
        return conn.execute("DELETE FROM provider_cache").rowcount
    return conn.execute("DELETE FROM provider_cache WHERE provider = ?", (provider,)).rowcount
