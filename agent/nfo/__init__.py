"""Read any NFO into the agent's field model and render Kodi v20+ NFOs from editable templates."""

from __future__ import annotations

from agent.nfo.ids import nfo_ids
from agent.nfo.model import KINDS, NfoError, NfoResult
from agent.nfo.parse import parse_nfo
from agent.nfo.render import render_episodes, render_nfo
from agent.nfo.tags import kodi_trailer
from agent.nfo.template import DEFAULT_TEMPLATE_DIR, load_template

__all__ = [
    "DEFAULT_TEMPLATE_DIR",
    "KINDS",
    "NfoError",
    "NfoResult",
    "kodi_trailer",
    "load_template",
    "nfo_ids",
    "parse_nfo",
    "render_episodes",
    "render_nfo",
]
