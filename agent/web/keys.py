"""Typed keys for what is stored on the aiohttp app."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

if TYPE_CHECKING:
    from agent.service import Agent

AGENT: web.AppKey[Agent] = web.AppKey("agent")
