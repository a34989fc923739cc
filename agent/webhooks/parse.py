"""Which parser reads which sender's body: /api/webhooks/{source} -> one fitted WebhookEvent."""

from __future__ import annotations

from collections.abc import Callable

from agent.errors import NotFound
from agent.webhooks.jellyfin import parse_jellyfin
from agent.webhooks.model import WebhookEvent
from agent.webhooks.plex import parse_plex
from agent.webhooks.radarr import parse_radarr
from agent.webhooks.sonarr import parse_sonarr
from agent.webhooks.values import fit_event

Parser = Callable[[bytes, str], WebhookEvent]

PARSERS: dict[str, Parser] = {
    "radarr": parse_radarr,
    "sonarr": parse_sonarr,
    "jellyfin": parse_jellyfin,
    "plex": parse_plex,
}


def parse_webhook(source: str, body: bytes, content_type: str) -> WebhookEvent:
    """Parse a body posted to /api/webhooks/{source}; NotFound for an unknown source."""
    parser = PARSERS.get(source)
    if parser is None:
        raise NotFound(f"unknown webhook source '{source}' (known: {', '.join(PARSERS)})")
    return fit_event(parser(body, content_type))
