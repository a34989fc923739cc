"""`artwork` jobs: fetch one item's remote artwork (agent.artwork), republish it when anything changed, and keep
why artwork is missing once the retries are spent."""

from __future__ import annotations

from typing import Any

from agent.artwork import ARTWORK, Artworker, ArtworkRequest
from agent.errors import RetryLater
from agent.publish.request import PublishRequest, enqueue_publish
from agent.queue import JobContext
from agent.services import Services


def register(services: Services) -> None:
    """Register the artwork handler."""
    artworker = Artworker(db=services.db, cfg=services.cfg, clock=services.clock, cache=services.cache,
                          providers=services.providers, emit=services.emit)

    async def handle(ctx: JobContext) -> dict[str, Any]:
        req = ArtworkRequest.from_payload(ctx.payload)
        await ctx.progress(0.1, f"artwork for {req.entity} {req.id}")
        report = await artworker.fetch_item(req)
        ctx.check_cancelled()
        out = report.to_dict()
        if report.artwork:
            job = await enqueue_publish(ctx, PublishRequest(req.entity, req.id, req.priority))
            out["publish_job"] = job.id
        if report.transient and ctx.job.attempts <= ctx.job.max_retries:
            raise RetryLater(f"artwork for {req.entity} {req.id}: {report.error}")  # what was fetched is kept
        if report.error is not None or report.had_error:  # nothing to write when it was and stays fine
            await artworker.record_error(req.entity, req.id, report.error)
        return out

    services.queue.register(ARTWORK, handle)
