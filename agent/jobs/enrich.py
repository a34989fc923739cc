"""`enrich` jobs: fill an item's fields from providers and hints (agent.enrich), then queue its publish at once
and its artwork as a step of its own (agent.artwork), both in the item's chain: they run before the next
item's lookup starts."""

from __future__ import annotations

from typing import Any

from agent.artwork import ArtworkRequest, enqueue_artwork
from agent.enrich import Enricher, EnrichRequest
from agent.publish.request import PublishRequest, enqueue_publish
from agent.queue import JobContext
from agent.services import Services


def register(services: Services) -> None:
    """Register the enrich handler."""
    enricher = Enricher(db=services.db, cfg=services.cfg, clock=services.clock, cache=services.cache,
                        providers=services.providers, prober=services.prober, emit=services.emit)

    async def handle(ctx: JobContext) -> dict[str, Any]:
        req = EnrichRequest.from_payload(ctx.payload)
        await ctx.progress(0.1, f"enriching {req.entity} {req.id}")
        report = await enricher.enrich_item(req.entity, req.id, req.hints, refresh=req.refresh)
        ctx.check_cancelled()
        job = await enqueue_publish(ctx, PublishRequest(req.entity, req.id, req.priority, req.update),
                                    depends_on=[ctx.job.id])
        art = await enqueue_artwork(ctx, ArtworkRequest(req.entity, req.id, req.priority, req.hints.images))
        return {**report.to_dict(), "publish_job": job.id, "artwork_job": art.id}

    services.queue.register("enrich", handle)
