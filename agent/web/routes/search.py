"""GET /api/search?entity=movie|series&q=&year=: the provider's candidates for Fix match."""

from __future__ import annotations

from typing import Final

from aiohttp import web

from agent.errors import AgentError, Conflict, UserError
from agent.web.keys import services_of
from agent.web.params import query_int

ENTITIES: Final = ("movie", "series")
MAX_RESULTS: Final = 20


class _Upstream(AgentError):
    """The provider failed; the caller did nothing wrong."""

    status = 502


def setup(app: web.Application) -> None:
    """Register the search route."""

    async def search(request: web.Request) -> web.Response:
        services = services_of(request)
        entity = request.query.get("entity") or "movie"
        if entity not in ENTITIES:
            raise UserError(f"unknown entity {entity!r} (use {' or '.join(ENTITIES)})")
        text = request.query.get("q", "").strip()
        if not text:
            raise UserError('search needs a title: ?q=<title>[&year=YYYY]')
        if len(text) > 300:
            raise UserError("the search title is longer than 300 characters")
        year = query_int(request, "year", 0, 0, 2200) or None
        tmdb = services.providers.tmdb
        if tmdb is None:
            where = services.cfg.path or "the config file"
            raise Conflict(f"searching needs a TMDB API key: set providers.tmdb.api_key in {where} "
                           "and restart the agent")
        try:
            found = await (tmdb.search_movie(text, year) if entity == "movie" else tmdb.search_tv(text, year))
        except UserError:
            raise
        except AgentError as exc:  # TMDB unreachable, rate limited or refusing the key: say so, as a 502
            raise _Upstream(f"TMDB search failed: {exc.message}") from None
        return web.json_response({"items": found[:MAX_RESULTS], "total": len(found)})

    app.router.add_get("/api/search", search)
