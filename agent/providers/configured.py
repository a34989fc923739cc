"""The providers the config turns on (TMDB, fanart.tv), built once by the composition root."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import aiohttp

from agent.clock import Clock
from agent.config import Config
from agent.providers.fanart import FanartProvider
from agent.providers.ratelimit import DEFAULT_PERIOD as RATE_PERIOD
from agent.providers.ratelimit import TokenBucket
from agent.providers.response_cache import SqliteResponseCache
from agent.providers.tmdb import TmdbProvider
from agent.store.base import Database

# The limiters keep real time (a test agent's FakeClock would never refill them).
# One token at a time: requests go out evenly spaced at the ceiling, never as a burst that meets a 429
# in the provider's first second window.
TMDB_BURST: Final = 1
# fanart.tv documents no limit; 20 requests/s, adapting on 429 as TMDB's, keeps artwork close behind metadata
FANART_REQUESTS: Final = 200
FANART_BURST: Final = 4


@dataclass
class Providers:
    """The configured providers (either may be absent: no key means local data only)."""

    tmdb: TmdbProvider | None = None
    fanart: FanartProvider | None = None

    async def close(self) -> None:
        """Close provider sessions."""
        for p in (self.tmdb, self.fanart):
            if p is not None:
                await p.close()


def build_providers(cfg: Config, db: Database, clock: Clock, http: aiohttp.ClientSession) -> Providers:
    """Providers from the config, sharing one HTTP session and the provider response cache."""
    conf = cfg.providers
    cache = SqliteResponseCache(db, clock, ttl=conf.tmdb.ttl_days * 86400)
    out = Providers()
    if conf.tmdb.api_key:
        out.tmdb = TmdbProvider(conf.tmdb.api_key, language=conf.tmdb.language, base_url=conf.tmdb.base_url,
                                image_base_url=conf.tmdb.image_base_url, certification_country=conf.tmdb.country,
                                session=http, cache=cache,
                                limiter=TokenBucket(conf.tmdb.rate_limit, RATE_PERIOD, burst=TMDB_BURST))
    if conf.fanart.api_key:
        out.fanart = FanartProvider(conf.fanart.api_key, base_url=conf.fanart.base_url, session=http, cache=cache,
                                    limiter=TokenBucket(FANART_REQUESTS, RATE_PERIOD, burst=FANART_BURST))
    return out
