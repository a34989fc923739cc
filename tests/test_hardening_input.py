"""Hostile input at the HTTP edge (issue 11, items 14 and 16): PATCH and webhook bodies, /ws, /api/players."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from conftest import API_KEY, HEADERS, make_config

from agent.jobs.scan import build_request, scan_parts
from agent.library.scan import run_scan
from agent.web.keys import HUB

JSON_HEADERS = {**HEADERS, "Content-Type": "application/json"}
DEEP = b"[" * 2000 + b"]" * 2000


def strict_json(text: str) -> Any:
    """Parse JSON as a browser would: NaN and Infinity are not JSON."""

    def refuse(constant: str) -> Any:
        raise AssertionError(f"reply holds {constant}, which is not JSON")

    return json.loads(text, parse_constant=refuse)


@pytest.fixture
async def api(make_client: Any, config: Any) -> Any:
    """A client over a scanned library with one movie and one show with an episode."""
    movies, tv = config.libraries[0].path, config.libraries[1].path
    for path in (movies / "Alpha (2000)" / "Alpha (2000).mkv", tv / "Show (2010)" / "Season 01" / "Show - S01E01.mkv"):
        path.parent.mkdir(parents=True)
        path.write_bytes(b"x")
    client = await make_client(config)
    for name in ("Movies", "TV"):
        await run_scan(scan_parts(client.agent), build_request(client.agent.cfg, {"library": name}))
    return client


async def ids(client: Any) -> dict[str, int]:
    """The movie's, the show's and the episode's ids."""
    movie = (await (await client.get("/api/movies", headers=HEADERS)).json())["items"][0]
    show = await (await client.get("/api/series", headers=HEADERS)).json()
    detail = await (await client.get(f"/api/series/{show['items'][0]['id']}", headers=HEADERS)).json()
    return {"movie": movie["id"], "series": detail["id"], "episode": detail["episodes"][0]["id"]}


# (body as sent, the field the 400 must name)
HOSTILE_PATCHES = [
    (b'{"plot": NaN}', "plot"),
    (b'{"tagline": Infinity}', "tagline"),
    (b'{"runtime": -Infinity}', "runtime"),
    (b'{"ratings": [{"name": "imdb", "value": NaN}]}', "ratings[0].value"),
    (b'{"ratings": [{"name": "imdb", "value": 1e999}]}', "ratings[0].value"),
    (b'{"ratings": [{"name": "imdb", "value": 11}]}', "ratings[0].value"),
    (b'{"tmdb_id": 99999999999999999999}', "tmdb_id"),
    (b'{"playcount": -99999999999999999999}', "playcount"),
    (b'{"title": "\\ud800"}', "title"),
    (b'{"genres": ["Drama", "\\udc00x"]}', "genres[1]"),
    (b'{"title": "a\\u0000b"}', "title"),
    (b'{"title": "' + b"x" * 5000 + b'"}', "title"),
    (b'{"actors": [1]}', "actors[0]"),
    (b'{"actors": [{"name": 5}]}', "actors[0].name"),
    (b'{"actors": [{"name": "Ann", "order": "first"}]}', "actors[0].order"),
    (b'{"actors": [{"name": "Ann", "age": 3}]}', "actors[0].age"),
    (b'{"actors": {"name": "Ann"}}', "actors"),
    (b'{"genres": [1, 2]}', "genres[0]"),
    (b'{"year": 1500}', "year"),
    (b'{"year": 2.5}', "year"),
    (b'{"runtime": -5}', "runtime"),
    (b'{"userrating": 11}', "userrating"),
    (b'{"premiered": "2020-13-45"}', "premiered"),
    (b'{"set": 5}', "set"),
    (b'{"set": {"name": ["x"]}}', "set.name"),
    (b'{"uniqueids": {"tmdb": [1]}}', "uniqueids.tmdb"),
    (b'{"streamdetails": {"video": [1]}}', "streamdetails.video[0]"),
    (b'{"resume": {"position": -1}}', "resume.position"),
    (b'{"title": true}', "title"),
]


@pytest.mark.parametrize(("body", "field"), HOSTILE_PATCHES, ids=[f for _, f in HOSTILE_PATCHES])
async def test_hostile_patch_values_are_400_naming_the_field(api: Any, body: bytes, field: str) -> None:
    """NaN, Infinity, huge integers, lone surrogates, control characters and wrong shapes are refused by name."""
    mid = (await ids(api))["movie"]
    resp = await api.patch(f"/api/movies/{mid}/metadata", data=body, headers=JSON_HEADERS)
    reply = strict_json(await resp.text())
    assert resp.status == 400, reply
    assert reply["error"].startswith(f"{field}:") or f"'{field}'" in reply["error"], reply
    listing = await api.get("/api/movies", headers=HEADERS)
    movie = strict_json(await listing.text())["items"][0]
    assert listing.status == 200 and movie["title"] == "Alpha" and movie["locked_fields"] == []
    assert await api.agent.db.fetchone("SELECT id FROM job_queue WHERE type = 'publish'") is None


async def test_well_formed_values_are_saved_and_published(api: Any) -> None:
    """Every kind of editable field, given the right shape, is saved, echoed as JSON and published."""
    found = await ids(api)
    body = {
        "title": "Alpha Prime", "plot": "Line one.\nLine two.", "year": 2001, "runtime": 0, "tmdb_id": "603",
        "genres": "Drama / War", "premiered": "2001-02-28", "userrating": 7, "imdb_id": "tt0133093",
        "actors": [{"name": "Ann", "role": "Herself", "order": 0, "thumb": "http://img/ann.jpg"}, {"name": "Bo"}],
        "ratings": [{"name": "imdb", "value": 8.7, "votes": 1000, "max": 10, "default": True}],
        "set": {"name": "Alphas", "overview": None}, "uniqueids": {"tmdb": "603", "trakt": 481},
        "streamdetails": {"video": [{"codec": "h264", "width": 1920, "aspect": 1.78}], "audio": [], "subtitle": []},
        "resume": {"position": 61.5, "total": 7200},
    }
    resp = await api.patch(f"/api/movies/{found['movie']}/metadata", json=body, headers=HEADERS)
    movie = strict_json(await resp.text())
    assert resp.status == 200, movie
    assert movie["title"] == "Alpha Prime" and movie["tmdb_id"] == 603 and movie["genres"] == ["Drama", "War"]
    assert movie["actors"][1] == {"name": "Bo"} and movie["ratings"][0]["value"] == 8.7
    resp = await api.patch(f"/api/episodes/{found['episode']}/metadata", json={"season": 1, "episode": 2},
                           headers=HEADERS)
    assert resp.status == 200, await resp.text()
    await api.agent.queue.run_until_idle()
    failed, _ = await api.agent.queue.list(status="failed")
    assert not failed, [(j.type, j.error) for j in failed]
    nfo = strict_json(await (await api.get(f"/api/movies/{found['movie']}", headers=HEADERS)).text())["nfo_path"]
    text = Path(nfo).read_text(encoding="utf-8")
    assert "<name>Ann</name>" in text and "<role>Herself</role>" in text and "Alpha Prime" in text


@pytest.mark.parametrize("route", ["/api/movies/{movie}/metadata", "/api/movies/{movie}/lock"])
async def test_deep_json_body_is_400(api: Any, route: str) -> None:
    """2,000 nested arrays are a 400 saying so, not a 500 from a RecursionError."""
    url = route.format(**await ids(api))
    method = api.patch if url.endswith("metadata") else api.post
    for body in (b'{"actors": ' + DEEP + b"}", b'{"fields": ' + b"[" * 200 + b"]" * 200 + b"}"):
        resp = await method(url, data=body, headers=JSON_HEADERS)
        reply = strict_json(await resp.text())
        assert resp.status == 400 and "nested" in reply["error"], reply


# ---------------------------------------------------------------- webhooks


RADARR = json.loads((Path(__file__).parent / "payloads" / "radarr" / "download.json").read_text())


def radarr_with(path: tuple[str, ...], raw_value: str) -> bytes:
    """The Radarr Download payload with one value replaced by raw JSON text (NaN and friends included)."""
    marker = "__HOSTILE__"
    body = json.loads(json.dumps(RADARR))
    target = body
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = marker
    return json.dumps(body).replace(f'"{marker}"', raw_value).encode()


HOSTILE_WEBHOOKS = [
    (("movie", "year"), "NaN", "movie.year"),
    (("movie", "tmdbId"), "Infinity", "movie.tmdbId"),
    (("movie", "tmdbId"), "1e999", "movie.tmdbId"),
    (("movie", "tmdbId"), "184467440737095516160", "movie.tmdbId"),
    (("movie", "title"), '"\\ud83d"', "movie.title"),
    (("movieFile", "relativePath"), '"a\\u0000b.mkv"', "movieFile.relativePath"),
    (("movie", "genres"), DEEP.decode(), "movie.genres"),
]


@pytest.mark.parametrize(("path", "raw", "field"), HOSTILE_WEBHOOKS,
                         ids=[f"{f}={r[:12]}" for _, r, f in HOSTILE_WEBHOOKS])
async def test_hostile_webhook_values_are_400_naming_the_field(client: Any, path: tuple[str, ...], raw: str,
                                                               field: str) -> None:
    """A webhook body with NaN, huge numbers, lone surrogates, NUL or deep nesting is a 400; nothing is kept."""
    resp = await client.post("/api/webhooks/radarr", data=radarr_with(path, raw), headers=JSON_HEADERS)
    reply = strict_json(await resp.text())
    assert resp.status == 400, reply
    assert field in reply["error"] or "nested" in reply["error"], reply
    assert await client.agent.db.fetchone("SELECT id FROM webhook_events") is None


async def test_out_of_range_webhook_values_never_reach_the_fields(make_client: Any, tmp_path: Path) -> None:
    """A sender's wrong values (year 99999, a huge id, a span of 10^15 episodes) are dropped, text cleaned and cut."""
    from agent.webhooks import parse_webhook
    from agent.webhooks.locate import hints_of

    body = json.loads(json.dumps(RADARR))
    body["movie"].update(year=99999, title="x" * 5000, overview="Fine.\x1b[31m", genres=["Drama", 7, "\x07"],
                         tmdbId="9" * 30, images=[])  # no artwork URLs: nothing may be fetched from outside
    body.get("remoteMovie", {}).pop("images", None)
    event = parse_webhook("radarr", json.dumps(body).encode(), "application/json")
    hints = hints_of(event).to_payload()
    assert "year" not in hints and hints["title"] == "x" * 1000 and hints["overview"] == "Fine.[31m"
    assert hints["genres"] == ["Drama", "7"] and hints["ids"]["tmdb_id"] == 603  # remoteMovie's: movie's was junk
    jellyfin = {"NotificationType": "ItemAdded", "ItemType": "Episode", "Name": "Pilot", "SeasonNumber": 1,
                "EpisodeNumber": 1, "EpisodeNumberEnd": 10**15, "RunTimeTicks": "NaN"}
    event = parse_webhook("jellyfin", json.dumps(jellyfin).encode(), "application/json")
    assert len(event.episodes) <= 100
    movies = tmp_path / "media" / "movies"
    cfg = make_config(tmp_path, extra={"sources": {"radarr": {"path_mappings": [
        {"remote": "/movies", "local": str(movies)}]}}})
    video = movies / "The Matrix (1999)" / "The Matrix (1999) Bluray-1080p.mkv"
    video.parent.mkdir(parents=True)
    video.write_bytes(b"x")
    client = await make_client(cfg)
    resp = await client.post("/api/webhooks/radarr", json=body, headers=HEADERS)
    assert resp.status == 202, await resp.text()
    await client.agent.queue.run_until_idle()
    rows = await client.agent.db.fetchall("SELECT type, status, error FROM job_queue")
    assert {r["type"] for r in rows} >= {"webhook", "scan", "publish"}, [dict(r) for r in rows]
    assert all(r["status"] == "completed" for r in rows), [dict(r) for r in rows]
    movie = strict_json(await (await client.get("/api/movies", headers=HEADERS)).text())["items"][0]
    assert movie["year"] != 99999 and len(movie["title"]) <= 1000


# ---------------------------------------------------------------- /ws


async def test_ws_deep_frame_gets_an_error_frame(client: Any) -> None:
    """A 2,000-deep JSON frame is answered with an error frame; the socket stays usable."""
    ws = await client.ws_connect("/ws", params={"apikey": API_KEY})
    assert (await ws.receive_json(timeout=5))["type"] == "connection:established"
    await ws.send_str(DEEP.decode())
    msg = await ws.receive(timeout=5)
    assert msg.type == aiohttp.WSMsgType.TEXT, msg
    assert json.loads(msg.data)["type"] == "error" and "nested" in json.loads(msg.data)["data"]["error"]
    await ws.send_json({"type": "ping"})
    assert (await ws.receive_json(timeout=5))["type"] == "pong"
    await ws.close()


async def test_ws_handler_failure_closes_with_a_code_not_http_text(client: Any) -> None:
    """A bug while serving an open socket closes it with 1011; no HTTP error is written into the socket."""

    def broken(*args: Any) -> None:
        raise RuntimeError("bug in a frame handler")

    client.app[HUB]._on_text = broken
    ws = await client.ws_connect("/ws", params={"apikey": API_KEY})
    assert (await ws.receive_json(timeout=5))["type"] == "connection:established"
    await ws.send_str('{"type": "ping"}')
    msg = await ws.receive(timeout=5)
    assert msg.type == aiohttp.WSMsgType.CLOSE, msg
    assert msg.data == aiohttp.WSCloseCode.INTERNAL_ERROR


# ---------------------------------------------------------------- /api/players


async def test_players_route_masks_url_credentials(make_client: Any, tmp_path: Path) -> None:
    """GET /api/players never shows a password written into a player's URL, in `url` or `last_error`."""
    url = "http://kodi:url-pw-42@127.0.0.1:9/jsonrpc"
    cfg = make_config(tmp_path, extra={"players": [{"name": "k", "type": "kodi", "url": url}]})
    client = await make_client(cfg)
    await client.agent.db.execute("UPDATE media_players SET last_error = ?",
                                  (f"cannot reach Kodi at {url} (refused)",))
    resp = await client.get("/api/players", headers=HEADERS)
    text = await resp.text()
    assert resp.status == 200 and "url-pw-42" not in text
    player = json.loads(text)["items"][0]
    assert player["url"] == "http://kodi:********@127.0.0.1:9/jsonrpc"
    assert player["last_error"] == "cannot reach Kodi at http://kodi:********@127.0.0.1:9/jsonrpc (refused)"


# ---------------------------------------------------------------- every sender value, every wrong shape


def _replacements(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every key path in a decoded payload."""
    paths: list[tuple[Any, ...]] = [path] if path else []
    if isinstance(value, dict):
        for key, child in value.items():
            paths += _replacements(child, (*path, key))
    elif isinstance(value, list):
        for i, child in enumerate(value[:2]):
            paths += _replacements(child, (*path, i))
    return paths


WRONG = [-1, 2**62, 1.5, "", "x" * 3000, "NaN", "\x1b", True, None, [1], {"a": [1]}, "9" * 25]


@pytest.mark.parametrize("sample", sorted(str(p.relative_to(Path(__file__).parent / "payloads"))
                                          for p in (Path(__file__).parent / "payloads").glob("*/*.json")))
def test_every_value_of_every_sample_in_a_wrong_shape(sample: str) -> None:
    """Each value of each stored sender payload replaced by wrong shapes: a 400-style UserError or a fitting event."""
    from agent.errors import UserError
    from agent.store.fields import FIELDS
    from agent.webhooks import parse_webhook
    from agent.webhooks.locate import hints_of

    source = sample.split("/")[0]
    original = json.loads((Path(__file__).parent / "payloads" / sample).read_text())
    for path in _replacements(original):
        for wrong in WRONG:
            body = json.loads(json.dumps(original))
            target = body
            for key in path[:-1]:
                target = target[key]
            target[path[-1]] = wrong
            try:
                event = parse_webhook(source, json.dumps(body).encode(), "application/json")
            except UserError:
                continue
            hints = hints_of(event).to_payload()
            fields = {"title": hints.get("title"), "year": hints.get("year"), "plot": hints.get("overview"),
                      "genres": hints.get("genres"), **hints.get("ids", {})}
            for name, value in fields.items():
                if value is not None:
                    assert FIELDS[name].check(value, name) == value, (path, wrong, name, value)
            for ep in event.episodes:
                for name in ("season", "episode", "title", "aired", "tvdb_id"):
                    value = getattr(ep, name)
                    assert value is None or FIELDS[name].check(value, name) == value, (path, wrong, name)
            assert len(event.episodes) <= 1000
            json.dumps(event.to_dict(), allow_nan=False)


def test_every_editable_field_has_a_declared_shape() -> None:
    """The field table covers every field a PATCH may name, for movies, series and episodes."""
    from agent.store.fields import FIELDS
    from agent.store.media import editable_fields

    for entity in ("movie", "series", "episode"):
        assert set(editable_fields(entity)) <= set(FIELDS), set(editable_fields(entity)) - set(FIELDS)
