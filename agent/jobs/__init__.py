"""One handler per job type, wired to the queue by `register_all`."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from agent.service import Agent

HANDLER_MODULES = ("scan", "enrich", "publish", "notify", "webhook", "playback", "maintenance")


def register_all(agent: Agent) -> None:
    """Import each handler module and let it register its job types."""
    for name in HANDLER_MODULES:
        try:
            module = importlib.import_module(f"agent.jobs.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"agent.jobs.{name}":
                raise
            continue
        module.register(agent)
