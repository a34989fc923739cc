"""Typed keys for what is stored on the aiohttp app, the accessor routes use, and the web constants."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from aiohttp import web

from agent.services import Services
from agent.web.hub import Hub

SERVICES: web.AppKey[Services] = web.AppKey("services", Services)
HUB: web.AppKey[Hub] = web.AppKey("hub", Hub)
MAX_BODY = 1024 * 1024  # webhooks and PATCH bodies: 1 MiB


def services_of(request: web.Request) -> Services:
    """The running agent's Services (set once startup has built them)."""
    return request.app[SERVICES]


def static_dir() -> Path:
    """The dashboard's files inside the package."""
    return Path(str(resources.files("agent.web").joinpath("static")))
