"""A fake TMDB v3 + fanart.tv v3 + image host in one aiohttp app, for tests and the benchmark.

Usage::

    fake = FakeTmdb(movies={603: sample_movie()}, shows={1399: sample_show()},
                    fanart_movies={603: sample_fanart_movie()}, fanart_tv={121361: sample_fanart_tv()})
    server = await aiohttp_server(fake.app)        # or: app = make_tmdb_app(...); app[FAKE_TMDB] is the fake
    TmdbProvider(fake.api_key, base_url=str(server.make_url("/3")),
                 image_base_url=str(server.make_url("/t/p/original")))
    FanartProvider(fake.fanart_key, base_url=str(server.make_url("/v3")))

Routes: /3/search/movie, /3/search/tv, /3/movie/{id}, /3/collection/{id}, /3/find/{external_id},
/3/tv/{id}, /3/tv/{id}/season/{n}, /3/tv/{id}/season/{n}/episode/{e}, /v3/movies/{tmdb or imdb id},
/v3/tv/{tvdb id}, and /t/p/original/<name> serving real image bytes: "-<W>x<H>" in the name sets the
size, ".png" gives a PNG, anything else a JPEG.

Auth: TMDB wants `?api_key=<fake.api_key>` or `Authorization: Bearer <fake.bearer_token>`;
fanart.tv wants `?api_key=<fake.fanart_key>`; otherwise 401 with the real error bodies.
Images need no key.

Behaviour: `language` picks an overview from a movie's/show's `_overviews` map;
`append_to_response` decides which appended parts are returned; `include_image_language`
filters images. Keys starting with "_" are fake-only and never served.

Inspection and faults: `fake.hits[path]` counts requests per path ("/3/movie/603");
`fake.calls` lists (path, query dict, Authorization header); `fake.fail(path, status=429,
retry_after=3, times=1)` answers the next `times` requests to `path` with that status
(500, 401, ...); `fake.fail(path, stall=0.5)` delays answers instead (client timeouts).
"""

from __future__ import annotations

import asyncio
import copy
import re
from collections import Counter
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from fakes.images import jpeg_bytes, png_bytes

FAKE_TMDB: web.AppKey[FakeTmdb] = web.AppKey("fake_tmdb")
APPENDABLE = ("credits", "images", "release_dates", "external_ids", "videos", "content_ratings")
_SIZE_RE = re.compile(r"-(\d{1,4})x(\d{1,4})\.\w+$")


@dataclass
class _Fault:
    """A scripted answer for the next `times` requests to one path."""

    status: int | None
    retry_after: float | None
    times: int
    stall: float


def _words(text: str) -> list[str]:
    """Lower-cased words of a title, punctuation dropped (the fake's own crude search)."""
    return re.sub(r"[^\w\s]", " ", text.lower()).split()


def _public(data: dict[str, Any]) -> dict[str, Any]:
    """Drop fake-only keys (those starting with "_")."""
    return {k: v for k, v in data.items() if not k.startswith("_")}


class FakeTmdb:
    """State of the fake: catalogue, keys, per-path hit counts and scripted faults."""

    def __init__(
        self,
        movies: dict[int, dict[str, Any]] | None = None,
        shows: dict[int, dict[str, Any]] | None = None,
        fanart_movies: dict[int | str, dict[str, Any]] | None = None,
        fanart_tv: dict[int, dict[str, Any]] | None = None,
        api_key: str = "fake-v3-key",
        bearer_token: str = "eyJhbGciOiJIUzI1NiJ9.eyJhdWQiOiJmYWtlIn0.c2lnbmF0dXJl",
        fanart_key: str = "fake-fanart-key",
    ) -> None:
        self.movies = movies or {}
        self.shows = shows or {}
        self.fanart_movies = {str(k): v for k, v in (fanart_movies or {}).items()}
        self.fanart_tv = {str(k): v for k, v in (fanart_tv or {}).items()}
        self.api_key = api_key
        self.bearer_token = bearer_token
        self.fanart_key = fanart_key
        self.hits: Counter[str] = Counter()
        self.calls: list[tuple[str, dict[str, str], str | None]] = []
        self._faults: dict[str, _Fault] = {}
        self.app = make_app(self)

    def fail(
        self,
        path: str,
        status: int | None = None,
        retry_after: float | None = None,
        times: int = 1,
        stall: float = 0.0,
    ) -> None:
        """Answer the next `times` requests to `path` with `status` (and Retry-After), or stall them."""
        self._faults[path] = _Fault(status, retry_after, times, stall)

    def hits_under(self, prefix: str) -> int:
        """Return how many requests went to paths starting with `prefix` ("/3/", "/v3/", "/t/p/")."""
        return sum(n for path, n in self.hits.items() if path.startswith(prefix))

    # --- middleware pieces ------------------------------------------------------------------

    async def _fault(self, request: web.Request) -> web.Response | None:
        """Apply a scripted fault to this request, if one is pending."""
        fault = self._faults.get(request.path)
        if fault is None or fault.times <= 0:
            return None
        fault.times -= 1
        if fault.stall:
            await asyncio.sleep(fault.stall)
        if fault.status is None:
            return None
        headers = {"Retry-After": f"{fault.retry_after:g}"} if fault.retry_after is not None else {}
        body = {"status_code": 25 if fault.status == 429 else 11, "status_message": "scripted failure"}
        return web.json_response(body, status=fault.status, headers=headers)

    def _authorised(self, request: web.Request) -> bool:
        """Check the TMDB or fanart.tv credentials of a request."""
        if request.path.startswith("/v3/"):
            return request.query.get("api_key") == self.fanart_key
        auth = request.headers.get("Authorization", "")
        return request.query.get("api_key") == self.api_key or auth == f"Bearer {self.bearer_token}"


def make_tmdb_app(
    movies: dict[int, dict[str, Any]] | None = None,
    shows: dict[int, dict[str, Any]] | None = None,
    fanart_movies: dict[int | str, dict[str, Any]] | None = None,
    fanart_tv: dict[int, dict[str, Any]] | None = None,
    **keys: str,
) -> web.Application:
    """Build the fake and return its app; the FakeTmdb is `app[FAKE_TMDB]`."""
    return FakeTmdb(movies, shows, fanart_movies, fanart_tv, **keys).app


def make_app(fake: FakeTmdb) -> web.Application:
    """Wire the routes of one FakeTmdb."""

    @web.middleware
    async def middleware(request: web.Request, handler: Any) -> web.StreamResponse:
        """Count, apply faults, check keys."""
        fake.hits[request.path] += 1
        fake.calls.append((request.path, dict(request.query), request.headers.get("Authorization")))
        scripted = await fake._fault(request)
        if scripted is not None:
            return scripted
        if not request.path.startswith("/t/p/") and not fake._authorised(request):
            if request.path.startswith("/v3/"):
                return web.json_response({"status": "error", "error message": "Not authorized"}, status=401)
            return web.json_response(
                {
                    "status_code": 7,
                    "success": False,
                    "status_message": "Invalid API key: You must be granted a valid key.",
                },
                status=401,
            )
        return await handler(request)

    app = web.Application(middlewares=[middleware])
    app[FAKE_TMDB] = fake
    routes = _Routes(fake)
    app.router.add_get("/3/search/movie", routes.search_movie)
    app.router.add_get("/3/search/tv", routes.search_tv)
    app.router.add_get("/3/movie/{id}", routes.movie)
    app.router.add_get("/3/collection/{id}", routes.collection)
    app.router.add_get("/3/find/{external_id}", routes.find)
    app.router.add_get("/3/tv/{id}", routes.tv)
    app.router.add_get("/3/tv/{id}/season/{season}", routes.season)
    app.router.add_get("/3/tv/{id}/season/{season}/episode/{episode}", routes.episode)
    app.router.add_get("/v3/movies/{id}", routes.fanart_movie)
    app.router.add_get("/v3/tv/{id}", routes.fanart_tv)
    app.router.add_get("/t/p/original/{name}", routes.image)
    return app


def _not_found() -> web.Response:
    """TMDB's 404 body."""
    return web.json_response(
        {
            "status_code": 34,
            "success": False,
            "status_message": "The resource you requested could not be found.",
        },
        status=404,
    )


class _Routes:
    """Handlers reading one FakeTmdb's catalogue."""

    def __init__(self, fake: FakeTmdb) -> None:
        self.fake = fake

    def _search(
        self,
        request: web.Request,
        items: dict[int, dict[str, Any]],
        tkey: str,
        okey: str,
        dkey: str,
        year_param: str,
    ) -> web.Response:
        """Return items whose title words start with every query word (and match the year), by popularity."""
        words = set(_words(request.query.get("query", "")))
        year = request.query.get(year_param)
        results = []
        for item in items.values():
            titles = set(_words(item.get(tkey, ""))) | set(_words(item.get(okey, "")))
            if not words or not all(any(t.startswith(w) for t in titles) for w in words):
                continue
            if year and not str(item.get(dkey, "")).startswith(year):
                continue
            results.append(
                {
                    k: item.get(k)
                    for k in (
                        "id",
                        tkey,
                        okey,
                        dkey,
                        "popularity",
                        "overview",
                        "poster_path",
                        "backdrop_path",
                    )
                }
            )
        results.sort(key=lambda r: -(r.get("popularity") or 0))
        return web.json_response(
            {"page": 1, "results": results, "total_pages": 1, "total_results": len(results)}
        )

    async def search_movie(self, request: web.Request) -> web.Response:
        """GET /3/search/movie?query=&year=."""
        return self._search(request, self.fake.movies, "title", "original_title", "release_date", "year")

    async def search_tv(self, request: web.Request) -> web.Response:
        """GET /3/search/tv?query=&first_air_date_year=."""
        return self._search(
            request, self.fake.shows, "name", "original_name", "first_air_date", "first_air_date_year"
        )

    def _details(self, request: web.Request, item: dict[str, Any]) -> dict[str, Any]:
        """Shape a details answer: language, appended parts, image language filter."""
        out = copy.deepcopy(_public(item))
        language = request.query.get("language", "en-US")
        if language in item.get("_overviews", {}):
            out["overview"] = item["_overviews"][language]
        wanted = set(filter(None, request.query.get("append_to_response", "").split(",")))
        for part in APPENDABLE:
            if part not in wanted:
                out.pop(part, None)
        langs = request.query.get("include_image_language")
        if langs and "images" in out:
            keep = {None if lang == "null" else lang for lang in langs.split(",")}
            out["images"] = {
                kind: [img for img in imgs if img.get("iso_639_1") in keep]
                for kind, imgs in out["images"].items()
            }
        return out

    async def movie(self, request: web.Request) -> web.Response:
        """GET /3/movie/{id}."""
        item = (
            self.fake.movies.get(int(request.match_info["id"]))
            if request.match_info["id"].isdigit()
            else None
        )
        return web.json_response(self._details(request, item)) if item else _not_found()

    async def collection(self, request: web.Request) -> web.Response:
        """GET /3/collection/{id}: built from the movies that belong to it."""
        cid = int(request.match_info["id"]) if request.match_info["id"].isdigit() else -1
        parts = [
            m for m in self.fake.movies.values() if (m.get("belongs_to_collection") or {}).get("id") == cid
        ]
        if not parts:
            return _not_found()
        coll = parts[0]["belongs_to_collection"]
        return web.json_response(
            {
                "id": cid,
                "name": coll["name"],
                "overview": parts[0].get("_collection_overview", ""),
                "parts": [{"id": m["id"], "title": m.get("title")} for m in parts],
            }
        )

    async def find(self, request: web.Request) -> web.Response:
        """GET /3/find/{external_id}?external_source=imdb_id|tvdb_id."""
        ext, source = request.match_info["external_id"], request.query.get("external_source")
        if source not in ("imdb_id", "tvdb_id"):
            return web.json_response(
                {"status_code": 22, "status_message": "Invalid external source"}, status=400
            )

        def matches(item: dict[str, Any]) -> bool:
            """True when the item carries this external id."""
            ids = {
                **item.get("external_ids", {}),
                "imdb_id": item.get("imdb_id") or item.get("external_ids", {}).get("imdb_id"),
            }
            return str(ids.get(source) or "") == ext

        movies = [
            {"id": m["id"], "title": m.get("title"), "release_date": m.get("release_date")}
            for m in self.fake.movies.values()
            if matches(m)
        ]
        shows = [
            {"id": s["id"], "name": s.get("name"), "first_air_date": s.get("first_air_date")}
            for s in self.fake.shows.values()
            if matches(s)
        ]
        return web.json_response(
            {
                "movie_results": movies,
                "tv_results": shows,
                "person_results": [],
                "tv_episode_results": [],
                "tv_season_results": [],
            }
        )

    def _show(self, request: web.Request) -> dict[str, Any] | None:
        """The show named in the path, or None."""
        sid = request.match_info["id"]
        return self.fake.shows.get(int(sid)) if sid.isdigit() else None

    async def tv(self, request: web.Request) -> web.Response:
        """GET /3/tv/{id}."""
        show = self._show(request)
        return web.json_response(self._details(request, show)) if show else _not_found()

    def _season(self, request: web.Request) -> dict[str, Any] | None:
        """The season named in the path, or None."""
        show = self._show(request)
        number = request.match_info["season"]
        return (show or {}).get("_seasons", {}).get(int(number)) if number.isdigit() else None

    async def season(self, request: web.Request) -> web.Response:
        """GET /3/tv/{id}/season/{n}: episodes without their appended parts."""
        season = self._season(request)
        if season is None:
            return _not_found()
        out = copy.deepcopy(_public(season))
        out["episodes"] = [
            {k: v for k, v in _public(ep).items() if k not in APPENDABLE} for ep in season.get("episodes", [])
        ]
        return web.json_response(out)

    async def episode(self, request: web.Request) -> web.Response:
        """GET /3/tv/{id}/season/{n}/episode/{e}."""
        season = self._season(request) or {}
        number = request.match_info["episode"]
        for ep in season.get("episodes", []):
            if number.isdigit() and ep.get("episode_number") == int(number):
                return web.json_response(self._details(request, ep))
        return _not_found()

    def _fanart(self, request: web.Request, item: dict[str, Any] | None) -> web.Response:
        """Serve a fanart.tv answer with image paths made absolute on this server."""
        if item is None:
            return web.json_response({"status": "error", "error message": "Not found"}, status=404)
        base = f"{request.scheme}://{request.host}"
        out = copy.deepcopy(item)
        for value in out.values():
            for image in value if isinstance(value, list) else []:
                if isinstance(image, dict) and str(image.get("url", "")).startswith("/"):
                    image["url"] = base + image["url"]
        return web.json_response(out)

    async def fanart_movie(self, request: web.Request) -> web.Response:
        """GET /v3/movies/{tmdb_id or imdb_id}."""
        ident = request.match_info["id"]
        item = self.fake.fanart_movies.get(ident) or next(
            (
                v
                for v in self.fake.fanart_movies.values()
                if ident in (str(v.get("tmdb_id")), v.get("imdb_id"))
            ),
            None,
        )
        return self._fanart(request, item)

    async def fanart_tv(self, request: web.Request) -> web.Response:
        """GET /v3/tv/{tvdb_id}."""
        return self._fanart(request, self.fake.fanart_tv.get(request.match_info["id"]))

    async def image(self, request: web.Request) -> web.Response:
        """GET /t/p/original/<name>: a real PNG or JPEG of the size written in the name."""
        name = request.match_info["name"]
        match = _SIZE_RE.search(name)
        width, height = (int(match.group(1)), int(match.group(2))) if match else (300, 450)
        if width < 1 or height < 1:
            return web.Response(status=404)
        shade = sum(name.encode()) % 200  # different files look different
        if name.lower().endswith(".png"):
            return web.Response(
                body=png_bytes(width, height, (shade, 90, 160), alpha=255), content_type="image/png"
            )
        return web.Response(body=jpeg_bytes(width, height, (shade, 60, 120)), content_type="image/jpeg")


# --- sample builders: realistic TMDB / fanart.tv JSON -------------------------------------------


def _slug(text: str) -> str:
    """File-name-safe form of a title."""
    return "-".join(_words(text)) or "item"


def _image(
    slug: str,
    kind: str,
    lang: str | None,
    n: int,
    size: tuple[int, int],
    votes: int,
    average: float,
    ext: str = "jpg",
) -> dict[str, Any]:
    """One TMDB image entry whose file name carries its size."""
    w, h = size
    return {
        "aspect_ratio": round(w / h, 3),
        "file_path": f"/{slug}-{kind}-{lang or 'xx'}-{n}-{w}x{h}.{ext}",
        "height": h,
        "width": w,
        "iso_639_1": lang,
        "vote_average": average,
        "vote_count": votes,
    }


def sample_images(slug: str) -> dict[str, list[dict[str, Any]]]:
    """Posters, backdrops and logos in several languages and sizes (one poster too small to use)."""
    return {
        "posters": [
            _image(slug, "poster", "en", 1, (1000, 1500), 10, 5.5),
            _image(slug, "poster", "en", 2, (2000, 3000), 10, 5.3),
            _image(slug, "poster", "de", 1, (1000, 1500), 20, 5.6),
            _image(slug, "poster", None, 1, (1000, 1500), 5, 5.2),
            _image(slug, "poster", "en", 3, (200, 300), 50, 6.0),
        ],
        "backdrops": [
            _image(slug, "backdrop", None, 1, (1920, 1080), 8, 5.4),
            _image(slug, "backdrop", None, 2, (3840, 2160), 8, 5.4),
            _image(slug, "backdrop", "en", 1, (1920, 1080), 12, 5.5),
            _image(slug, "backdrop", "fr", 1, (3840, 2160), 2, 5.1),
        ],
        "logos": [
            _image(slug, "logo", "en", 1, (800, 310), 4, 5.3, "png"),
            _image(slug, "logo", "de", 1, (800, 310), 6, 5.3, "png"),
        ],
    }


def _people(slug: str, count: int) -> list[dict[str, Any]]:
    """A cast list of `count` actors, billed in order."""
    return [
        {
            "id": 1000 + i,
            "name": f"Actor {i} {slug}",
            "character": f"Role {i}",
            "order": i,
            "profile_path": f"/{slug}-actor-{i}-300x450.jpg" if i % 5 else None,
        }
        for i in range(count)
    ]


def sample_movie(
    tmdb_id: int = 603,
    title: str = "The Matrix",
    year: int = 1999,
    *,
    imdb_id: str | None = "tt0133093",
    original_title: str | None = None,
    popularity: float = 80.0,
    certification: str = "R",
    overview: str = "Set in the 22nd century, The Matrix tells the story of a computer hacker.",
    overviews: dict[str, str] | None = None,
    collection: tuple[int, str] | None = (2344, "The Matrix Collection"),
    collection_overview: str = "The Matrix collection follows Neo.",
    trailer: str | None = "vKQi3bBA1y8",
    cast: int = 25,
    vote_average: float = 8.2,
    vote_count: int = 24000,
) -> dict[str, Any]:
    """Build a /movie/{id} answer with credits, images, release_dates, external_ids, videos.

    `overviews` maps a language ("de-DE") to its overview ("" = untranslated); `collection`
    is (id, name) or None.
    """
    slug = _slug(title)
    release = f"{year}-03-30"
    return {
        "id": tmdb_id,
        "imdb_id": imdb_id,
        "title": title,
        "original_title": original_title or title,
        "original_language": "en",
        "release_date": release,
        "popularity": popularity,
        "overview": overview,
        "tagline": f"{title}: believe the unbelievable.",
        "runtime": 136,
        "status": "Released",
        "vote_average": vote_average,
        "vote_count": vote_count,
        "poster_path": f"/{slug}-poster-en-1-1000x1500.jpg",
        "backdrop_path": f"/{slug}-backdrop-xx-1-1920x1080.jpg",
        "genres": [{"id": 28, "name": "Action"}, {"id": 878, "name": "Science Fiction"}],
        "production_countries": [{"iso_3166_1": "US", "name": "United States of America"}],
        "production_companies": [
            {"id": 79, "name": "Village Roadshow Pictures"},
            {"id": 174, "name": "Warner Bros. Pictures"},
        ],
        "belongs_to_collection": (
            {"id": collection[0], "name": collection[1], "poster_path": None, "backdrop_path": None}
            if collection
            else None
        ),
        "credits": {
            "cast": list(reversed(_people(slug, cast))),  # TMDB order is by `order`, not list position
            "crew": [
                {"id": 9339, "name": "Lana Wachowski", "job": "Director", "department": "Directing"},
                {"id": 9340, "name": "Lilly Wachowski", "job": "Director", "department": "Directing"},
                {"id": 9339, "name": "Lana Wachowski", "job": "Writer", "department": "Writing"},
                {"id": 9341, "name": "Joel Silver", "job": "Producer", "department": "Production"},
            ],
        },
        "images": sample_images(slug),
        "release_dates": {
            "results": [
                {
                    "iso_3166_1": "DE",
                    "release_dates": [{"certification": "16", "type": 3, "release_date": release}],
                },
                {
                    "iso_3166_1": "US",
                    "release_dates": [
                        {"certification": "", "type": 1, "release_date": release},
                        {"certification": certification, "type": 3, "release_date": release},
                    ],
                },
            ]
        },
        "external_ids": {"imdb_id": imdb_id, "wikidata_id": "Q83495"},
        "videos": {
            "results": (
                [
                    {"site": "YouTube", "type": "Teaser", "key": "teaser0001", "iso_639_1": "en"},
                    {"site": "Vimeo", "type": "Trailer", "key": "vimeo0001", "iso_639_1": "en"},
                    {"site": "YouTube", "type": "Trailer", "key": trailer, "iso_639_1": "en"},
                ]
                if trailer
                else []
            )
        },
        "_overviews": overviews or {},
        "_collection_overview": collection_overview,
    }


def sample_show(
    tmdb_id: int = 1399,
    name: str = "Game of Thrones",
    year: int = 2011,
    *,
    tvdb_id: int | None = 121361,
    imdb_id: str | None = "tt0944947",
    popularity: float = 300.0,
    rating: str = "TV-MA",
    seasons: int = 2,
    episodes: int = 3,
    overview: str = "Seven noble families fight for control of the mythical land of Westeros.",
    overviews: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Build a /tv/{id} answer (credits, images, external_ids, content_ratings) with `_seasons`."""
    slug = _slug(name)
    season_data = {}
    for s in range(1, seasons + 1):
        eps = []
        for e in range(1, episodes + 1):
            aired = f"{year + s - 1}-04-{e:02d}"
            eps.append(
                {
                    "id": tmdb_id * 1000 + s * 100 + e,
                    "name": f"{name} S{s:02d}E{e:02d}",
                    "overview": f"Episode {e}.",
                    "air_date": aired,
                    "season_number": s,
                    "episode_number": e,
                    "runtime": 60,
                    "vote_average": 8.0,
                    "vote_count": 100 + e,
                    "still_path": f"/{slug}-still-{s}-{e}-1920x1080.jpg",
                    "crew": [
                        {"id": 44797, "name": "Tim Van Patten", "job": "Director"},
                        {"id": 9813, "name": "David Benioff", "job": "Writer"},
                    ],
                    "guest_stars": [
                        {"id": 5000 + e, "name": f"Guest {e}", "character": f"Guest role {e}", "order": 500}
                    ],
                    "credits": {
                        "cast": _people(slug, 3),
                        "crew": [],
                        "guest_stars": [
                            {
                                "id": 5000 + e,
                                "name": f"Guest {e}",
                                "character": f"Guest role {e}",
                                "order": 500,
                            }
                        ],
                    },
                    "external_ids": {
                        "imdb_id": f"tt{1480055 + s * 100 + e}",
                        "tvdb_id": 3254641 + s * 100 + e,
                    },
                    "images": {"stills": [_image(slug, f"still-{s}-{e}", None, 2, (1280, 720), 3, 5.0)]},
                }
            )
        season_data[s] = {
            "id": tmdb_id * 10 + s,
            "name": f"Season {s}",
            "season_number": s,
            "air_date": f"{year + s - 1}-04-01",
            "overview": f"Season {s} overview.",
            "poster_path": f"/{slug}-season-{s}-1000x1500.jpg",
            "episodes": eps,
        }
    return {
        "id": tmdb_id,
        "name": name,
        "original_name": name,
        "first_air_date": f"{year}-04-17",
        "popularity": popularity,
        "overview": overview,
        "tagline": "Winter is coming.",
        "status": "Ended",
        "episode_run_time": [60],
        "vote_average": 8.4,
        "vote_count": 22000,
        "genres": [{"id": 10765, "name": "Sci-Fi & Fantasy"}, {"id": 18, "name": "Drama"}],
        "networks": [{"id": 49, "name": "HBO"}],
        "origin_country": ["US"],
        "production_countries": [{"iso_3166_1": "US", "name": "United States of America"}],
        "created_by": [{"id": 9813, "name": "David Benioff"}, {"id": 228068, "name": "D. B. Weiss"}],
        "poster_path": f"/{slug}-poster-en-1-1000x1500.jpg",
        "backdrop_path": f"/{slug}-backdrop-xx-1-1920x1080.jpg",
        "seasons": [
            {
                "season_number": s,
                "name": d["name"],
                "episode_count": episodes,
                "poster_path": d["poster_path"],
                "air_date": d["air_date"],
            }
            for s, d in season_data.items()
        ],
        "credits": {"cast": _people(slug, 25), "crew": []},
        "images": sample_images(slug),
        "external_ids": {"imdb_id": imdb_id, "tvdb_id": tvdb_id},
        "content_ratings": {
            "results": [{"iso_3166_1": "DE", "rating": "16"}, {"iso_3166_1": "US", "rating": rating}]
        },
        "_overviews": overviews or {},
        "_seasons": season_data,
    }


def _fanart_image(
    kind: str,
    ident: Any,
    n: int,
    lang: str,
    likes: int,
    size: tuple[int, int],
    ext: str = "png",
    **extra: str,
) -> dict[str, Any]:
    """One fanart.tv image entry; the URL is a path the fake serves and makes absolute."""
    w, h = size
    return {
        "id": str(n),
        "url": f"/t/p/original/fanart-{ident}-{kind}-{n}-{w}x{h}.{ext}",
        "lang": lang,
        "likes": str(likes),
        **extra,
    }


def sample_fanart_movie(
    tmdb_id: int = 603, imdb_id: str = "tt0133093", name: str = "The Matrix"
) -> dict[str, Any]:
    """Build a fanart.tv /movies/{id} answer with every artwork kind, several languages and likes."""
    i = tmdb_id
    return {
        "name": name,
        "tmdb_id": str(tmdb_id),
        "imdb_id": imdb_id,
        "hdmovielogo": [
            _fanart_image("hdmovielogo", i, 1, "en", 7, (800, 310)),
            _fanart_image("hdmovielogo", i, 2, "de", 9, (800, 310)),
        ],
        "movielogo": [_fanart_image("movielogo", i, 3, "en", 2, (400, 155))],
        "hdmovieclearart": [_fanart_image("hdmovieclearart", i, 4, "en", 3, (1000, 562))],
        "movieart": [_fanart_image("movieart", i, 5, "en", 1, (500, 281))],
        "moviedisc": [_fanart_image("moviedisc", i, 6, "en", 2, (1000, 1000), disc="1", disc_type="bluray")],
        "moviebanner": [_fanart_image("moviebanner", i, 7, "en", 1, (1000, 185), "jpg")],
        "moviethumb": [_fanart_image("moviethumb", i, 8, "en", 4, (1000, 562), "jpg")],
        "movieposter": [_fanart_image("movieposter", i, 9, "en", 3, (1000, 1426), "jpg")],
        "moviebackground": [
            _fanart_image("moviebackground", i, 10, "", 5, (1920, 1080), "jpg"),
            _fanart_image("moviebackground", i, 11, "00", 8, (1920, 1080), "jpg"),
        ],
    }


def sample_fanart_tv(tvdb_id: int = 121361, name: str = "Game of Thrones") -> dict[str, Any]:
    """Build a fanart.tv /tv/{id} answer, including season posters (numbered, specials and "all")."""
    i = tvdb_id
    return {
        "name": name,
        "thetvdb_id": str(tvdb_id),
        "hdtvlogo": [_fanart_image("hdtvlogo", i, 1, "en", 10, (800, 310))],
        "clearlogo": [_fanart_image("clearlogo", i, 2, "en", 3, (400, 155))],
        "hdclearart": [_fanart_image("hdclearart", i, 3, "en", 4, (1000, 562))],
        "tvbanner": [_fanart_image("tvbanner", i, 4, "en", 2, (1000, 185), "jpg")],
        "tvthumb": [_fanart_image("tvthumb", i, 5, "en", 2, (500, 281), "jpg")],
        "tvposter": [_fanart_image("tvposter", i, 6, "en", 6, (1000, 1426), "jpg")],
        "showbackground": [_fanart_image("showbackground", i, 7, "", 9, (1920, 1080), "jpg", season="all")],
        "seasonposter": [
            _fanart_image("seasonposter", i, 8, "en", 3, (1000, 1426), "jpg", season="1"),
            _fanart_image("seasonposter", i, 9, "en", 1, (1000, 1426), "jpg", season="0"),
            _fanart_image("seasonposter", i, 10, "en", 1, (1000, 1426), "jpg", season="all"),
        ],
    }
