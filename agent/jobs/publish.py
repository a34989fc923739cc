"""`publish` jobs: publish one item (agent.publish), then queue the players' update and any playback restore."""

from __future__ import annotations

from typing import Any, Final

from agent.players.jobs import NotifyPayload, RestorePayload, enqueue_notify, enqueue_restore
from agent.publish import publish_item
from agent.publish.request import PublishRequest
from agent.queue import JobContext
from agent.services import Services
from agent.store import players

IMAGE_SUFFIXES: Final = (".jpg", ".jpeg", ".png", ".webp", ".tbn", ".gif")


def register(services: Services) -> None:
    """Register the publish handler."""

    async def handle(ctx: JobContext) -> dict[str, Any]:
        req = PublishRequest.from_payload(ctx.payload)
        await ctx.progress(0.1, f"publishing {req.entity} {req.id}")
        result = await publish_item(services.publisher, services.cfg, services.emit, req.entity, req.id)
        if "skipped" in result:
            return result
        update = req.update or ("Modified" if result["written"] or result["removed"] else None)
        # on a shared store the players may be another agent's (player jobs run on any agent that has them)
        if update and (services.cfg.players or (services.cfg.shared_store
                                                and await services.db.read(players.any_player))):
            art = tuple(p for p in [*result["written"], *result["removed"]] if p.lower().endswith(IMAGE_SUFFIXES))
            job = await enqueue_notify(ctx, NotifyPayload(entity=req.entity, id=req.id, update=update, art=art),
                                       priority=req.priority, depends_on=[ctx.job.id])
            result["notify_job"] = job.id
            if await services.db.read(players.has_open_capture, req.entity, req.id, services.clock.now()):
                restore = await enqueue_restore(ctx, RestorePayload(entity=req.entity, id=req.id),
                                                depends_on=[job.id])
                result["restore_job"] = restore.id
        return result

    services.queue.register("publish", handle)
