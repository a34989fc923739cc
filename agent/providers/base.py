"""The provider interface every metadata source implements, its result types and title matching."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from datetime import UTC, datetime
from difflib import SequenceMatcher
from email.utils import parsedate_to_datetime
from typing import Any, Final, Literal

import aiohttp

from agent.errors import ConfigError, PermanentFailure, RetryLater
from agent.providers.ratelimit import TokenBucket
from agent.providers.response_cache import SqliteResponseCache, cache_key

ArtKind = Literal["movie", "tv"]

THROTTLE_RETRIES: Final = 3  # a 429 is waited out and the request sent again this many times
THROTTLE_WAIT_MAX: Final = 30.0  # ... while Retry-After asks for at most this; longer waits fail the job to retry

# Every artwork type a provider may return (DESIGN section 7); season art is a type plus `season`.
ART_TYPES: Final = frozenset(
    {"poster", "fanart", "banner", "clearlogo", "clearart", "discart", "landscape", "keyart", "thumb"}
)
ART_SOURCES: Final = frozenset({"tmdb", "fanart", "webhook", "nfo"})
NEUTRAL_LANGUAGES: Final = frozenset({"", "00", "xx", "null", "none"})

_ARTICLES: Final = frozenset({"the", "a", "an", "der", "die", "das", "le", "la", "les", "el", "los", "il"})


def normalise_language(language: str | None) -> str | None:
    """Return a bare ISO 639-1 code ("en-US" -> "en"), or None for language-neutral art."""
    if language is None:
        return None
    code = language.strip().lower().replace("_", "-").split("-")[0]
    return None if code in NEUTRAL_LANGUAGES else code


@dataclass(frozen=True, slots=True)
class ArtworkCandidate:
    """One image a provider offers for an item; `season` is set for season art (season 0 = specials)."""

    type: str
    url: str
    language: str | None = None
    votes: float = 0.0
    vote_average: float = 0.0
    width: int | None = None
    height: int | None = None
    source: str = "tmdb"
    season: int | None = None

    def __post_init__(self) -> None:
        """Reject types and sources outside the shared vocabulary."""
        if self.type not in ART_TYPES:
            raise ValueError(f"unknown artwork type {self.type!r}; expected one of {sorted(ART_TYPES)}")
        if self.source not in ART_SOURCES:
            raise ValueError(f"unknown artwork source {self.source!r}; expected one of {sorted(ART_SOURCES)}")

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict (for job payloads and the `artwork_found` column)."""
        out = {
            "type": self.type,
            "url": self.url,
            "language": self.language,
            "votes": self.votes,
            "vote_average": self.vote_average,
            "width": self.width,
            "height": self.height,
            "source": self.source,
        }
        if self.season is not None:
            out["season"] = self.season
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ArtworkCandidate:
        """Rebuild a candidate from `to_dict` output."""
        return cls(
            type=data["type"],
            url=data["url"],
            language=data.get("language"),
            votes=float(data.get("votes") or 0),
            vote_average=float(data.get("vote_average") or 0),
            width=data.get("width"),
            height=data.get("height"),
            source=data.get("source", "tmdb"),
            season=data.get("season"),
        )


@dataclass(slots=True)
class ProviderResult:
    """What a provider knows about one item: field-model `fields`, artwork, and the ids it resolved."""

    fields: dict[str, Any]
    artwork: list[ArtworkCandidate] = field(default_factory=list)
    raw_ids: dict[str, Any] = field(default_factory=dict)


class Provider:
    """Base of every metadata/artwork source; operations a provider does not support answer None or []."""

    name: str = "provider"
    # The operations this provider really implements, so callers can skip the others.
    supports: frozenset[str] = frozenset()

    async def search_movie(self, title: str, year: int | None = None) -> list[dict[str, Any]]:
        """Return candidates [{tmdb_id, title, year, popularity}] best first; [] when unsupported."""
        return []

    async def movie(self, ids: dict[str, Any], language: str | None = None) -> ProviderResult | None:
        """Return a movie's fields and artwork by ids (tmdb_id and/or imdb_id); None when unknown."""
        return None

    async def search_tv(self, title: str, year: int | None = None) -> list[dict[str, Any]]:
        """Return show candidates [{tmdb_id, title, year, popularity}] best first; [] when unsupported."""
        return []

    async def tv(self, ids: dict[str, Any], language: str | None = None) -> ProviderResult | None:
        """Return a show's fields and artwork by ids (tmdb_id, imdb_id, tvdb_id); None when unknown."""
        return None

    async def episode(
        self, ids: dict[str, Any], season: int, episode: int, language: str | None = None
    ) -> ProviderResult | None:
        """Return one episode of the show named by `ids`; None when unknown."""
        return None

    async def artwork(self, kind: ArtKind, ids: dict[str, Any]) -> list[ArtworkCandidate]:
        """Return artwork candidates for a movie or show; [] when none or unsupported."""
        return []

    async def close(self) -> None:
        """Release network resources the provider owns."""
        return None


def normalise_title(title: str) -> str:
    """Lower-case, strip accents, punctuation and leading/trailing articles ("The Matrix" -> "matrix")."""
    text = unicodedata.normalize("NFKD", title)
    text = "".join(ch for ch in text if not unicodedata.combining(ch)).lower().replace("&", " and ")
    words = re.sub(r"[^\w\s]|_", " ", text).split()
    if len(words) > 1 and words[0] in _ARTICLES:
        words = words[1:]
    if len(words) > 1 and words[-1] in _ARTICLES:  # "Matrix, The"
        words = words[:-1]
    return " ".join(words)


def title_similarity(a: str, b: str) -> float:
    """Return 0..1 similarity of two titles after normalisation (1.0 = same title)."""
    na, nb = normalise_title(a), normalise_title(b)
    if not na or not nb:
        return 0.0
    if na == nb:
        return 1.0
    return SequenceMatcher(None, na, nb).ratio()


def _year_tier(wanted: int | None, found: int | None) -> int:
    """2 exact year, 1 off by one, 0 unknown, -1 a different year."""
    if wanted is None or found is None:
        return 0
    diff = abs(wanted - found)
    return 2 if diff == 0 else 1 if diff == 1 else -1


def rank_candidates(candidates: list[dict[str, Any]], title: str, year: int | None) -> list[dict[str, Any]]:
    """Order search candidates best first: same title, then year +/- 1, then similarity, then popularity.

    Each candidate has `title`, optional `original_title`, `year`, `popularity`; a `score`
    (0..1 title similarity) is added so callers can refuse weak matches.
    """
    ranked = []
    for cand in candidates:
        sim = max(
            title_similarity(title, cand.get("title") or ""),
            title_similarity(title, cand.get("original_title") or ""),
        )
        tier = 2 if sim == 1.0 else 1 if sim >= 0.8 else 0
        key = (tier, _year_tier(year, cand.get("year")), sim, float(cand.get("popularity") or 0))
        ranked.append((key, {**cand, "score": round(sim, 3)}))
    ranked.sort(key=lambda pair: pair[0], reverse=True)
    return [cand for _, cand in ranked]


def year_of(date: str | None) -> int | None:
    """Return the year of a "YYYY-MM-DD" date, or None."""
    if date and len(date) >= 4 and date[:4].isdigit():
        return int(date[:4])
    return None


def compact(fields: dict[str, Any]) -> dict[str, Any]:
    """Drop keys whose value is None, "" or an empty list/dict (the field model omits empty keys)."""
    return {k: v for k, v in fields.items() if v is not None and v != "" and v != [] and v != {}}


class HttpProvider(Provider):
    """A provider speaking JSON over HTTP: rate limiting, the response cache and the error mapping.

    429 -> RetryLater(delay=Retry-After), 5xx/timeouts/connection errors -> RetryLater,
    401 -> PermanentFailure (key rejected), 404 -> None, other 4xx -> PermanentFailure.
    """

    label = "provider"  # how messages name the service ("TMDB", "fanart.tv")
    default_retry_after: float = 10.0

    def __init__(
        self,
        base_url: str,
        *,
        secret: str,
        session: aiohttp.ClientSession | None = None,
        cache: SqliteResponseCache | None = None,
        limiter: TokenBucket | None = None,
        timeout: float = 30.0,
    ) -> None:
        if not re.match(r"^https?://[^/\s]+", base_url or ""):
            raise ConfigError(f"providers.{self.name}.base_url must be an http(s) URL, got {base_url!r}")
        self.base_url = base_url.rstrip("/")
        self._secret = secret
        self._session = session
        self._owns_session = session is None
        self.cache = cache
        self.limiter = limiter or TokenBucket()
        self.timeout = aiohttp.ClientTimeout(total=timeout)
        self.requests_made = 0  # HTTP requests actually sent (cache hits excluded)

    def _auth(self, params: dict[str, Any], headers: dict[str, str]) -> None:
        """Add credentials to a request; subclasses choose query or header."""
        params["api_key"] = self._secret

    def _scrub(self, text: str) -> str:
        """Remove the secret from a message that may quote a URL."""
        return text.replace(self._secret, "***") if self._secret else text

    async def _client(self) -> aiohttp.ClientSession:
        """Return the session, creating one on first use."""
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=self.timeout)
            self._owns_session = True
        return self._session

    async def close(self) -> None:
        """Close the session if this provider created it."""
        if self._owns_session and self._session is not None and not self._session.closed:
            await self._session.close()

    async def get_json(self, path: str, params: dict[str, Any] | None = None) -> Any | None:
        """GET base_url + path and return decoded JSON (cached), or None on 404."""
        params = {k: v for k, v in (params or {}).items() if v is not None}
        key = cache_key(path, params)
        if self.cache is not None:
            cached = await self.cache.get(self.name, key)
            if cached is not None:
                return cached
        body = await self._fetch(path, params)
        if body is not None and self.cache is not None:
            await self.cache.put(self.name, key, body)
        return body

    async def _fetch(self, path: str, params: dict[str, Any]) -> Any | None:
        """Send one rate-limited request and map its status to a value or an agent error.

        A 429 slows the shared limiter down and pauses it for `Retry-After`; the request is then sent again
        (up to THROTTLE_RETRIES times, while the pause is short) instead of failing the whole job.
        """
        headers: dict[str, str] = {"Accept": "application/json"}
        query = {k: str(v) for k, v in params.items()}
        self._auth(query, headers)
        session = await self._client()
        for attempt in range(THROTTLE_RETRIES + 1):
            await self.limiter.acquire()
            self.requests_made += 1
            try:
                async with session.get(self.base_url + path, params=query, headers=headers,
                                       timeout=self.timeout) as resp:
                    if resp.status == 429:
                        delay = parse_retry_after(resp.headers.get("Retry-After"), self.default_retry_after)
                        self.limiter.throttled(delay)
                        if attempt < THROTTLE_RETRIES and delay <= THROTTLE_WAIT_MAX:
                            continue
                        raise RetryLater(f"{self.label} rate limit hit (429) for {path}; retry in {delay:g}s",
                                         delay=delay)
                    if resp.status == 404:
                        self.limiter.answered()
                        return None
                    self._raise_for_status(resp, path)
                    try:
                        body = await resp.json(content_type=None)
                    except ValueError as exc:
                        raise RetryLater(f"{self.label} answered {path} with a body that is not JSON") from exc
                    self.limiter.answered()
                    return body
            except (aiohttp.ClientError, TimeoutError) as exc:
                message = self._scrub(f"{exc.__class__.__name__}: {exc}".rstrip(": "))
                raise RetryLater(f"{self.label} unreachable for {path}: {message}") from exc
        raise AssertionError("unreachable: the last attempt returns or raises")  # pragma: no cover

    def _raise_for_status(self, resp: aiohttp.ClientResponse, path: str) -> None:
        """Raise the agent error matching a non-2xx status (429 is handled by `_fetch`)."""
        status = resp.status
        if status < 400:
            return
        if status == 429:
            delay = parse_retry_after(resp.headers.get("Retry-After"), self.default_retry_after)
            self.limiter.throttled(delay)
            raise RetryLater(f"{self.label} rate limit hit (429) for {path}; retry in {delay:g}s", delay=delay)
        if status >= 500:
            raise RetryLater(f"{self.label} server error {status} for {path}")
        if status == 401:
            raise PermanentFailure(
                f"{self.label} rejected the API key (401); check providers.{self.name}.api_key"
            )
        raise PermanentFailure(f"{self.label} refused {path} with HTTP {status}")


def parse_retry_after(value: str | None, default: float) -> float:
    """Parse a Retry-After header (seconds or an HTTP date) into seconds to wait."""
    if not value:
        return default
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return default
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())
