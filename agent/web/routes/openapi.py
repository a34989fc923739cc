"""GET /api/openapi.json: the OpenAPI reference (no key needed)."""

from __future__ import annotations

import json

from aiohttp import web

from agent.web.openapi import document


def setup(app: web.Application) -> None:
    """Register the OpenAPI route."""
    body = json.dumps(document(), indent=1)

    async def openapi(request: web.Request) -> web.Response:
        """Serve the document."""
        return web.Response(text=body, content_type="application/json", headers={"Cache-Control": "no-cache"})

    app.router.add_get("/api/openapi.json", openapi)
