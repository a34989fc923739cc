"""POST /api/webhooks/*: status codes and bodies for every sender payload, auth, size cap, recording."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from conftest import API_KEY, HEADERS

PAYLOADS = Path(__file__).parent / "payloads"

# (source, payload file) -> expected status: 202 queues a webhook job, 200 is ignored.
EXPECTED: dict[tuple[str, str], int] = {
    ("radarr", "application_update"): 200,
    ("radarr", "download"): 202,
    ("radarr", "download_upgrade"): 202,
    ("radarr", "grab"): 200,
    ("radarr", "health"): 200,
    ("radarr", "manual_interaction"): 200,
    ("radarr", "movie_added"): 202,
    ("radarr", "movie_delete"): 202,
    ("radarr", "movie_file_delete_upgrade"): 202,
    ("radarr", "rename"): 202,
    ("radarr", "test"): 200,
    ("sonarr", "download"): 202,
    ("sonarr", "episode_file_delete_upgrade"): 202,
    ("sonarr", "health_restored"): 200,
    ("sonarr", "import_complete"): 202,
    ("sonarr", "rename"): 202,
    ("sonarr", "series_add"): 202,
    ("sonarr", "series_delete"): 202,
    ("sonarr", "test"): 200,
    ("jellyfin", "authentication_failure"): 200,
    ("jellyfin", "item_added_audio"): 200,
    ("jellyfin", "item_added_movie"): 202,
    ("jellyfin", "playback_progress_episode"): 202,
    ("jellyfin", "playback_stop_movie"): 202,
    ("jellyfin", "user_data_saved"): 202,
    ("plex", "admin_database_backup"): 200,
    ("plex", "library_new_legacy"): 202,
    ("plex", "media_play_movie"): 202,
    ("plex", "media_play_track"): 200,
    ("plex", "media_scrobble_episode"): 202,
}
IGNORED_WORDS = {"application_update": "updated itself", "grab": "Grab", "health": "Health",
                 "manual_interaction": "ManualInteractionRequired", "test": "Test",
                 "health_restored": "HealthRestored", "authentication_failure": "AuthenticationFailure",
                 "item_added_audio": "Audio", "admin_database_backup": "admin.database.backup",
                 "media_play_track": "track"}


def raw(source: str, name: str) -> bytes:
    """A stored sender payload's bytes."""
    return (PAYLOADS / source / f"{name}.json").read_bytes()


def basic(user: str, password: str) -> dict[str, str]:
    """An HTTP Basic Authorization header, as Radarr/Sonarr send when a password is set."""
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def plex_form(payload: bytes) -> aiohttp.FormData:
    """A Plex-style multipart body: the JSON `payload` part plus a JPEG `thumb`."""
    form = aiohttp.FormData()
    form.add_field("payload", payload.decode("utf-8"), content_type="application/json")
    form.add_field("thumb", b"\xff\xd8\xff\xe0fakejpeg", filename="thumb.jpg", content_type="image/jpeg")
    return form


async def post(client: Any, source: str, name: str, headers: dict[str, str] | None = None) -> Any:
    """POST one stored payload the way its sender does (Plex: multipart; Jellyfin: text/plain)."""
    body = raw(source, name)
    hdrs = dict(HEADERS if headers is None else headers)
    if source == "plex":
        return await client.post(f"/api/webhooks/{source}", data=plex_form(body), headers=hdrs)
    hdrs["Content-Type"] = "text/plain; charset=utf-8" if source == "jellyfin" else "application/json"
    return await client.post(f"/api/webhooks/{source}", data=body, headers=hdrs)


def test_every_stored_payload_has_an_expectation() -> None:
    """A payload added under tests/payloads without an expected answer fails here."""
    stored = {(p.parent.name, p.stem) for p in PAYLOADS.glob("*/*.json")}
    assert stored == set(EXPECTED)


@pytest.mark.parametrize(("source", "name"), sorted(EXPECTED))
async def test_payload_answers(client: Any, source: str, name: str) -> None:
    """Each sender payload gets 202 with its webhook job or 200 ignored, and is recorded either way."""
    seen: list[tuple[str, dict]] = []
    client.agent.events.subscribe(lambda t, d: seen.append((t, d)))
    resp = await post(client, source, name)
    body = await resp.json()
    assert resp.status == EXPECTED[(source, name)], body
    event_id = body["event_id"]
    row = await client.agent.db.fetchone("SELECT * FROM webhook_events WHERE id = ?", (event_id,))
    assert row is not None and row["source"] == source
    assert json.loads(row["payload"]) == json.loads(raw(source, name))
    received = [d for t, d in seen if t == "webhook:received"]
    assert received == [{"source": source, "event_type": row["event_type"], "event_id": event_id}]
    if resp.status == 202:
        assert set(body) == {"event_id", "job_ids"} and len(body["job_ids"]) == 1
        job = await client.agent.queue.get(body["job_ids"][0])
        assert (job.type, job.priority, job.payload) == ("webhook", 1, {"event_id": event_id})
        assert json.loads(row["job_ids"]) == body["job_ids"] and row["ignored"] is None
    else:
        assert set(body) == {"ignored", "event_id"}
        assert IGNORED_WORDS[name] in body["ignored"]
        assert row["ignored"] == body["ignored"] and json.loads(row["job_ids"]) == []
        _, total = await client.agent.queue.list()
        assert total == 0


@pytest.mark.parametrize(
    ("source", "body", "content_type", "message"),
    [
        ("radarr", b"this is not json", "application/json", "not JSON"),
        ("radarr", b"", "application/json", "empty body"),
        ("radarr", b"[1, 2]", "application/json", "expected an object"),
        ("radarr", raw("sonarr", "download"), "application/json", "Sonarr payload"),
        ("sonarr", raw("radarr", "download"), "application/json", "Radarr payload"),
        ("jellyfin", raw("radarr", "download"), "text/plain", "NotificationType"),
        ("plex", b"--x\r\n\r\n--x--", "multipart/form-data", "boundary"),
        ("plex", b'{"hello": 1}', "application/json", "'event'"),
    ],
)
async def test_foreign_or_broken_bodies_are_400(client: Any, source: str, body: bytes, content_type: str,
                                               message: str) -> None:
    """A body that is not the sender's format is a 400 naming the problem, and nothing is recorded."""
    resp = await client.post(f"/api/webhooks/{source}", data=body,
                             headers={**HEADERS, "Content-Type": content_type})
    assert resp.status == 400
    assert message in (await resp.json())["error"]
    assert await client.agent.db.fetchone("SELECT id FROM webhook_events") is None


async def test_unknown_source_is_404(client: Any) -> None:
    """Only the four senders have a route."""
    resp = await client.post("/api/webhooks/lidarr", data=b"{}", headers=HEADERS)
    assert resp.status == 404 and "error" in await resp.json()


async def test_auth(client: Any) -> None:
    """No key or a wrong key is 401; the header, ?apikey= and Basic auth with the key as password work."""
    body = raw("radarr", "download")
    resp = await client.post("/api/webhooks/radarr", data=body)
    assert resp.status == 401 and "API key" in (await resp.json())["error"]
    resp = await client.post("/api/webhooks/radarr", data=body, headers={"X-Api-Key": "wrong"})
    assert resp.status == 401
    resp = await client.post("/api/webhooks/radarr", data=body, headers=basic("radarr", "nope"))
    assert resp.status == 401
    assert await client.agent.db.fetchone("SELECT id FROM webhook_events") is None
    resp = await client.post("/api/webhooks/radarr", data=body, headers=basic("radarr", API_KEY))
    assert resp.status == 202
    resp = await client.post(f"/api/webhooks/radarr?apikey={API_KEY}", data=body)
    assert resp.status == 202
    rows = await client.agent.db.fetchall("SELECT id FROM webhook_events")
    assert len(rows) == 2


@pytest.mark.parametrize("chunked", [False, True])
async def test_body_over_one_mib_is_413_json(client: Any, chunked: bool) -> None:
    """A body over 1 MiB is refused with a JSON 413 and not recorded (with and without Content-Length)."""
    padding = "x" * (1024 * 1024)
    body = json.dumps({"eventType": "Test", "padding": padding}).encode()

    async def gen() -> Any:
        for i in range(0, len(body), 65536):
            yield body[i:i + 65536]

    data: Any = gen() if chunked else body
    headers = {**HEADERS, "Content-Type": "application/json"}
    resp = await client.post("/api/webhooks/radarr", data=data, headers=headers)
    assert resp.status == 413
    assert "1 MiB" in (await resp.json())["error"]
    assert await client.agent.db.fetchone("SELECT id FROM webhook_events") is None


async def test_body_just_under_the_cap_is_accepted(client: Any) -> None:
    """The cap is 1 MiB, not less: a large Test body below it is still answered."""
    data = json.loads(raw("radarr", "test"))
    data["padding"] = "x" * (1024 * 1024 - 4096)
    resp = await client.post("/api/webhooks/radarr", json=data, headers=HEADERS)
    assert resp.status == 200, await resp.text()


async def test_row_exists_when_the_reply_arrives(client: Any) -> None:
    """The event row and its job are written before the 202: a reader sees both right after the reply."""
    resp = await post(client, "radarr", "download")
    body = await resp.json()
    row = await client.agent.db.fetchone(
        "SELECT e.event_type, j.type FROM webhook_events e JOIN job_queue j ON j.id = ?"
        " WHERE e.id = ?", (body["job_ids"][0], body["event_id"]))
    assert tuple(row) == ("Download", "webhook")


async def test_jellyfin_json_in_any_content_type(client: Any) -> None:
    """The Jellyfin plugin often posts JSON as text/plain or with no content type at all."""
    for ctype in ("text/plain", "application/octet-stream", "application/json"):
        resp = await client.post("/api/webhooks/jellyfin", data=raw("jellyfin", "item_added_movie"),
                                 headers={**HEADERS, "Content-Type": ctype})
        assert resp.status == 202, ctype


async def test_plex_multipart_with_thumb_and_raw_json(client: Any) -> None:
    """Plex's multipart form (payload + thumb) is accepted; the stored payload is the JSON part only."""
    resp = await post(client, "plex", "media_play_movie")
    body = await resp.json()
    assert resp.status == 202
    sql = "SELECT payload FROM webhook_events WHERE id = ?"
    row = await client.agent.db.fetchone(sql, (body["event_id"],))
    assert json.loads(row["payload"])["event"] == "media.play"
