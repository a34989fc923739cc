"""The player job types: `notify_players`, `playback_capture` and `playback_restore`, each with its payload
type (read once where its handler starts) and its enqueue call, which the domain uses without agent.jobs."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

from agent.errors import PermanentFailure
from agent.queue import Job, JobContext, Priority, Queue

NOTIFY: Final = "notify_players"
CAPTURE: Final = "playback_capture"
RESTORE: Final = "playback_restore"
UPDATES: Final = ("Created", "Modified", "Deleted")
ITEMS: Final = ("movie", "series", "episode")  # what players can be told about
PLAYABLE: Final = ("movie", "episode")  # what has a video file with a playback state

Enqueuer = Queue | JobContext  # a follow-up enqueued through a handler's context keeps its chain


def _integer(job: str, name: str, value: Any) -> int:
    """An integer field (a number or its digits as text), or a PermanentFailure naming it."""
    if isinstance(value, bool):
        raise PermanentFailure(f"{job}: {name} must be an integer, got {value!r}")
    try:
        return int(value)
    except (TypeError, ValueError):
        raise PermanentFailure(f"{job}: {name} must be an integer, got {value!r}") from None


def _optional_path(job: str, name: str, value: Any) -> str | None:
    """A path field that may be absent (None or empty), or a PermanentFailure naming it."""
    if value in (None, ""):
        return None
    if not isinstance(value, str):
        raise PermanentFailure(f"{job}: {name} must be a path, got {value!r}")
    return value


def _names(job: str, name: str, value: Any) -> tuple[str, ...]:
    """A list of names kept as progress (done groups or players), or a PermanentFailure naming it."""
    if value in (None, ""):
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise PermanentFailure(f"{job}: {name} must be a list of names, got {value!r}")
    return tuple(value)


def _priority(job: str, value: Any) -> int | None:
    """The optional priority a payload carries on to follow-ups."""
    return None if value in (None, "") else _integer(job, "priority", value)


def _playable(job: str, payload: dict[str, Any]) -> tuple[str, int]:
    """(entity, id) of a movie or episode, or a PermanentFailure naming the problem."""
    entity = payload.get("entity")
    if entity not in PLAYABLE:
        raise PermanentFailure(f"{job}: entity must be movie or episode, got {entity!r}")
    if "id" not in payload:
        raise PermanentFailure(f"{job}: id must be an integer, got None")
    return entity, _integer(job, "id", payload["id"])


def _without_none(values: dict[str, Any]) -> dict[str, Any]:
    """The payload dict: absent (None or empty) values left out, as the callers always wrote them."""
    return {k: v for k, v in values.items() if v not in (None, (), [])}


# ---------------------------------------------------------------- notify_players


@dataclass(frozen=True, kw_only=True)
class NotifyPayload:
    """Tell every player group about one item: `update` is Created, Modified or Deleted (paths are ours).

    `file`/`folder` stand in for the item's row when it is gone (Deleted); `art` lists the image files just
    written or removed (ours), whose cached thumbnails every Kodi drops; `done_groups` is the handler's
    progress, so a retry skips the groups already told."""

    entity: str
    id: int
    update: str = "Modified"
    file: str | None = None
    folder: str | None = None
    priority: int | None = None
    art: tuple[str, ...] = ()
    done_groups: tuple[str, ...] = ()

    @classmethod
    def from_payload(cls, payload: dict[str, Any]) -> NotifyPayload:
        """Read a queued payload; PermanentFailure names the first bad value."""
        entity, update = payload.get("entity"), payload.get("update") or "Modified"
        if entity not in ITEMS:
            raise PermanentFailure(f"{NOTIFY}: unknown entity {entity!r} (use movie, series or episode)")
        if update not in UPDATES:
            raise PermanentFailure(f"{NOTIFY}: unknown update {update!r} (use Created, Modified or Deleted)")
        return cls(entity=entity, id=_integer(NOTIFY, "id", payload.get("id") or 0), update=update,
                   file=_optional_path(NOTIFY, "file", payload.get("file")),
                   folder=_optional_path(NOTIFY, "folder", payload.get("folder")),
                   priority=_priority(NOTIFY, payload.get("priority")),
                   art=_names(NOTIFY, "art", payload.get("art")),
                   done_groups=_names(NOTIFY, "done_groups", payload.get("done_groups")))

    def to_payload(self) -> dict[str, Any]:
        """The JSON payload queued for this job."""
        return _without_none({"entity": self.entity, "id": self.id, "update": self.update,
                              "priority": self.priority, "file": self.file, "folder": self.folder,
                              "art": list(self.art), "done_groups": list(self.done_groups)})


async def enqueue_notify(queue: Enqueuer, payload: NotifyPayload, *, priority: int | None = None,
                         depends_on: Sequence[int] = (), dedupe: bool = True) -> Job:
    """Queue one notify_players job: priority as given, else the payload's, else NORMAL; one pending job
    per item unless `dedupe` is False (a deletion must not fold into a pending refresh)."""
    chosen = priority if priority is not None else payload.priority
    return await queue.enqueue(NOTIFY, payload.to_payload(),
                               priority=Priority.NORMAL if chosen is None else chosen,
                               depends_on=list(depends_on),
                               dedupe_key=f"notify:{payload.entity}:{payload.id}" if dedupe else None)


# ---------------------------------------------------------------- playback_capture / playback_restore


@dataclass(frozen=True, kw_only=True)
class CapturePayload:
    """Capture each player's watched state and position of an item's old `files` before they are replaced.

    `done_players` is the handler's progress, so a retry asks only the players that were down."""

    entity: str
    id: int
    files: tuple[str, ...]
    source: str | None = None
    priority: int | None = None
    done_players: tuple[str, ...] = ()

    @classmethod
    def from_payload(cls, payload: dict[str, Any]) -> CapturePayload:
        """Read a queued payload; PermanentFailure names the first bad value."""
        entity, item_id = _playable(CAPTURE, payload)
        files = payload.get("files") or []
        if not isinstance(files, list) or not all(isinstance(f, str) and f for f in files):
            raise PermanentFailure(f"{CAPTURE}: files must be a list of paths, got {files!r}")
        source = payload.get("source")
        if source is not None and not isinstance(source, str):
            raise PermanentFailure(f"{CAPTURE}: source must be text, got {source!r}")
        return cls(entity=entity, id=item_id, files=tuple(files), source=source,
                   priority=_priority(CAPTURE, payload.get("priority")),
                   done_players=_names(CAPTURE, "done_players", payload.get("done_players")))

    def to_payload(self) -> dict[str, Any]:
        """The JSON payload queued for this job (files always present, even empty)."""
        rest = _without_none({"source": self.source, "priority": self.priority,
                              "done_players": list(self.done_players)})
        return {"entity": self.entity, "id": self.id, "files": list(self.files), **rest}


async def enqueue_capture(queue: Enqueuer, payload: CapturePayload, *, priority: int | None = None) -> Job:
    """Queue one playback_capture job (one pending per item): priority as given, else the payload's,
    else CRITICAL (it must run before the new file replaces the old)."""
    chosen = priority if priority is not None else payload.priority
    return await queue.enqueue(CAPTURE, payload.to_payload(),
                               priority=Priority.CRITICAL if chosen is None else chosen,
                               dedupe_key=f"{CAPTURE}:{payload.entity}:{payload.id}")


@dataclass(frozen=True, kw_only=True)
class RestorePayload:
    """Restore every open capture of an item on the player it came from, on the item's new file."""

    entity: str
    id: int

    @classmethod
    def from_payload(cls, payload: dict[str, Any]) -> RestorePayload:
        """Read a queued payload; PermanentFailure names the first bad value."""
        entity, item_id = _playable(RESTORE, payload)
        return cls(entity=entity, id=item_id)

    def to_payload(self) -> dict[str, Any]:
        """The JSON payload queued for this job."""
        return {"entity": self.entity, "id": self.id}


async def enqueue_restore(queue: Enqueuer, payload: RestorePayload, *, depends_on: Sequence[int] = ()) -> Job:
    """Queue one playback_restore job at CRITICAL priority (one pending per item), after `depends_on`."""
    return await queue.enqueue(RESTORE, payload.to_payload(), priority=Priority.CRITICAL,
                               depends_on=list(depends_on), dedupe_key=f"restore:{payload.entity}:{payload.id}")
