"""Provider answers kept in the `provider_cache` table with a TTL, so a rescan does not refetch."""

from __future__ import annotations

import json
import sqlite3
from typing import Any, Final
from urllib.parse import urlencode

from agent.clock import Clock
from agent.store.db import Database

DEFAULT_TTL: Final = 7 * 24 * 3600.0  # a week: TMDB data changes rarely once a title is out
SECRET_PARAMS: Final = frozenset({"api_key", "apikey", "client_key", "token"})


def cache_key(path: str, params: dict[str, Any] | None = None) -> str:
    """Return a stable key for a request: path plus sorted query, never including secrets."""
    clean = sorted((k, str(v)) for k, v in (params or {}).items() if k.lower() not in SECRET_PARAMS)
    return f"{path}?{urlencode(clean)}" if clean else path


class SqliteResponseCache:
    """get/put of decoded JSON answers keyed by (provider, request key), expiring after `ttl` seconds."""

    def __init__(self, db: Database, clock: Clock | None = None, ttl: float = DEFAULT_TTL) -> None:
        if ttl <= 0:
            raise ValueError(f"provider cache ttl must be positive, got {ttl}")
        self.db = db
        self.clock = clock or Clock()
        self.ttl = ttl

    async def get(self, provider: str, key: str) -> Any | None:
        """Return the cached answer, or None when absent or expired."""
        row = await self.db.fetchone(
            "SELECT body FROM provider_cache WHERE provider = ? AND key = ? AND expires_at > ?",
            (provider, key, self.clock.now()),
        )
        if row is None:
            return None
        try:
            return json.loads(row["body"])
        except ValueError:
            return None

    async def put(self, provider: str, key: str, body: Any) -> None:
        """Store an answer (any JSON-serialisable value) until now + ttl."""
        now = self.clock.now()
        text = json.dumps(body, separators=(",", ":"), ensure_ascii=False)
        await self.db.write(_upsert, provider, key, now, now + self.ttl, text)

    async def purge_expired(self) -> int:
        """Delete expired answers; returns how many rows went."""
        return await self.db.write(_purge, self.clock.now())

    async def clear(self, provider: str | None = None) -> int:
        """Forget every answer (of one provider, or all); returns how many rows went."""
        return await self.db.write(_clear, provider)


def _upsert(conn: sqlite3.Connection, provider: str, key: str, now: float, expires: float, body: str) -> None:
    """Insert or replace one cached answer."""
    conn.execute(
        "INSERT INTO provider_cache (provider, key, fetched_at, expires_at, body) VALUES (?, ?, ?, ?, ?) "
        "ON CONFLICT (provider, key) DO UPDATE SET fetched_at = excluded.fetched_at, "
        "expires_at = excluded.expires_at, body = excluded.body",
        (provider, key, now, expires, body),
    )


def _purge(conn: sqlite3.Connection, now: float) -> int:
    """Delete rows past their expiry."""
    return conn.execute("DELETE FROM provider_cache WHERE expires_at <= ?", (now,)).rowcount


def _clear(conn: sqlite3.Connection, provider: str | None) -> int:
    """Delete all rows, or one provider's rows."""
    if provider is None:
        return conn.execute("DELETE FROM provider_cache").rowcount
    return conn.execute("DELETE FROM provider_cache WHERE provider = ?", (provider,)).rowcount
