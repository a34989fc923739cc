"""The webhook job end to end: event -> mapped paths -> scan/capture/cleanup/enrich jobs; maintenance."""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from conftest import HEADERS, make_config

from agent import schedule
from agent.clock import FakeClock
from agent.store import migrate_file
from agent.store.migrate import migrations
from agent.store.migrate import split_sql as _split_sql
from agent.webhooks import parse

PAYLOADS = Path(__file__).parent / "payloads"
MATRIX = "The Matrix (1999)"


def payload(source: str, name: str) -> dict[str, Any]:
    """A stored sender payload, decoded."""
    return json.loads((PAYLOADS / source / f"{name}.json").read_text(encoding="utf-8"))


def mapped_config(tmp_path: Path, radarr: str = "/movies", sonarr: str = "/tv") -> Any:
    """Movies + TV libraries under tmp_path with Radarr's /movies and Sonarr's /tv mapped onto them."""
    media = tmp_path / "media"
    return make_config(
        tmp_path,
        extra={
            "sources": {
                "radarr": {"path_mappings": [{"remote": radarr, "local": str(media / "movies")}]},
                "sonarr": {"path_mappings": [{"remote": sonarr, "local": str(media / "tv")}]},
            }
        },
    )


class Recorder:
    """Stub handlers for the job types other engineers own; each records (type, job id, payload)."""

    def __init__(self, agent: Any, types: tuple[str, ...]) -> None:
        self.calls: list[tuple[str, int, dict[str, Any]]] = []
        for type_ in types:
            agent.queue.register(type_, self._make(type_))

    def _make(self, type_: str) -> Any:
        """A handler that records its payload."""

        async def handler(ctx: Any) -> dict[str, Any]:
            """Record the call."""
            self.calls.append((type_, ctx.job.id, ctx.payload))
            return {"stub": type_}

        return handler

    def of(self, type_: str) -> list[dict[str, Any]]:
        """Payloads recorded for one type."""
        return [p for t, _, p in self.calls if t == type_]


STUBS = ("scan", "enrich", "playback_capture", "notify_players")


@pytest.fixture
async def setup(make_client: Any, tmp_path: Path) -> tuple[Any, Any, Recorder]:
    """A real app with mapped sources and stub handlers; (client, agent, recorder)."""
    client = await make_client(mapped_config(tmp_path), clock=FakeClock())
    return client, client.agent, Recorder(client.agent, STUBS)


async def send(client: Any, source: str, data: dict[str, Any]) -> dict[str, Any]:
    """POST a webhook and drain the queue; returns the reply body."""
    resp = await client.post(f"/api/webhooks/{source}", json=data, headers=HEADERS)
    body = await resp.json()
    assert resp.status in (200, 202), body
    await client.agent.queue.run_until_idle()
    return body


async def webhook_job(agent: Any, body: dict[str, Any]) -> Any:
    """The webhook job a reply named."""
    return await agent.queue.get(body["job_ids"][0])


async def add_movie(agent: Any, folder: Path, file: Path, tmdb: int = 603) -> int:
    """Insert a known movie row."""

    def insert(conn: sqlite3.Connection) -> int:
        """Write the row."""
        lib = conn.execute("SELECT id FROM libraries WHERE name = 'Movies'").fetchone()["id"]
        return conn.execute(
            "INSERT INTO movies (library_id, path, file, title, tmdb_id, imdb_id, created_at, updated_at)"
            " VALUES (?, ?, ?, 'The Matrix', ?, 'tt0133093', 0, 0)",
            (lib, str(folder), str(file), tmdb),
        ).lastrowid

    return await agent.db.write(insert)


def movies_dir(tmp_path: Path) -> Path:
    """The Movies library root."""
    return tmp_path / "media" / "movies"


async def test_download_enqueues_scan_of_mapped_folder_with_hints(setup: Any, tmp_path: Path) -> None:
    """Radarr Download -> one scan of the movie folder in Movies at priority 1 with the sender's hints."""
    client, agent, rec = setup
    body = await send(client, "radarr", payload("radarr", "download"))
    job = await webhook_job(agent, body)
    assert job.status.value == "completed", job.error
    folder = movies_dir(tmp_path) / MATRIX
    [scan] = rec.of("scan")
    assert scan["library"] == "Movies" and scan["folder"] == str(folder)
    assert scan["file"] == str(folder / f"{MATRIX} Bluray-1080p.mkv")
    assert scan["source"] == "webhook" and scan["priority"] == 1 and "upgrade" not in scan
    hints = scan["hints"]
    assert (hints["title"], hints["year"]) == ("The Matrix", 1999)
    assert hints["ids"] == {"tmdb_id": 603, "imdb_id": "tt0133093"}
    assert "Science Fiction" in hints["genres"] and hints["overview"]
    assert {
        "type": "poster",
        "url": "https://image.tmdb.org/t/p/original/f89U3ADr1oiB1s9GkdPOEpXUk5H.jpg",
    } in hints["images"]
    [scan_job] = [j for j in (await agent.queue.list(type_="scan"))[0]]
    assert scan_job.priority == 1 and scan_job.dedupe_key == f"scan:Movies:{folder}"
    assert job.result["enqueued"] == [
        {"type": "scan", "job_id": scan_job.id, "library": "Movies", "folder": str(folder)}
    ]


def counting_parsers(monkeypatch: pytest.MonkeyPatch, fail: bool = False) -> list[str]:
    """Wrap every sender parser to note each call (or to fail the test's job if called at all)."""
    calls: list[str] = []
    for source, parser in list(parse.PARSERS.items()):

        def wrapped(body: bytes, content_type: str, source: str = source, parser: Any = parser) -> Any:
            """Note the call, then parse (or refuse)."""
            calls.append(source)
            if fail:
                raise AssertionError(f"the {source} parser ran again")
            return parser(body, content_type)

        monkeypatch.setitem(parse.PARSERS, source, wrapped)
    return calls


async def test_job_uses_the_recorded_event_never_the_senders_body(
    setup: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The route stores the parsed event beside the body; the job reads it back and no parser runs again."""
    client, agent, rec = setup
    data = payload("radarr", "download")
    resp = await client.post("/api/webhooks/radarr", json=data, headers=HEADERS)
    body = await resp.json()
    assert resp.status == 202, body
    row = await agent.db.fetchone("SELECT payload, event FROM webhook_events WHERE id = ?", (body["event_id"],))
    assert json.loads(row["payload"]) == data
    expected = parse.parse_webhook("radarr", json.dumps(data).encode(), "application/json").to_dict()
    assert json.loads(row["event"]) == expected and "raw" not in expected
    calls = counting_parsers(monkeypatch, fail=True)
    await agent.db.execute("UPDATE webhook_events SET payload = 'not json' WHERE id = ?", (body["event_id"],))
    await agent.queue.run_until_idle()
    job = await webhook_job(agent, body)
    assert job.status.value == "completed", job.error
    assert calls == []
    [scan] = rec.of("scan")
    assert scan["folder"] == str(movies_dir(tmp_path) / MATRIX)
    assert scan["hints"]["ids"] == {"tmdb_id": 603, "imdb_id": "tt0133093"}


async def record_old_style(agent: Any, raw: str) -> int:
    """A webhook_events row as written before migration 0004 (no event) with its webhook job queued."""
    event_id = await agent.db.execute(
        "INSERT INTO webhook_events (source, event_type, payload, received_at) VALUES ('radarr', 'Download', ?, 0)",
        (raw,),
    )
    await agent.queue.enqueue("webhook", {"event_id": event_id}, priority=1)
    return event_id


async def test_event_recorded_before_0004_has_its_payload_parsed_once(
    setup: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A row without an event (recorded by an older agent) is parsed from its payload, once, then planned."""
    _, agent, rec = setup
    calls = counting_parsers(monkeypatch)
    await record_old_style(agent, json.dumps(payload("radarr", "download")))
    await agent.queue.run_until_idle()
    assert calls == ["radarr"]
    [scan] = rec.of("scan")
    assert scan["folder"] == str(movies_dir(tmp_path) / MATRIX)
    assert (scan["hints"]["title"], scan["hints"]["ids"]) == ("The Matrix", {"tmdb_id": 603, "imdb_id": "tt0133093"})


async def test_unreadable_recorded_events_fail_naming_the_event(setup: Any) -> None:
    """An old row whose body no longer parses, a damaged stored event, a gone row: each a permanent failure."""
    _, agent, _ = setup
    old = await record_old_style(agent, '{"eventType": 5}')
    damaged = await agent.db.execute(
        "INSERT INTO webhook_events (source, event_type, payload, event, received_at)"
        " VALUES ('radarr', 'Download', '{}', '{\"action\": \"explode\"}', 0)"
    )
    jobs = [
        await agent.queue.enqueue("webhook", {"event_id": damaged}),
        await agent.queue.enqueue("webhook", {"event_id": 9999}),
        await agent.queue.enqueue("webhook", {"event_id": "7"}),
    ]
    await agent.queue.run_until_idle()
    [old_job] = [j for j in (await agent.queue.list(type_="webhook"))[0] if j.payload == {"event_id": old}]
    errors = [old_job.error] + [(await agent.queue.get(j.id)).error for j in jobs]
    assert f"webhook event {old} cannot be parsed again" in errors[0] and "eventType" in errors[0]
    assert f"webhook event {damaged}: its stored event cannot be read" in errors[1]
    assert "webhook event 9999 does not exist" in errors[2]
    assert "integer event_id, got '7'" in errors[3]
    for job in [old_job, *jobs]:
        done = await agent.queue.get(job.id)
        assert (done.status.value, done.attempts) == ("failed", 1), done


def test_migration_0004_leaves_earlier_events_without_an_event(tmp_path: Path) -> None:
    """A database at schema 3 keeps its webhook rows; they get a NULL event, which the job parses from payload."""
    path = tmp_path / "metarr.sqlite"
    with sqlite3.connect(path, isolation_level=None) as conn:  # schema 3 as the migrations of that day left it
        for version, _, sql in migrations()[:3]:
            for statement in _split_sql(sql):
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {version}")
        conn.execute(
            "INSERT INTO webhook_events (source, event_type, payload, received_at)"
            " VALUES ('radarr', 'Download', '{}', 0)"
        )
    assert migrate_file(path)[0] == 3
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT payload, event FROM webhook_events").fetchall() == [("{}", None)]
    conn.close()


async def test_unmapped_path_fails_permanently_naming_path_and_mappings(
    make_client: Any, tmp_path: Path
) -> None:
    """A path no mapping covers fails the job once (no retry), naming the path and the mappings."""
    client = await make_client(mapped_config(tmp_path, radarr="/data/films"))
    rec = Recorder(client.agent, STUBS)
    body = await send(client, "radarr", payload("radarr", "download"))
    job = await webhook_job(client.agent, body)
    assert job.status.value == "failed" and job.attempts == 1
    assert f"/movies/{MATRIX}/{MATRIX} Bluray-1080p.mkv" in job.error
    assert "/data/films ->" in job.error and str(movies_dir(tmp_path)) in job.error
    assert rec.calls == []


async def test_identity_mapping_outside_libraries_fails(make_client: Any, tmp_path: Path) -> None:
    """With no mappings the path is taken as-is; outside every library it fails naming both."""
    client = await make_client(make_config(tmp_path))
    rec = Recorder(client.agent, STUBS)
    job = await webhook_job(client.agent, await send(client, "radarr", payload("radarr", "download")))
    assert job.status.value == "failed"
    assert "outside every library" in job.error and "none (paths taken as-is)" in job.error
    assert rec.calls == []


async def test_identity_mapping_inside_a_library_works(make_client: Any, tmp_path: Path) -> None:
    """A sender that sees our paths needs no mapping."""
    client = await make_client(make_config(tmp_path))
    rec = Recorder(client.agent, STUBS)
    data = payload("radarr", "download")
    folder = movies_dir(tmp_path) / MATRIX
    data["movie"]["folderPath"] = str(folder)
    data["movieFile"]["path"] = str(folder / "x.mkv")
    await send(client, "radarr", data)
    assert rec.of("scan")[0]["folder"] == str(folder)


@pytest.mark.parametrize("escape", ["dotdot", "symlink"])
async def test_escapes_fail(setup: Any, tmp_path: Path, escape: str) -> None:
    """`..` climbing out of the mapping, or a symlink inside the library pointing out, fails the job."""
    client, agent, rec = setup
    data = payload("radarr", "download")
    if escape == "dotdot":
        data["movieFile"]["path"] = "/movies/../../etc/passwd.mkv"
        expected = "etc/passwd.mkv"
    else:
        outside = tmp_path / "outside"
        outside.mkdir()
        os.symlink(outside, movies_dir(tmp_path) / "evil")
        data["movieFile"]["path"] = "/movies/evil/x.mkv"
        expected = "outside every library"
    job = await webhook_job(agent, await send(client, "radarr", data))
    assert job.status.value == "failed" and expected in job.error
    assert rec.calls == []


async def test_upgrade_captures_before_scan(setup: Any, tmp_path: Path) -> None:
    """Download with isUpgrade + deletedFiles: playback_capture first, the scan (upgrade) depends on it."""
    client, agent, rec = setup
    folder = movies_dir(tmp_path) / MATRIX
    old = folder / f"{MATRIX} Bluray-1080p.mkv"
    movie_id = await add_movie(agent, folder, old)
    await send(client, "radarr", payload("radarr", "download_upgrade"))
    assert [t for t, _, _ in rec.calls] == ["playback_capture", "scan"]
    (_, cap_id, cap), (_, scan_id, scan) = rec.calls
    assert cap == {"entity": "movie", "id": movie_id, "files": [str(old)], "source": "radarr", "priority": 1}
    assert scan["upgrade"] is True and scan["file"] == str(folder / f"{MATRIX} Remux-2160p.mkv")
    assert (await agent.queue.get(scan_id)).depends_on == [cap_id]


async def test_file_delete_upgrade_then_download_captures_once(setup: Any, tmp_path: Path) -> None:
    """MovieFileDelete (upgrade) captures; the following Download upgrade does not capture again."""
    client, agent, rec = setup
    folder = movies_dir(tmp_path) / MATRIX
    movie_id = await add_movie(agent, folder, folder / f"{MATRIX} Bluray-1080p.mkv")
    await send(client, "radarr", payload("radarr", "movie_file_delete_upgrade"))
    assert rec.of("playback_capture") == [
        {
            "entity": "movie",
            "id": movie_id,
            "source": "radarr",
            "priority": 1,
            "files": [str(folder / f"{MATRIX} Bluray-1080p.mkv")],
        }
    ]
    assert rec.of("scan") == []
    body = await send(client, "radarr", payload("radarr", "download_upgrade"))
    assert len(rec.of("playback_capture")) == 1 and len(rec.of("scan")) == 1
    job = await webhook_job(agent, body)
    assert [e["type"] for e in job.result["enqueued"]] == ["scan"]


async def test_upgrade_of_unknown_movie_just_scans(setup: Any) -> None:
    """No known row for the replaced file: nothing to capture, the scan still runs (with a note why)."""
    client, agent, rec = setup
    data = payload("radarr", "download_upgrade")
    data["movie"]["tmdbId"] = 999999
    data["remoteMovie"]["tmdbId"] = 999999
    body = await send(client, "radarr", data)
    assert [t for t, _, _ in rec.calls] == ["scan"]
    assert "nothing to capture" in (await webhook_job(agent, body)).result["notes"][0]


def sha(data: bytes) -> str:
    """Hex sha256."""
    return hashlib.sha256(data).hexdigest()


async def test_rename_removes_only_own_unchanged_files(setup: Any, tmp_path: Path) -> None:
    """Rename: the agent's unchanged files under the old stem go; changed, foreign and new-name files stay."""
    client, agent, rec = setup
    folder = movies_dir(tmp_path) / MATRIX
    folder.mkdir(parents=True)
    old_stem, new_stem = f"{MATRIX} Bluray-1080p", f"{MATRIX} {{tmdb-603}}"
    files = {
        f"{old_stem}.nfo": (b"<movie/>", "own"),
        f"{old_stem}-poster.jpg": (b"poster", "own"),
        f"{old_stem}-fanart.jpg": (b"fanart", "changed"),
        f"{old_stem}-landscape.jpg": (b"user's", "foreign"),
        f"{old_stem} extra.nfo": (b"<movie/>", "own"),  # another stem: not `<old stem>.` or `<old stem>-`
        f"{new_stem}.nfo": (b"<movie/>", "own"),
        "poster.jpg": (b"poster", "own"),
        f"{new_stem}.mkv": (b"video", "foreign"),
    }
    rows = []
    for name, (data, kind) in files.items():
        (folder / name).write_bytes(data)
        if kind != "foreign":
            recorded = sha(data) if kind == "own" else sha(b"what the agent wrote")
            rows.append((str(folder / name), "movie", 1, "nfo", recorded, 0.0))
    await agent.db.write(
        lambda c: c.executemany("INSERT INTO published_files VALUES (?, ?, ?, ?, ?, ?)", rows)
    )
    body = await send(client, "radarr", payload("radarr", "rename"))
    job = await webhook_job(agent, body)
    assert job.status.value == "completed", job.error
    left = sorted(p.name for p in folder.iterdir())
    assert left == sorted(set(files) - {f"{old_stem}.nfo", f"{old_stem}-poster.jpg"})
    assert sorted(job.result["removed"]) == sorted(
        str(folder / n) for n in (f"{old_stem}.nfo", f"{old_stem}-poster.jpg")
    )
    assert job.result["kept"] == [str(folder / f"{old_stem}-fanart.jpg")]
    known = {r["path"] for r in await agent.db.fetchall("SELECT path FROM published_files")}
    assert str(folder / f"{old_stem}.nfo") not in known and str(folder / f"{old_stem}-fanart.jpg") in known
    [scan] = rec.of("scan")
    assert scan["folder"] == str(folder) and scan["source"] == "webhook"


async def test_sonarr_import_complete_scans_show_folder_once(setup: Any, tmp_path: Path) -> None:
    """On Import Complete with two files -> one scan of the mapped show folder, episodes in the hints."""
    client, _, rec = setup
    await send(client, "sonarr", payload("sonarr", "import_complete"))
    [scan] = rec.of("scan")
    show = tmp_path / "media" / "tv" / "Breaking Bad"
    assert scan["library"] == "TV" and scan["folder"] == str(show)
    assert scan["hints"]["ids"] == {"tmdb_id": 1396, "imdb_id": "tt0903747", "tvdb_id": 81189}
    episodes = scan["hints"]["episodes"]
    assert [(e["season"], e["episode"]) for e in episodes] == [(1, 2), (1, 3), (1, 4)]
    assert episodes[2]["file"] == str(show / "Season 01" / "Breaking Bad - S01E04 - Cancer Man.mkv")


async def test_added_scans_only_an_existing_folder(setup: Any, tmp_path: Path) -> None:
    """MovieAdded before the import: nothing; once the folder exists: a scan at priority 1."""
    client, agent, rec = setup
    body = await send(client, "radarr", payload("radarr", "movie_added"))
    assert "does not exist yet" in (await webhook_job(agent, body)).result["nothing"]
    assert rec.calls == []
    (movies_dir(tmp_path) / MATRIX).mkdir()
    await send(client, "radarr", payload("radarr", "movie_added"))
    assert rec.of("scan")[0]["folder"] == str(movies_dir(tmp_path) / MATRIX)


async def test_movie_delete_cleans_up_and_notifies(setup: Any, tmp_path: Path) -> None:
    """MovieDelete -> cleanup (real handler) marks the movie missing -> notify_players Deleted."""
    client, agent, rec = setup
    folder = movies_dir(tmp_path) / MATRIX
    file = folder / f"{MATRIX} Bluray-1080p.mkv"
    movie_id = await add_movie(agent, folder, file)
    body = await send(client, "radarr", payload("radarr", "movie_delete"))
    job = await webhook_job(agent, body)
    [cleanup] = (await agent.queue.list(type_="cleanup"))[0]
    assert job.result["enqueued"][0]["job_id"] == cleanup.id and cleanup.priority == 1
    assert cleanup.payload["reason"] == "radarr MovieDelete" and cleanup.status.value == "completed"
    assert rec.of("notify_players") == [
        {
            "entity": "movie",
            "id": movie_id,
            "update": "Deleted",
            "file": str(file),
            "folder": str(folder),
            "priority": 1,
        }
    ]
    row = await agent.db.fetchone("SELECT missing_since FROM movies WHERE id = ?", (movie_id,))
    assert row["missing_since"] == agent.clock.now()


async def test_delete_keeps_an_item_whose_file_is_still_there(setup: Any, tmp_path: Path) -> None:
    """MovieDelete without deleting files: the movie stays, no Deleted notice."""
    client, agent, rec = setup
    folder = movies_dir(tmp_path) / MATRIX
    folder.mkdir()
    file = folder / "m.mkv"
    file.write_bytes(b"video")
    movie_id = await add_movie(agent, folder, file)
    await send(client, "radarr", payload("radarr", "movie_delete"))
    [cleanup] = (await agent.queue.list(type_="cleanup"))[0]
    assert cleanup.result["kept"][0]["id"] == movie_id and rec.of("notify_players") == []
    row = await agent.db.fetchone("SELECT missing_since FROM movies WHERE id = ?", (movie_id,))
    assert row["missing_since"] is None


async def test_delete_of_unknown_movie_does_nothing(setup: Any) -> None:
    """No row matches the folder or ids: the job completes saying so."""
    client, agent, rec = setup
    body = await send(client, "radarr", payload("radarr", "movie_delete"))
    assert "no known movie" in (await webhook_job(agent, body)).result["nothing"]
    assert rec.calls == []


async def test_series_delete_marks_series_and_episodes_missing(setup: Any, tmp_path: Path) -> None:
    """SeriesDelete -> cleanup of the series by folder; its episodes go missing with it."""
    client, agent, rec = setup
    show = tmp_path / "media" / "tv" / "Breaking Bad"

    def insert(conn: sqlite3.Connection) -> int:
        """A series with one episode."""
        lib = conn.execute("SELECT id FROM libraries WHERE name = 'TV'").fetchone()["id"]
        sid = conn.execute(
            "INSERT INTO series (library_id, path, title, created_at, updated_at)"
            " VALUES (?, ?, 'Breaking Bad', 0, 0)",
            (lib, str(show)),
        ).lastrowid
        conn.execute(
            "INSERT INTO episodes (series_id, season, episode, file, created_at, updated_at)"
            " VALUES (?, 1, 1, ?, 0, 0)",
            (sid, str(show / "e1.mkv")),
        )
        return sid

    series_id = await agent.db.write(insert)
    await send(client, "sonarr", payload("sonarr", "series_delete"))
    assert rec.of("notify_players") == [
        {"entity": "series", "id": series_id, "update": "Deleted", "folder": str(show), "priority": 1}
    ]
    row = await agent.db.fetchone("SELECT missing_since FROM episodes WHERE series_id = ?", (series_id,))
    assert row["missing_since"] is not None


async def test_file_delete_other_reason_cleans_up(setup: Any, tmp_path: Path) -> None:
    """MovieFileDelete for another reason (missing from disk) -> cleanup with the file, not a capture."""
    client, agent, rec = setup
    folder = movies_dir(tmp_path) / MATRIX
    file = folder / f"{MATRIX} Bluray-1080p.mkv"
    movie_id = await add_movie(agent, folder, file)
    data = payload("radarr", "movie_file_delete_upgrade")
    data["deleteReason"] = "missingFromDisk"
    await send(client, "radarr", data)
    assert rec.of("playback_capture") == []
    [cleanup] = (await agent.queue.list(type_="cleanup"))[0]
    assert cleanup.payload["files"] == [str(file)] and "missingFromDisk" in cleanup.payload["reason"]
    assert rec.of("notify_players")[0]["id"] == movie_id


async def test_jellyfin_item_added_matches_known_movie(setup: Any, tmp_path: Path) -> None:
    """Jellyfin ItemAdded for a known movie: recorded as matched, nothing queued."""
    client, agent, rec = setup
    folder = movies_dir(tmp_path) / MATRIX
    movie_id = await add_movie(agent, folder, folder / "m.mkv")
    body = await send(client, "jellyfin", payload("jellyfin", "item_added_movie"))
    job = await webhook_job(agent, body)
    assert job.result["matched"] == {"entity": "movie", "id": movie_id} and rec.calls == []


async def test_playback_emits_player_activity(setup: Any, tmp_path: Path) -> None:
    """Jellyfin PlaybackStop -> player:activity idle with the device and, for a known movie, its file."""
    client, agent, rec = setup
    folder = movies_dir(tmp_path) / MATRIX
    await add_movie(agent, folder, folder / "m.mkv")
    seen: list[tuple[str, dict]] = []
    agent.events.subscribe(lambda t, d: seen.append((t, d)))
    await send(client, "jellyfin", payload("jellyfin", "playback_stop_movie"))
    [activity] = [d for t, d in seen if t == "player:activity"]
    assert activity["player"] == "jellyfin:Living Room" and activity["state"] == "idle"
    assert activity["title"] == "The Matrix" and activity["file"] == str(folder / "m.mkv")
    assert activity["total"] == pytest.approx(8172.0)
    assert rec.calls == []


async def test_plex_library_new_enriches_known_movie(setup: Any, tmp_path: Path) -> None:
    """Plex library.new with a legacy imdb guid -> enrich of the known movie at priority 1."""
    client, agent, rec = setup
    folder = movies_dir(tmp_path) / MATRIX
    movie_id = await add_movie(agent, folder, folder / "m.mkv")
    resp = await client.post(
        "/api/webhooks/plex", json=payload("plex", "library_new_legacy"), headers=HEADERS
    )
    assert resp.status == 202
    await agent.queue.run_until_idle()
    [enrich] = rec.of("enrich")
    assert enrich["entity"] == "movie" and enrich["id"] == movie_id and enrich["priority"] == 1
    assert enrich["hints"]["ids"] == {"imdb_id": "tt0133093"}


async def test_plex_play_of_unknown_item_still_reports_activity(setup: Any) -> None:
    """Plex media.play for an unknown movie: activity without a file."""
    client, agent, _ = setup
    seen: list[dict] = []
    agent.events.subscribe(lambda t, d: seen.append(d) if t == "player:activity" else None)
    await send(client, "plex", payload("plex", "media_play_movie"))
    assert (
        seen[0]["player"] == "plex:Living Room TV" and seen[0]["state"] == "playing" and "file" not in seen[0]
    )


# ---------------------------------------------------------------- maintenance


async def test_scheduler_enqueues_cache_gc_daily_and_expires_playback(setup: Any) -> None:
    """The first pass only remembers the time; a day later cache_gc is queued once; expired captures go."""
    _, agent, _ = setup
    clock: FakeClock = agent.clock
    await agent.maintenance.stop()  # drive passes by hand
    await agent.db.execute("DELETE FROM meta WHERE key = ?", (schedule.GC_META_KEY,))
    now = clock.now()
    rows = [
        ("kodi", "movie", 1, "/a.mkv", now - 10, now - 1, None),
        ("kodi", "movie", 2, "/b.mkv", now, now + 99, None),
        ("kodi", "movie", 3, "/c.mkv", now - 10, now - 1, now - 5),
    ]
    await agent.db.write(
        lambda c: c.executemany(
            "INSERT INTO playback_state (player, entity_type, entity_id, old_file, captured_at, expires_at,"
            " restored_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            rows,
        )
    )
    first = await agent.maintenance.tick()
    assert first == {"cache_gc_job": None, "playback_expired": 1}
    left = [
        r["entity_id"] for r in await agent.db.fetchall("SELECT entity_id FROM playback_state ORDER BY id")
    ]
    assert left == [2, 3]
    clock.advance(schedule.GC_EVERY - 1)
    assert (await agent.maintenance.tick())["cache_gc_job"] is None
    clock.advance(1)
    job_id = (await agent.maintenance.tick())["cache_gc_job"]
    job = await agent.queue.get(job_id)
    assert (job.type, job.priority, job.dedupe_key) == ("cache_gc", 10, "cache_gc")
    assert (await agent.maintenance.tick())["cache_gc_job"] is None


async def test_cache_gc_job_returns_the_cache_report(setup: Any, tmp_path: Path) -> None:
    """cache_gc runs the asset cache's GC (an orphan file is removed) and returns its report."""
    _, agent, _ = setup
    orphan = tmp_path / "data" / "cache" / "assets" / "ab" / "cd" / ("abcd" + "0" * 60 + ".jpg")
    orphan.parent.mkdir(parents=True)
    orphan.write_bytes(b"x")
    os.utime(orphan, (agent.clock.now() - 30 * 86400, agent.clock.now() - 30 * 86400))
    job = await agent.queue.enqueue("cache_gc", {})
    await agent.queue.run_until_idle()
    done = await agent.queue.get(job.id)
    assert done.status.value == "completed", done.error
    assert set(done.result) >= {"assets_deleted", "orphans_deleted", "bytes_freed"}
    assert done.result["orphans_deleted"] == 1 and not orphan.exists()


async def test_events_recorded_without_a_job_are_resumed_at_start(setup: Any) -> None:
    """An event row written just before a stop (no job yet) gets its webhook job when services start."""
    _, agent, _ = setup
    raw = json.dumps(payload("radarr", "download"))
    event_id = await agent.db.execute(
        "INSERT INTO webhook_events (source, event_type, payload, received_at)"
        " VALUES ('radarr', 'Download', ?, 0)",
        (raw,),
    )
    await agent.db.execute(
        "INSERT INTO webhook_events (source, event_type, payload, received_at, ignored)"
        " VALUES ('radarr', 'Grab', '{}', 0, 'Grab')"
    )
    queued = await agent.db.execute(
        "INSERT INTO webhook_events (source, event_type, payload, received_at)"
        " VALUES ('radarr', 'Download', ?, 0)",
        (raw,),
    )
    await agent.queue.enqueue("webhook", {"event_id": queued}, priority=1)  # job written, job_ids not yet
    [job_id] = await agent.maintenance.resume_webhooks()
    job = await agent.queue.get(job_id)
    assert job.payload == {"event_id": event_id} and job.priority == 1
    assert await agent.maintenance.resume_webhooks() == []


async def test_cleanup_rejects_bad_payloads(setup: Any) -> None:
    """A cleanup without entity or target fails permanently with a clear message."""
    _, agent, _ = setup
    bad = await agent.queue.enqueue("cleanup", {"entity": "album", "id": 1})
    empty = await agent.queue.enqueue("cleanup", {"entity": "movie"})
    await agent.queue.run_until_idle()
    assert "movie, series or episode" in (await agent.queue.get(bad.id)).error
    assert "an id or files" in (await agent.queue.get(empty.id)).error
