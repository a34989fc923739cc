"""Metadata and artwork providers (TMDB, fanart.tv) behind one `Provider` interface."""

from __future__ import annotations

from agent.providers.artwork import art_key, choose_artwork, rank_artwork
from agent.providers.base import ArtworkCandidate, HttpProvider, Provider, ProviderResult, rank_candidates
from agent.providers.fanart import FanartProvider
from agent.providers.ratelimit import TokenBucket
from agent.providers.response_cache import SqliteResponseCache
from agent.providers.tmdb import TmdbProvider

__all__ = [
    "ArtworkCandidate",
    "FanartProvider",
    "HttpProvider",
    "Provider",
    "ProviderResult",
    "SqliteResponseCache",
    "TmdbProvider",
    "TokenBucket",
    "art_key",
    "choose_artwork",
    "rank_artwork",
    "rank_candidates",
]
