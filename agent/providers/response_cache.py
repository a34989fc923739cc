"""Provider answers kept in the `provider_cache` table with a TTL, so a rescan does not refetch."""

from __future__ import annotations

import json
from typing import Any, Final
from urllib.parse import urlencode

from agent.clock import Clock
from agent.store import provider_cache
from agent.store.base import Database

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
        body = await self.db.read(provider_cache.fresh_body, provider, key, self.clock.now())
        if body is None:
            return None
        try:
            return json.loads(body)
        except ValueError:
            return None

    async def put(self, provider: str, key: str, body: Any) -> None:
        """Store an answer (any JSON-serialisable value) until now + ttl."""
        now = self.clock.now()
        text = json.dumps(body, separators=(",", ":"), ensure_ascii=False)
        await self.db.write(provider_cache.put, provider, key, now, now + self.ttl, text)

    async def purge_expired(self) -> int:
        """Delete expired answers; returns how many rows went."""
        return await self.db.write(provider_cache.purge_expired, self.clock.now())

    async def clear(self, provider: str | None = None) -> int:
        """Forget every answer (of one provider, or all); returns how many rows went."""
        return await self.db.write(provider_cache.clear, provider)

