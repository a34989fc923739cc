"""One handler per job type, wired to the queue by `register_all`."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from agent.service import Agent


def register_all(agent: Agent) -> None:
    """Let each handler module register its job types."""
    from agent.jobs import enrich, maintenance, notify, playback, publish, scan, webhook

    for module in (scan, enrich, publish, notify, webhook, playback, maintenance):
        module.register(agent)
