"""Long-running services started with the server: folder watchers, player listeners, periodic jobs."""

from __future__ import annotations

import contextlib
import importlib
import logging
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from agent.service import Agent

log = logging.getLogger("agent")
SERVICE_MODULES = ("agent.library.service", "agent.players.service", "agent.jobs.maintenance")


async def start_services(agent: Agent) -> None:
    """Start every service module present (each exposes async start(agent) / stop(agent))."""
    for name in SERVICE_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise
            continue
        if hasattr(module, "start"):
            await module.start(agent)
            agent.services[name] = module


async def stop_services(agent: Agent) -> None:
    """Stop services in reverse order; one failing does not stop the others."""
    for name, module in reversed(list(agent.services.items())):
        with contextlib.suppress(Exception):
            await module.stop(agent)
        agent.services.pop(name, None)
