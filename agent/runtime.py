"""Long-running services started with the server: folder watchers, player listeners, periodic jobs."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from agent.service import Agent

log = logging.getLogger("agent")


async def start_services(agent: Agent) -> None:
    """Start the watchers, the player links and the maintenance schedule, in that order."""
    from agent.jobs import maintenance
    from agent.library import service as library_service
    from agent.players import service as players_service

    for name, module in (("library", library_service), ("players", players_service),
                         ("maintenance", maintenance)):
        await module.start(agent)
        agent.services[f"runtime:{name}"] = module


async def stop_services(agent: Agent) -> None:
    """Stop services in reverse order; one failing does not stop the others."""
    started = [name for name in agent.services if name.startswith("runtime:")]
    for name in reversed(started):
        module = agent.services.pop(name)
        try:
            await module.stop(agent)
        except Exception:  # one failing must not keep the others running
            log.exception("stopping %s failed", name.removeprefix("runtime:"))
