"""One handler module per job type; `register_all` wires each to the queue of one agent's Services."""

from __future__ import annotations

from agent.jobs import artwork, enrich, maintenance, notify, playback, publish, scan, webhook
from agent.services import Services

MODULES = (scan, enrich, artwork, publish, notify, webhook, playback, maintenance)


def register_all(services: Services) -> None:
    """Let each handler module register its job types with `services.queue`."""
    for module in MODULES:
        module.register(services)
