"""The housekeeping job types: `cleanup` (an item gone from its library) and `cache_gc` (the artwork cache's
garbage collection), each with its payload type and its enqueue call, which the domain (webhooks, the schedule)
uses without importing agent.jobs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from agent.errors import PermanentFailure
from agent.queue import Job, JobContext, Priority, Queue

CLEANUP: Final = "cleanup"
CACHE_GC: Final = "cache_gc"
ENTITIES: Final = ("movie", "series", "episode")

Enqueuer = Queue | JobContext  # a follow-up enqueued through a handler's context keeps its chain


@dataclass(frozen=True, kw_only=True)
class CleanupPayload:
    """Mark an item missing once its files are gone: by `id`, else the movies or episodes whose file is in
    `files`; `priority` is passed on to the players' Deleted notification."""

    entity: str
    id: int | None = None
    files: tuple[str, ...] = ()
    reason: str | None = None
    priority: int | None = None

    @classmethod
    def from_payload(cls, payload: dict[str, Any]) -> CleanupPayload:
        """Read a queued payload; PermanentFailure names the first bad value."""
        entity = payload.get("entity")
        if entity not in ENTITIES:
            raise PermanentFailure(f"cleanup needs entity movie, series or episode, got {entity!r}")
        item_id = payload.get("id")
        if item_id is not None and (not isinstance(item_id, int) or isinstance(item_id, bool)):
            raise PermanentFailure(f"cleanup id must be an integer, got {item_id!r}")
        files = payload.get("files") or []
        if not isinstance(files, list) or not all(isinstance(f, str) for f in files):
            raise PermanentFailure("cleanup files must be a list of paths")
        if item_id is None and not files:
            raise PermanentFailure("cleanup needs an id or files")
        reason = payload.get("reason")
        if reason is not None and not isinstance(reason, str):
            raise PermanentFailure(f"cleanup reason must be text, got {reason!r}")
        priority = payload.get("priority")
        if priority is not None and (not isinstance(priority, int) or isinstance(priority, bool)):
            raise PermanentFailure(f"cleanup priority must be an integer, got {priority!r}")
        return cls(entity=entity, id=item_id, files=tuple(files), reason=reason, priority=priority)

    def to_payload(self) -> dict[str, Any]:
        """The JSON payload queued for this job (absent values left out)."""
        values = {"entity": self.entity, "id": self.id, "files": list(self.files), "reason": self.reason,
                  "priority": self.priority}
        return {k: v for k, v in values.items() if v not in (None, [])}


async def enqueue_cleanup(queue: Enqueuer, payload: CleanupPayload) -> Job:
    """Queue one cleanup job at the payload's priority (LOW without one); one pending job per item."""
    target = payload.id if payload.id is not None else ",".join(payload.files)
    return await queue.enqueue(CLEANUP, payload.to_payload(),
                               priority=Priority.LOW if payload.priority is None else payload.priority,
                               dedupe_key=f"cleanup:{payload.entity}:{target}")


@dataclass(frozen=True)
class CacheGcPayload:
    """cache_gc takes no parameters: the cache's grace period and baselines come from its configuration."""

    @classmethod
    def from_payload(cls, payload: dict[str, Any]) -> CacheGcPayload:
        """Read a queued payload (its keys, if any, mean nothing to the GC)."""
        return cls()

    def to_payload(self) -> dict[str, Any]:
        """The JSON payload queued for this job: always empty."""
        return {}


async def enqueue_cache_gc(queue: Enqueuer) -> Job:
    """Queue the cache's GC at LOW priority; a pending one is reused."""
    return await queue.enqueue(CACHE_GC, CacheGcPayload().to_payload(), priority=Priority.LOW,
                               dedupe_key=CACHE_GC)
