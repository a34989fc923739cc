"""The typed payloads and enqueue calls of notify_players, playback_capture/restore, cleanup and cache_gc:
what each queues (payload shape, priority, dedupe) and the PermanentFailure a bad value gets, against a
real queue on a real SQLite file."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from agent.clock import FakeClock
from agent.errors import PermanentFailure
from agent.housekeeping import CacheGcPayload, CleanupPayload, enqueue_cache_gc, enqueue_cleanup
from agent.players.jobs import (
    CapturePayload,
    NotifyPayload,
    RestorePayload,
    enqueue_capture,
    enqueue_notify,
    enqueue_restore,
)
from agent.queue import JobContext, Priority, Queue
from agent.store import Database


@pytest.fixture
async def queue(db: Database, clock: FakeClock) -> AsyncIterator[Queue]:
    """A queue without workers over the test database."""
    q = Queue(db, clock, emit=lambda t, d: None)
    yield q
    await q.stop()


async def test_notify_payload_round_trips_and_enqueues_deduplicated(queue: Queue) -> None:
    """The queued payload is the shape the handlers always read; one pending notify per item."""
    p = NotifyPayload(entity="movie", id=7, update="Deleted", file="/m/a.mkv", folder="/m", priority=1)
    assert p.to_payload() == {"entity": "movie", "id": 7, "update": "Deleted", "priority": 1,
                              "file": "/m/a.mkv", "folder": "/m"}
    assert NotifyPayload.from_payload(p.to_payload()) == p
    first = await enqueue_notify(queue, p)
    again = await enqueue_notify(queue, p)
    assert again.id == first.id and first.priority == 1 and first.dedupe_key == "notify:movie:7"
    assert (await queue.get(first.id)).payload == p.to_payload()
    separate = await enqueue_notify(queue, p, dedupe=False)
    assert separate.id != first.id and separate.dedupe_key is None


async def test_notify_priority_given_wins_and_payload_stays_bare(queue: Queue) -> None:
    """publish's notify carries no priority in its payload but runs at the publish's priority."""
    p = NotifyPayload(entity="episode", id=3, update="Modified")
    job = await enqueue_notify(queue, p, priority=Priority.HIGH, depends_on=[])
    assert job.priority == Priority.HIGH
    assert job.payload == {"entity": "episode", "id": 3, "update": "Modified"}
    default = await enqueue_notify(queue, NotifyPayload(entity="series", id=4))
    assert default.priority == Priority.NORMAL


@pytest.mark.parametrize(
    ("payload", "named"),
    [
        ({"entity": "album", "id": 1}, "unknown entity 'album'"),
        ({"entity": "movie", "id": 1, "update": "Gone"}, "unknown update 'Gone'"),
        ({"entity": "movie", "id": "seven"}, "id must be an integer, got 'seven'"),
        ({"entity": "movie", "id": True}, "id must be an integer, got True"),
        ({"entity": "movie", "id": 1, "file": 5}, "file must be a path, got 5"),
        ({"entity": "movie", "id": 1, "folder": ["/m"]}, "folder must be a path"),
        ({"entity": "movie", "id": 1, "priority": "high"}, "priority must be an integer, got 'high'"),
        ({"entity": "movie", "id": 1, "done_groups": "lr"}, "done_groups must be a list of names"),
    ],
)
def test_bad_notify_payload_is_a_permanent_failure_naming_the_value(payload: dict[str, Any], named: str) -> None:
    """Each bad value is refused where the handler starts, named in the message."""
    with pytest.raises(PermanentFailure) as err:
        NotifyPayload.from_payload(payload)
    assert named in err.value.message and err.value.message.startswith("notify_players: ")


def test_notify_payload_defaults() -> None:
    """A bare payload means Modified; an absent id (a Deleted item known by its paths) reads as 0."""
    p = NotifyPayload.from_payload({"entity": "movie", "update": "Deleted", "file": "/m/a.mkv"})
    assert (p.id, p.update, p.folder, p.done_groups) == (0, "Deleted", None, ())
    assert NotifyPayload.from_payload({"entity": "series", "id": "12"}).update == "Modified"


async def test_capture_payload_round_trips_and_enqueues_once_per_item(queue: Queue) -> None:
    """The webhook's capture payload keeps its keys; a second capture of the item reuses the pending job."""
    p = CapturePayload(entity="movie", id=2, files=("/m/old.mkv",), source="radarr", priority=Priority.CRITICAL)
    assert p.to_payload() == {"entity": "movie", "id": 2, "files": ["/m/old.mkv"], "source": "radarr",
                              "priority": 1}
    assert CapturePayload.from_payload(p.to_payload()) == p
    job = await enqueue_capture(queue, p)
    assert (job.priority, job.dedupe_key) == (1, "playback_capture:movie:2")
    assert (await enqueue_capture(queue, p)).id == job.id
    progress = {**p.to_payload(), "done_players": ["lr"]}
    assert CapturePayload.from_payload(progress).done_players == ("lr",)


@pytest.mark.parametrize(
    ("payload", "named"),
    [
        ({"entity": "series", "id": 1, "files": []}, "entity must be movie or episode, got 'series'"),
        ({"entity": "movie", "files": []}, "id must be an integer, got None"),
        ({"entity": "movie", "id": 1, "files": "/m/a.mkv"}, "files must be a list of paths, got '/m/a.mkv'"),
        ({"entity": "movie", "id": 1, "files": [""]}, "files must be a list of paths"),
        ({"entity": "movie", "id": 1, "files": [], "source": 3}, "source must be text, got 3"),
        ({"entity": "movie", "id": 1, "files": [], "done_players": [1]}, "done_players must be a list of names"),
    ],
)
def test_bad_capture_payload_is_a_permanent_failure_naming_the_value(payload: dict[str, Any], named: str) -> None:
    """Each bad value is refused where the handler starts, named in the message."""
    with pytest.raises(PermanentFailure) as err:
        CapturePayload.from_payload(payload)
    assert named in err.value.message and err.value.message.startswith("playback_capture: ")


async def test_restore_enqueues_critical_after_its_dependency(queue: Queue) -> None:
    """publish's restore: {entity, id}, CRITICAL, one pending per item, waiting on the notify job."""
    notify = await enqueue_notify(queue, NotifyPayload(entity="movie", id=5, update="Created"))
    job = await enqueue_restore(queue, RestorePayload(entity="movie", id=5), depends_on=[notify.id])
    stored = await queue.get(job.id)
    assert stored.payload == {"entity": "movie", "id": 5} and stored.priority == Priority.CRITICAL
    assert stored.dedupe_key == "restore:movie:5" and stored.depends_on == [notify.id]
    with pytest.raises(PermanentFailure, match="playback_restore: id must be an integer, got 'x'"):
        RestorePayload.from_payload({"entity": "movie", "id": "x"})


async def test_follow_up_through_a_context_keeps_the_chain(queue: Queue) -> None:
    """Enqueued through a handler's context, a follow-up joins the parent's chain."""
    parent = await queue.enqueue("cleanup", {"entity": "movie", "id": 1})
    ctx = JobContext(queue, parent)
    child = await enqueue_notify(ctx, NotifyPayload(entity="movie", id=1, update="Deleted", folder="/m"),
                                 dedupe=False)
    assert child.chain == parent.id


async def test_cleanup_payload_round_trips_and_enqueues_once_per_item(queue: Queue) -> None:
    """The webhook's cleanup payloads (by id, or by id and files) keep their keys and dedupe per item."""
    by_id = CleanupPayload(entity="movie", id=3, reason="radarr MovieDelete", priority=1)
    assert by_id.to_payload() == {"entity": "movie", "id": 3, "reason": "radarr MovieDelete", "priority": 1}
    with_files = CleanupPayload(entity="episode", id=4, files=("/tv/e.mkv",), reason="sonarr", priority=1)
    assert with_files.to_payload()["files"] == ["/tv/e.mkv"]
    for p in (by_id, with_files):
        assert CleanupPayload.from_payload(p.to_payload()) == p
    job = await enqueue_cleanup(queue, by_id)
    assert (job.priority, job.dedupe_key) == (1, "cleanup:movie:3")
    assert (await enqueue_cleanup(queue, by_id)).id == job.id
    low = await enqueue_cleanup(queue, CleanupPayload(entity="series", id=9))
    assert low.priority == Priority.LOW and low.payload == {"entity": "series", "id": 9}


@pytest.mark.parametrize(
    ("payload", "named"),
    [
        ({"entity": "album", "id": 1}, "entity movie, series or episode, got 'album'"),
        ({"entity": "movie", "id": "1"}, "cleanup id must be an integer, got '1'"),
        ({"entity": "movie", "files": "/m/a.mkv"}, "cleanup files must be a list of paths"),
        ({"entity": "movie"}, "cleanup needs an id or files"),
        ({"entity": "movie", "id": 1, "reason": 4}, "cleanup reason must be text, got 4"),
        ({"entity": "movie", "id": 1, "priority": "1"}, "cleanup priority must be an integer, got '1'"),
    ],
)
def test_bad_cleanup_payload_is_a_permanent_failure_naming_the_value(payload: dict[str, Any], named: str) -> None:
    """Each bad value is refused where the handler starts, named in the message."""
    with pytest.raises(PermanentFailure, match=named):
        CleanupPayload.from_payload(payload)


async def test_cache_gc_is_one_low_priority_job(queue: Queue) -> None:
    """The daily GC queues {} at LOW priority; a pending one is reused."""
    job = await enqueue_cache_gc(queue)
    assert (job.payload, job.priority, job.dedupe_key) == ({}, Priority.LOW, "cache_gc")
    assert (await enqueue_cache_gc(queue)).id == job.id
    assert CacheGcPayload.from_payload({}).to_payload() == {}
