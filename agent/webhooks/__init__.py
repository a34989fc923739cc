"""Turn Radarr, Sonarr, Jellyfin and Plex webhook bodies into one normalised WebhookEvent.

The package re-exports the parsers and the event types; its own modules import each other by
module (agent.webhooks.arr, .model, .values, .parse), never through this package, so no cycle
runs through here.
"""

from __future__ import annotations

from agent.webhooks.jellyfin import parse_jellyfin
from agent.webhooks.model import (
    NO_WORK_ACTIONS,
    Action,
    EpisodeInfo,
    ImageRef,
    PlaybackInfo,
    WebhookEvent,
)
from agent.webhooks.parse import PARSERS, Parser, parse_webhook
from agent.webhooks.plex import parse_plex
from agent.webhooks.radarr import parse_radarr
from agent.webhooks.sonarr import parse_sonarr

__all__ = [
    "NO_WORK_ACTIONS",
    "PARSERS",
    "Action",
    "EpisodeInfo",
    "ImageRef",
    "Parser",
    "PlaybackInfo",
    "WebhookEvent",
    "parse_jellyfin",
    "parse_plex",
    "parse_radarr",
    "parse_sonarr",
    "parse_webhook",
]
