"""A `publish` job's payload as a type, and its enqueue call (the domain and the web queue publishes through it)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from agent.errors import PermanentFailure
from agent.queue import JobContext, Queue
from agent.queue.model import Job, Priority
from agent.store.media import TABLES


@dataclass(frozen=True)
class PublishRequest:
    """Publish one item; `update` is the players' update kind to send afterwards (else "Modified" if files changed)."""

    entity: str
    id: int
    priority: int = Priority.NORMAL
    update: str | None = None

    @property
    def dedupe_key(self) -> str:
        """One pending publish per item."""
        return f"publish:{self.entity}:{self.id}"

    def to_payload(self) -> dict[str, Any]:
        """The job payload: {"entity", "id", "priority"[, "update"]}."""
        out: dict[str, Any] = {"entity": self.entity, "id": self.id, "priority": self.priority}
        if self.update:
            out["update"] = self.update
        return out

    @classmethod
    def from_payload(cls, payload: dict[str, Any]) -> PublishRequest:
        """Read a job payload; PermanentFailure naming what is wrong with it."""
        entity, item_id = payload.get("entity"), payload.get("id")
        if entity not in TABLES:
            raise PermanentFailure(f"unknown entity {entity!r}")
        try:
            number = int(item_id)  # type: ignore[arg-type]
            priority = int(payload.get("priority") or Priority.NORMAL)
        except (TypeError, ValueError):
            raise PermanentFailure(f"publish payload needs an integer id and priority, got {payload!r}") from None
        update = payload.get("update")
        if update is not None and not isinstance(update, str):
            raise PermanentFailure(f"publish payload's update must be a string, got {update!r}")
        return cls(entity, number, priority, update or None)


async def enqueue_publish(queue: Queue | JobContext, request: PublishRequest, *, depends_on: Sequence[int] = ()
                          ) -> Job:
    """Queue a publish (deduplicated against a pending one of the same item); from a handler, pass its context.

    Its lock key is the dedupe key: a publish queued while the item's last one runs (the artwork step's,
    after the fields') waits for it rather than writing the same files at the same time.
    """
    return await queue.enqueue("publish", request.to_payload(), priority=request.priority,
                               depends_on=list(depends_on), dedupe_key=request.dedupe_key,
                               lock_key=request.dedupe_key)
