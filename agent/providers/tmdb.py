"""TMDB v3: search, movie/show/episode details mapped to the field model, and artwork candidates."""

from __future__ import annotations

import re
from typing import Any, Final

import aiohttp

from agent.errors import ConfigError, UserError
from agent.providers.base import (
    ArtKind,
    ArtworkCandidate,
    HttpProvider,
    ProviderResult,
    compact,
    normalise_language,
    rank_candidates,
    year_of,
)
from agent.providers.ratelimit import TokenBucket
from agent.providers.response_cache import SqliteResponseCache

DEFAULT_BASE_URL: Final = "https://api.themoviedb.org/3"
DEFAULT_IMAGE_BASE_URL: Final = "https://image.tmdb.org/t/p/original"
FALLBACK_LANGUAGE: Final = "en-US"  # asked again when the configured language has no overview
MAX_ACTORS: Final = 20
MOVIE_APPEND: Final = "credits,images,release_dates,external_ids,videos"
TV_APPEND: Final = "credits,images,external_ids,content_ratings"
EPISODE_APPEND: Final = "credits,external_ids,images"
WRITER_JOBS: Final = frozenset({"Screenplay", "Writer", "Teleplay"})
GOOD_MATCH: Final = 0.8  # title similarity below which a search without the year is tried too
IMAGE_LISTS: Final = (
    ("posters", "poster"), ("backdrops", "fanart"), ("logos", "clearlogo"), ("stills", "thumb"),
)
UNTRANSLATED: Final = (("plot", "overview"), ("tagline", "tagline"), ("title", "title"), ("title", "name"))
_IMDB_RE: Final = re.compile(r"^tt\d{5,10}$")


def is_bearer_token(key: str) -> bool:
    """True for a v4 read access token (a JWT: "eyJ..." with three dot-separated parts)."""
    return key.startswith("eyJ") and key.count(".") == 2


def image_languages(language: str) -> str:
    """Return `include_image_language` for a language: "<lang>,null,en" without duplicates."""
    short = normalise_language(language) or "en"
    return ",".join(dict.fromkeys([short, "null", "en"]))


class TmdbProvider(HttpProvider):
    """TMDB v3 client; `api_key` is a v3 key (sent as ?api_key=) or a v4 token (sent as Bearer)."""

    name = "tmdb"
    label = "TMDB"
    supports = frozenset({"search_movie", "movie", "search_tv", "tv", "episode", "artwork"})

    def __init__(
        self,
        api_key: str,
        *,
        language: str = "en-US",
        base_url: str = DEFAULT_BASE_URL,
        image_base_url: str = DEFAULT_IMAGE_BASE_URL,
        certification_country: str = "US",
        session: aiohttp.ClientSession | None = None,
        cache: SqliteResponseCache | None = None,
        limiter: TokenBucket | None = None,
        timeout: float = 30.0,
    ) -> None:
        key = (api_key or "").strip()
        if not key:
            raise ConfigError("providers.tmdb.api_key is empty; set a TMDB v3 API key or v4 read token")
        super().__init__(base_url, secret=key, session=session, cache=cache, limiter=limiter, timeout=timeout)
        self.bearer = is_bearer_token(key)
        self.language = language
        self.image_base_url = image_base_url.rstrip("/")
        self.country = certification_country.upper()

    def _auth(self, params: dict[str, Any], headers: dict[str, str]) -> None:
        """Send a v4 token as a Bearer header, a v3 key as the api_key query parameter."""
        if self.bearer:
            headers["Authorization"] = f"Bearer {self._secret}"
        else:
            params["api_key"] = self._secret

    def image_url(self, file_path: str | None) -> str | None:
        """Return the full URL of a TMDB image path, or None."""
        if not file_path:
            return None
        return f"{self.image_base_url}/{file_path.lstrip('/')}"

    # --- search -------------------------------------------------------------------------------

    async def search_movie(self, title: str, year: int | None = None) -> list[dict[str, Any]]:
        """Search movies by title (with the year first, then without) and rank them best first."""
        return await self._search(
            "/search/movie", "year", title, year, "title", "original_title", "release_date"
        )

    async def search_tv(self, title: str, year: int | None = None) -> list[dict[str, Any]]:
        """Search shows by title (with the first-air year first, then without) and rank them best first."""
        return await self._search(
            "/search/tv", "first_air_date_year", title, year, "name", "original_name", "first_air_date"
        )

    async def _search(
        self, path: str, year_param: str, title: str, year: int | None, tkey: str, okey: str, dkey: str
    ) -> list[dict[str, Any]]:
        """Run a search, falling back to no year when the year finds nothing that looks right."""
        if not title or not title.strip():
            raise UserError("a search needs a title")
        found: dict[int, dict[str, Any]] = {}
        attempts = [year, None] if year else [None]
        for attempt_year in attempts:
            params = {"query": title.strip(), "include_adult": "false", "language": self.language}
            if attempt_year:
                params[year_param] = attempt_year
            body = await self.get_json(path, params) or {}
            for item in body.get("results") or []:
                if isinstance(item, dict) and isinstance(item.get("id"), int):
                    found.setdefault(item["id"], {
                        "tmdb_id": item["id"],
                        "title": item.get(tkey) or item.get(okey) or "",
                        "original_title": item.get(okey),
                        "year": year_of(item.get(dkey)),
                        "popularity": float(item.get("popularity") or 0.0),
                        "overview": item.get("overview") or None,
                        "poster": self.image_url(item.get("poster_path")),
                    })
            ranked = rank_candidates(list(found.values()), title, year)
            if ranked and ranked[0]["score"] >= GOOD_MATCH:
                return ranked
        return rank_candidates(list(found.values()), title, year)

    # --- ids ------------------------------------------------------------------------------------

    async def _resolve(self, ids: dict[str, Any], kind: ArtKind) -> int | None:
        """Return the TMDB id for ids, asking /find for IMDb (or TVDB) ids; None when TMDB has none."""
        if ids.get("tmdb_id") not in (None, "", 0):
            try:
                return int(ids["tmdb_id"])
            except (TypeError, ValueError):
                raise UserError(f"tmdb_id {ids['tmdb_id']!r} is not a number") from None
        if ids.get("imdb_id"):
            imdb = str(ids["imdb_id"]).strip()
            if not _IMDB_RE.match(imdb):
                raise UserError(f"imdb_id {imdb!r} is not an IMDb id (tt followed by digits)")
            return await self._find(imdb, "imdb_id", kind)
        if kind == "tv" and ids.get("tvdb_id") not in (None, "", 0):
            return await self._find(str(ids["tvdb_id"]).strip(), "tvdb_id", kind)
        wanted = "tmdb_id, imdb_id or tvdb_id" if kind == "tv" else "tmdb_id or imdb_id"
        raise UserError(f"cannot look up a {kind} item on TMDB without {wanted}")

    async def _find(self, external_id: str, source: str, kind: ArtKind) -> int | None:
        """Ask /find/{id}?external_source= for the TMDB id of a movie or show."""
        body = await self.get_json(f"/find/{external_id}", {"external_source": source})
        results = (body or {}).get("movie_results" if kind == "movie" else "tv_results") or []
        return results[0]["id"] if results and isinstance(results[0].get("id"), int) else None

    # --- details --------------------------------------------------------------------------------

    async def movie(self, ids: dict[str, Any], language: str | None = None) -> ProviderResult | None:
        """Return a movie's fields and artwork, looked up by tmdb_id or (via /find) imdb_id."""
        tmdb_id = await self._resolve(ids, "movie")
        if tmdb_id is None:
            return None
        lang = language or self.language
        body = await self.get_json(f"/movie/{tmdb_id}", {
            "language": lang,
            "append_to_response": MOVIE_APPEND,
            "include_image_language": image_languages(lang),
            "include_video_language": image_languages(lang),
        })
        if body is None:
            return None
        fields = movie_fields(body, self.image_url, self.country)
        await self._fill_untranslated(f"/movie/{tmdb_id}", lang, fields)
        collection = body.get("belongs_to_collection")
        if isinstance(collection, dict) and collection.get("name"):
            fields["set"] = await self._collection(collection, lang)
        ids_out = compact({"tmdb_id": tmdb_id, "imdb_id": fields.get("imdb_id")})
        return ProviderResult(fields, self._images(body, None), ids_out)

    async def _collection(self, collection: dict[str, Any], language: str) -> dict[str, Any]:
        """Return set {name, overview, tmdbcolid}; the overview needs /collection/{id} (cached, shared by the set)."""
        out: dict[str, Any] = {"name": collection["name"]}
        if isinstance(collection.get("id"), int):
            out["tmdbcolid"] = collection["id"]  # Jellyfin's <set tmdbcolid=>; a set read from another NFO keeps it
            body = await self.get_json(f"/collection/{collection['id']}", {"language": language})
            if body and body.get("overview"):
                out["overview"] = body["overview"]
        return out

    async def tv(self, ids: dict[str, Any], language: str | None = None) -> ProviderResult | None:
        """Return a show's fields and artwork (season posters carry `season`)."""
        tmdb_id = await self._resolve(ids, "tv")
        if tmdb_id is None:
            return None
        lang = language or self.language
        body = await self.get_json(f"/tv/{tmdb_id}", {
            "language": lang,
            "append_to_response": TV_APPEND,
            "include_image_language": image_languages(lang),
        })
        if body is None:
            return None
        fields = tv_fields(body, self.image_url, self.country)
        await self._fill_untranslated(f"/tv/{tmdb_id}", lang, fields)
        artwork = self._images(body, None)
        for season in body.get("seasons") or []:
            url = self.image_url(season.get("poster_path"))
            if url and isinstance(season.get("season_number"), int):
                artwork.append(ArtworkCandidate("poster", url, season=season["season_number"]))
        raw = compact({k: fields.get(k) for k in ("tmdb_id", "imdb_id", "tvdb_id")})
        return ProviderResult(fields, artwork, raw)

    async def episode(
        self, ids: dict[str, Any], season: int, episode: int, language: str | None = None
    ) -> ProviderResult | None:
        """Return one episode of a show (ids name the show) with its still as `thumb` artwork."""
        if not isinstance(season, int) or not isinstance(episode, int) or season < 0 or episode < 0:
            raise UserError(f"season and episode must be whole numbers >= 0, got {season!r} and {episode!r}")
        show_id = await self._resolve(ids, "tv")
        if show_id is None:
            return None
        lang = language or self.language
        path = f"/tv/{show_id}/season/{season}/episode/{episode}"
        body = await self.get_json(path, {
            "language": lang,
            "append_to_response": EPISODE_APPEND,
            "include_image_language": image_languages(lang),
        })
        if body is None:
            return None
        fields = episode_fields(body, self.image_url, season, episode)
        await self._fill_untranslated(path, lang, fields)
        raw = compact({k: fields.get(k) for k in ("tmdb_id", "imdb_id", "tvdb_id")})
        return ProviderResult(fields, self._images(body, body.get("still_path")), raw)

    async def artwork(self, kind: ArtKind, ids: dict[str, Any]) -> list[ArtworkCandidate]:
        """Return the artwork of a movie or show (the same cached answer `movie`/`tv` use)."""
        result = await (self.movie(ids) if kind == "movie" else self.tv(ids))
        return result.artwork if result else []

    async def _fill_untranslated(self, path: str, language: str, fields: dict[str, Any]) -> None:
        """When the configured language has no overview, take plot/tagline/title from en-US."""
        if fields.get("plot") or language == FALLBACK_LANGUAGE:
            return
        body = await self.get_json(path, {"language": FALLBACK_LANGUAGE}) or {}
        for field, key in UNTRANSLATED:
            if not fields.get(field) and body.get(key):
                fields[field] = body[key]

    def _images(self, body: dict[str, Any], extra_still: str | None) -> list[ArtworkCandidate]:
        """Map images.posters/backdrops/logos/stills (and lone poster/backdrop paths) to candidates."""
        out: list[ArtworkCandidate] = []
        seen: set[str] = set()
        images = body.get("images") or {}
        for key, art_type in IMAGE_LISTS:
            for img in images.get(key) or []:
                url = self.image_url(img.get("file_path"))
                if not url or url in seen or url.endswith(".svg"):
                    continue
                seen.add(url)
                out.append(ArtworkCandidate(
                    art_type, url, normalise_language(img.get("iso_639_1")),
                    votes=float(img.get("vote_count") or 0), vote_average=float(img.get("vote_average") or 0),
                    width=img.get("width"), height=img.get("height"), source="tmdb",
                ))
        for art_type, path in (("poster", body.get("poster_path")), ("fanart", body.get("backdrop_path")),
                               ("thumb", extra_still)):
            url = self.image_url(path)
            if url and url not in seen:
                seen.add(url)
                out.append(ArtworkCandidate(art_type, url, source="tmdb"))
        return out


def _names(items: Any, key: str = "name") -> list[str]:
    """Return the non-empty `name`s of a list of dicts, in order, without duplicates."""
    names = [item.get(key) for item in items or [] if isinstance(item, dict) and item.get(key)]
    return list(dict.fromkeys(names))


def _rating(body: dict[str, Any]) -> list[dict[str, Any]]:
    """Return the TMDB user rating in field-model form, or [] when nobody voted."""
    votes = int(body.get("vote_count") or 0)
    if not votes:
        return []
    value = round(float(body.get("vote_average") or 0.0), 3)
    return [{"name": "themoviedb", "value": value, "votes": votes, "max": 10, "default": True}]


def _actors(cast: Any, image_url: Any) -> list[dict[str, Any]]:
    """Return the top billed cast as [{name, role, order, thumb}]."""
    people = sorted((c for c in cast or [] if isinstance(c, dict) and c.get("name")),
                    key=lambda c: c.get("order", 999))
    return [compact({"name": c["name"], "role": c.get("character"), "order": i,
                     "thumb": image_url(c.get("profile_path"))}) for i, c in enumerate(people[:MAX_ACTORS])]


def _crew(crew: Any, jobs: frozenset[str]) -> list[str]:
    """Return names of crew members whose job is one of `jobs`."""
    return _names([c for c in crew or [] if isinstance(c, dict) and c.get("job") in jobs])


def certification(release_dates: dict[str, Any] | None, country: str) -> str | None:
    """Return the country's certification, preferring the theatrical (type 3) release."""
    for entry in (release_dates or {}).get("results") or []:
        if entry.get("iso_3166_1") != country:
            continue
        dates = [d for d in entry.get("release_dates") or [] if d.get("certification")]
        dates.sort(key=lambda d: (d.get("type") != 3, d.get("type") or 99))
        if dates:
            return str(dates[0]["certification"]).strip()
    return None


def trailer_key(videos: dict[str, Any] | None) -> str | None:
    """Return the key of the first YouTube video of type Trailer."""
    for video in (videos or {}).get("results") or []:
        if video.get("site") == "YouTube" and video.get("type") == "Trailer" and video.get("key"):
            return str(video["key"])
    return None


def movie_fields(body: dict[str, Any], image_url: Any, country: str = "US") -> dict[str, Any]:
    """Map a /movie/{id} answer (with appended credits etc.) to the field model."""
    credits = body.get("credits") or {}
    external = body.get("external_ids") or {}
    imdb = body.get("imdb_id") or external.get("imdb_id")
    mpaa = certification(body.get("release_dates"), country)
    return compact({
        "title": body.get("title"),
        "original_title": body.get("original_title"),
        "year": year_of(body.get("release_date")),
        "premiered": body.get("release_date"),
        "plot": body.get("overview"),
        "tagline": body.get("tagline"),
        "runtime": body.get("runtime") or None,
        "mpaa": mpaa,
        "certification": f"{country}:{mpaa}" if mpaa else None,
        "tmdb_id": body.get("id"),
        "imdb_id": imdb,
        "genres": _names(body.get("genres")),
        "countries": _names(body.get("production_countries")),
        "studios": _names(body.get("production_companies")),
        "directors": _crew(credits.get("crew"), frozenset({"Director"})),
        "credits": _crew(credits.get("crew"), WRITER_JOBS),
        "actors": _actors(credits.get("cast"), image_url),
        "ratings": _rating(body),
        "trailer": trailer_key(body.get("videos")),
        "uniqueids": compact({"tmdb": str(body["id"]) if body.get("id") else None, "imdb": imdb}),
    })


def tv_fields(body: dict[str, Any], image_url: Any, country: str = "US") -> dict[str, Any]:
    """Map a /tv/{id} answer (with appended credits etc.) to the field model."""
    external = body.get("external_ids") or {}
    ratings = (body.get("content_ratings") or {}).get("results") or []
    mpaa = next((r["rating"] for r in ratings if r.get("iso_3166_1") == country and r.get("rating")), None)
    runtimes = [r for r in body.get("episode_run_time") or [] if isinstance(r, int) and r > 0]
    ids = {"tmdb": body.get("id"), "imdb": external.get("imdb_id"), "tvdb": external.get("tvdb_id")}
    return compact({
        "title": body.get("name"),
        "original_title": body.get("original_name"),
        "year": year_of(body.get("first_air_date")),
        "premiered": body.get("first_air_date"),
        "plot": body.get("overview"),
        "tagline": body.get("tagline"),
        "runtime": runtimes[0] if runtimes else None,
        "mpaa": mpaa,
        "certification": f"{country}:{mpaa}" if mpaa else None,
        "show_status": body.get("status"),
        "tmdb_id": body.get("id"),
        "imdb_id": external.get("imdb_id"),
        "tvdb_id": external.get("tvdb_id"),
        "genres": _names(body.get("genres")),
        "countries": _names(body.get("production_countries")) or list(body.get("origin_country") or []),
        "studios": _names(body.get("networks")),
        "credits": _names(body.get("created_by")),
        "actors": _actors((body.get("credits") or {}).get("cast"), image_url),
        "ratings": _rating(body),
        "uniqueids": {k: str(v) for k, v in ids.items() if v},
    })


def episode_fields(body: dict[str, Any], image_url: Any, season: int, episode: int) -> dict[str, Any]:
    """Map a /tv/{id}/season/{n}/episode/{e} answer to the field model."""
    external = body.get("external_ids") or {}
    credits = body.get("credits") or {}
    crew = (credits.get("crew") or []) + (body.get("crew") or [])
    cast = (credits.get("cast") or []) + (credits.get("guest_stars") or body.get("guest_stars") or [])
    ids = {"tmdb": body.get("id"), "imdb": external.get("imdb_id"), "tvdb": external.get("tvdb_id")}
    return compact({
        "title": body.get("name"),
        "plot": body.get("overview"),
        "aired": body.get("air_date"),
        "premiered": body.get("air_date"),
        "year": year_of(body.get("air_date")),
        "season": body.get("season_number", season),
        "episode": body.get("episode_number", episode),
        "runtime": body.get("runtime") or None,
        "tmdb_id": body.get("id"),
        "imdb_id": external.get("imdb_id"),
        "tvdb_id": external.get("tvdb_id"),
        "directors": _crew(crew, frozenset({"Director"})),
        "credits": _crew(crew, WRITER_JOBS),
        "actors": _actors(cast, image_url),
        "ratings": _rating(body),
        "uniqueids": {k: str(v) for k, v in ids.items() if v},
    })
