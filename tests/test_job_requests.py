"""The enrich and publish jobs' payload types and their enqueue calls, against a real queue on a real database."""

from __future__ import annotations

import pytest

from agent.clock import FakeClock
from agent.enrich import EnrichRequest, enqueue_enrich
from agent.errors import PermanentFailure
from agent.hints import HintImage, Hints
from agent.publish import PublishRequest, enqueue_publish
from agent.queue import Priority, Queue
from agent.store import Database


def test_publish_request_round_trip_and_payload_shape() -> None:
    """to_payload keeps the {"entity","id","priority"[,"update"]} shape scans and webhooks send."""
    req = PublishRequest("movie", 7, Priority.HIGH, "Created")
    assert req.to_payload() == {"entity": "movie", "id": 7, "priority": Priority.HIGH, "update": "Created"}
    assert PublishRequest.from_payload(req.to_payload()) == req
    assert PublishRequest.from_payload({"entity": "series", "id": "3"}) == PublishRequest("series", 3)
    assert PublishRequest("episode", 2).to_payload() == {"entity": "episode", "id": 2, "priority": Priority.NORMAL}


def test_publish_request_names_a_bad_payload() -> None:
    """An unknown entity, a missing id or a non-text update is a PermanentFailure saying which."""
    with pytest.raises(PermanentFailure, match="unknown entity 'album'"):
        PublishRequest.from_payload({"entity": "album", "id": 1})
    with pytest.raises(PermanentFailure, match="integer id"):
        PublishRequest.from_payload({"entity": "movie"})
    with pytest.raises(PermanentFailure, match="update must be a string"):
        PublishRequest.from_payload({"entity": "movie", "id": 1, "update": 5})


def test_enrich_request_carries_hints_as_the_typed_payload() -> None:
    """Hints travel as Hints.to_payload() under "hints" and come back equal; refresh and update are kept."""
    hints = Hints(title="The Matrix", year=1999, ids={"tmdb_id": 603},
                  images=(HintImage("poster", "http://127.0.0.1/p.jpg"),))
    req = EnrichRequest("movie", 1, Priority.HIGH, hints, update="Created", refresh=True)
    payload = req.to_payload()
    assert payload == {"entity": "movie", "id": 1, "priority": Priority.HIGH, "hints": hints.to_payload(),
                       "refresh": True, "update": "Created"}
    assert EnrichRequest.from_payload(payload) == req
    assert EnrichRequest("movie", 1).to_payload() == {"entity": "movie", "id": 1, "priority": Priority.NORMAL}
    assert (req.dedupe_key, EnrichRequest("movie", 1).dedupe_key) == ("refresh:movie:1", "enrich:movie:1")


def test_enrich_request_names_bad_hints() -> None:
    """A hint of the wrong kind fails the job permanently, naming the item and the hint."""
    with pytest.raises(PermanentFailure, match=r"movie 4: hints\.year must be a int"):
        EnrichRequest.from_payload({"entity": "movie", "id": 4, "hints": {"year": "1999"}})
    with pytest.raises(PermanentFailure, match="unknown entity"):
        EnrichRequest.from_payload({"entity": "song", "id": 4})
    with pytest.raises(PermanentFailure, match="integer id"):
        EnrichRequest.from_payload({"entity": "movie", "id": "four"})


async def test_enqueue_calls_store_the_payload_and_dedupe(db: Database) -> None:
    """enqueue_enrich / enqueue_publish store the request's payload; a second request for the item is the same job,
    and a refresh is a job of its own."""
    queue = Queue(db, FakeClock())
    hints = Hints(title="Heat", year=1995)
    first = await enqueue_enrich(queue, EnrichRequest("movie", 1, hints=hints))
    again = await enqueue_enrich(queue, EnrichRequest("movie", 1))
    refresh = await enqueue_enrich(queue, EnrichRequest("movie", 1, refresh=True))
    assert first.id == again.id != refresh.id
    assert EnrichRequest.from_payload(first.payload).hints == hints
    publish = await enqueue_publish(queue, PublishRequest("movie", 1, Priority.HIGH), depends_on=[first.id])
    assert (publish.type, publish.priority, publish.dedupe_key) == ("publish", Priority.HIGH, "publish:movie:1")
    assert PublishRequest.from_payload(publish.payload) == PublishRequest("movie", 1, Priority.HIGH)
    assert (await enqueue_publish(queue, PublishRequest("movie", 1))).id == publish.id
