"""fanart.tv v3: artwork only (logos, clearart, discs, banners, thumbs, posters, backgrounds)."""

from __future__ import annotations

import re
from typing import Any, Final

import aiohttp

from agent.errors import ConfigError, UserError
from agent.providers.base import ArtKind, ArtworkCandidate, HttpProvider, normalise_language
from agent.providers.ratelimit import TokenBucket
from agent.providers.response_cache import SqliteResponseCache

DEFAULT_BASE_URL: Final = "https://webservice.fanart.tv/v3"

# fanart.tv key -> (our type, width, height). fanart.tv does not send sizes; every key has a
# fixed size in its upload rules, so the table gives `choose_artwork` something to filter on.
MOVIE_KEYS: Final[dict[str, tuple[str, int, int]]] = {
    "hdmovielogo": ("clearlogo", 800, 310),
    "movielogo": ("clearlogo", 400, 155),
    "hdmovieclearart": ("clearart", 1000, 562),
    "movieart": ("clearart", 500, 281),
    "moviedisc": ("discart", 1000, 1000),
    "moviebanner": ("banner", 1000, 185),
    "moviethumb": ("landscape", 1000, 562),
    "movieposter": ("poster", 1000, 1426),
    "moviebackground": ("fanart", 1920, 1080),
}
TV_KEYS: Final[dict[str, tuple[str, int, int]]] = {
    "hdtvlogo": ("clearlogo", 800, 310),
    "clearlogo": ("clearlogo", 400, 155),
    "hdclearart": ("clearart", 1000, 562),
    "clearart": ("clearart", 500, 281),
    "tvbanner": ("banner", 1000, 185),
    "tvthumb": ("landscape", 500, 281),
    "tvposter": ("poster", 1000, 1426),
    "showbackground": ("fanart", 1920, 1080),
    "seasonposter": ("poster", 1000, 1426),
    "seasonbanner": ("banner", 1000, 185),
    "seasonthumb": ("landscape", 500, 281),
}
SEASON_KEYS: Final = frozenset({"seasonposter", "seasonbanner", "seasonthumb"})
_MOVIE_ID_RE: Final = re.compile(r"^(\d+|tt\d{5,10})$")


class FanartProvider(HttpProvider):
    """fanart.tv client: movies by tmdb_id or imdb_id, shows by tvdb_id; no text metadata."""

    name = "fanart"
    label = "fanart.tv"
    supports = frozenset({"artwork"})

    def __init__(
        self,
        api_key: str,
        *,
        base_url: str = DEFAULT_BASE_URL,
        session: aiohttp.ClientSession | None = None,
        cache: SqliteResponseCache | None = None,
        limiter: TokenBucket | None = None,
        timeout: float = 30.0,
    ) -> None:
        key = (api_key or "").strip()
        if not key:
            raise ConfigError("providers.fanart.api_key is empty; set a fanart.tv personal or project key")
        super().__init__(base_url, secret=key, session=session, cache=cache, limiter=limiter, timeout=timeout)

    async def artwork(self, kind: ArtKind, ids: dict[str, Any]) -> list[ArtworkCandidate]:
        """Return every image fanart.tv has for a movie (tmdb_id/imdb_id) or a show (tvdb_id)."""
        if kind == "movie":
            ident = str(ids.get("tmdb_id") or ids.get("imdb_id") or "").strip()
            if not ident:
                raise UserError("fanart.tv needs a tmdb_id or imdb_id to find movie artwork")
            if not _MOVIE_ID_RE.match(ident):
                raise UserError(f"{ident!r} is neither a TMDB id (digits) nor an IMDb id (tt + digits)")
            return parse_fanart(await self.get_json(f"/movies/{ident}"), MOVIE_KEYS)
        if kind == "tv":
            tvdb = str(ids.get("tvdb_id") or "").strip()
            if not tvdb:
                return []  # fanart.tv indexes shows by TVDB id only; without one there is nothing to ask
            if not tvdb.isdigit():
                raise UserError(f"tvdb_id {tvdb!r} is not a number")
            return parse_fanart(await self.get_json(f"/tv/{tvdb}"), TV_KEYS)
        raise UserError(f"artwork kind must be 'movie' or 'tv', got {kind!r}")


def _season(value: Any) -> int | None:
    """Return a fanart.tv season number ("1", "0"), or None for "all" and junk."""
    try:
        return int(str(value))
    except ValueError:
        return None


def parse_fanart(body: Any, keys: dict[str, tuple[str, int, int]]) -> list[ArtworkCandidate]:
    """Map a fanart.tv answer to candidates: likes -> votes, lang "00"/"" -> None, sizes from the key."""
    if not isinstance(body, dict):
        return []
    out: list[ArtworkCandidate] = []
    seen: set[str] = set()
    for key, (art_type, width, height) in keys.items():
        for image in body.get(key) or []:
            if not isinstance(image, dict) or not image.get("url") or image["url"] in seen:
                continue
            season = None
            if key in SEASON_KEYS:
                season = _season(image.get("season"))
                if season is None:
                    continue  # "all" seasons art has no file name in DESIGN section 7
            try:
                likes = float(image.get("likes") or 0)
            except ValueError:
                likes = 0.0
            seen.add(image["url"])
            out.append(ArtworkCandidate(
                art_type, image["url"], normalise_language(image.get("lang")), votes=likes,
                width=width, height=height, source="fanart", season=season,
            ))
    return out
