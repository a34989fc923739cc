"""`enrich` jobs: fill an item from providers and hints, then queue its publish."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from agent.enrich import enrich_item
from agent.queue import JobContext
from agent.queue.model import Priority

if TYPE_CHECKING:
    from agent.service import Agent


async def enqueue_enrich(agent: Agent, entity: str, item_id: int, *, priority: int = Priority.NORMAL,
                         hints: dict[str, Any] | None = None, update: str | None = None,
                         refresh: bool = False) -> Any:
    """Queue enrichment of one item (deduplicated against a pending one of the same kind).

    `refresh`: values held from another tool's NFO are dropped and providers update them.
    """
    payload: dict[str, Any] = {"entity": entity, "id": item_id, "priority": priority}
    if hints:
        payload["hints"] = hints
    if refresh:
        payload["refresh"] = True
    if update:
        payload["update"] = update
    key = f"{'refresh' if refresh else 'enrich'}:{entity}:{item_id}"
    return await agent.queue.enqueue("enrich", payload, priority=priority, dedupe_key=key)


def register(agent: Agent) -> None:
    """Register the enrich handler."""

    async def handle(ctx: JobContext) -> dict[str, Any]:
        p = ctx.payload
        entity, item_id = p["entity"], int(p["id"])
        await ctx.progress(0.1, f"enriching {entity} {item_id}")
        report = await enrich_item(agent, entity, item_id, p.get("hints"), refresh=bool(p.get("refresh")))
        ctx.check_cancelled()
        priority = int(p.get("priority") or Priority.NORMAL)
        follow = {"entity": entity, "id": item_id, "priority": priority}
        if p.get("update"):
            follow["update"] = p["update"]
        job = await ctx.enqueue("publish", follow, priority=priority, depends_on=[ctx.job.id],
                                dedupe_key=f"publish:{entity}:{item_id}")
        return {**report.to_dict(), "publish_job": job.id}

    agent.queue.register("enrich", handle)
