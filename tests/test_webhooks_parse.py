"""Tests for agent.webhooks: every sender's payloads become the right normalised event."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from agent.errors import NotFound, UserError
from agent.paths import PathMapper
from agent.webhooks import (
    Action,
    EpisodeInfo,
    ImageRef,
    parse_jellyfin,
    parse_plex,
    parse_radarr,
    parse_sonarr,
    parse_webhook,
)
from agent.webhooks.model import WebhookEvent

PAYLOADS = Path(__file__).parent / "payloads"
JSON = "application/json"


def load(name: str) -> dict[str, Any]:
    """Read one stored payload as a dict."""
    return json.loads((PAYLOADS / name).read_text(encoding="utf-8"))


def raw(name: str) -> bytes:
    """Read one stored payload as the bytes a sender would post."""
    return (PAYLOADS / name).read_bytes()


def encode(data: dict[str, Any]) -> bytes:
    """Serialise a payload dict."""
    return json.dumps(data).encode("utf-8")


# --- Radarr -----------------------------------------------------------------


def test_radarr_payloads_put_event_type_last() -> None:
    """The stored payloads follow Radarr's shape: eventType after the derived fields, no nulls."""
    for path in (PAYLOADS / "radarr").glob("*.json"):
        data = json.loads(path.read_text())
        assert "eventType" in list(data)[-3:], path.name
        assert "null" not in path.read_text(), path.name


def test_radarr_download() -> None:
    """A plain import: ids, art from remoteUrl, the file from movieFile.path, the folder."""
    event = parse_radarr(raw("radarr/download.json"), JSON)
    assert (event.source, event.event_type, event.action) == ("radarr", "Download", Action.IMPORT)
    assert event.needs_work and event.ignore_reason is None
    assert event.media_kind == "movie"
    assert event.ids == {"tmdb": 603, "imdb": "tt0133093"}
    assert (event.title, event.year) == ("The Matrix", 1999)
    assert event.genres == ["Action", "Science Fiction"]
    assert event.overview and event.overview.startswith("A hacker")
    assert [i.type for i in event.images] == ["poster", "fanart", "clearlogo"]
    assert event.images[0] == ImageRef(
        "poster", "https://image.tmdb.org/t/p/original/f89U3ADr1oiB1s9GkdPOEpXUk5H.jpg"
    )
    assert event.remote_folder == "/movies/The Matrix (1999)"
    assert event.remote_files == ["/movies/The Matrix (1999)/The Matrix (1999) Bluray-1080p.mkv"]
    assert not event.is_upgrade and event.deleted_files == [] and event.files_deleted is None
    assert event.instance_name == "Radarr"
    assert event.raw["downloadId"] == "ABCDEF"


def test_radarr_upgrade_joins_folder_and_relative_path() -> None:
    """isUpgrade -> UPGRADE; no movieFile.path -> folderPath + relativePath; deletedFiles list read."""
    event = parse_radarr(raw("radarr/download_upgrade.json"), JSON)
    assert event.action is Action.UPGRADE and event.is_upgrade
    assert event.remote_files == ["/movies/The Matrix (1999)/The Matrix (1999) Remux-2160p.mkv"]
    assert event.deleted_files == ["/movies/The Matrix (1999)/The Matrix (1999) Bluray-1080p.mkv"]
    assert event.files_deleted is True


def test_radarr_file_delete_for_upgrade() -> None:
    """MovieFileDelete keeps deleteReason 'upgrade' so the Download that follows can be recognised."""
    event = parse_radarr(raw("radarr/movie_file_delete_upgrade.json"), JSON)
    assert event.action is Action.FILE_DELETED
    assert event.delete_reason == "upgrade"
    assert event.deleted_files == ["/movies/The Matrix (1999)/The Matrix (1999) Bluray-1080p.mkv"]
    assert event.remote_files == []


def test_radarr_rename() -> None:
    """Rename pairs previousPath with path."""
    event = parse_radarr(raw("radarr/rename.json"), JSON)
    assert event.action is Action.RENAME
    assert event.renamed == [
        (
            "/movies/The Matrix (1999)/The Matrix (1999) Bluray-1080p.mkv",
            "/movies/The Matrix (1999)/The Matrix (1999) {tmdb-603}.mkv",
        )
    ]
    assert event.remote_files == ["/movies/The Matrix (1999)/The Matrix (1999) {tmdb-603}.mkv"]


def test_radarr_added_and_deleted() -> None:
    """MovieAdded -> ADDED; MovieDelete's deletedFiles bool -> files_deleted."""
    added = parse_radarr(raw("radarr/movie_added.json"), JSON)
    assert added.action is Action.ADDED and added.remote_folder == "/movies/The Matrix (1999)"
    deleted = parse_radarr(raw("radarr/movie_delete.json"), JSON)
    assert deleted.action is Action.DELETED
    assert deleted.files_deleted is True and deleted.deleted_files == []


def test_radarr_test_event_with_windows_path() -> None:
    """Test -> TEST with a reason; tmdbId 0 dropped, remoteMovie ids used, C:\\testpath kept."""
    event = parse_radarr(raw("radarr/test.json"), JSON)
    assert event.action is Action.TEST and not event.needs_work
    assert event.ignore_reason == "Test: Radarr connection test received"
    assert event.remote_folder == "C:\\testpath"
    assert event.ids == {"tmdb": 1234, "imdb": "tt0005678"}


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("radarr/grab.json", "Grab: nothing to do until the file is imported"),
        ("radarr/health.json", "Health: a health check notice needs no work"),
        ("radarr/application_update.json", "ApplicationUpdate: Radarr updated itself; nothing to do"),
        (
            "radarr/manual_interaction.json",
            "ManualInteractionRequired: the import waits for someone in Radarr",
        ),
    ],
)
def test_radarr_ignored_events(name: str, reason: str) -> None:
    """Events that need no work are IGNORED with a reason a user understands."""
    event = parse_radarr(raw(name), JSON)
    assert event.action is Action.IGNORED
    assert event.ignore_reason and event.ignore_reason.startswith(reason)


def test_radarr_unknown_event_type_is_ignored() -> None:
    """A future eventType is ignored, not an error."""
    event = parse_radarr(encode({"movie": {"title": "X"}, "eventType": "MovieFutureThing"}), JSON)
    assert event.action is Action.IGNORED
    assert event.ignore_reason == "unknown event type 'MovieFutureThing'"


def test_radarr_tolerates_missing_keys_and_odd_types() -> None:
    """Nulls omitted and odd value types never crash: a minimal Download still parses."""
    body = {
        "movie": {
            "title": "Bare",
            "tmdbId": "0",
            "imdbId": 0,
            "images": "nope",
            "genres": None,
            "year": "1999",
        },
        "movieFile": {"relativePath": "Bare.mkv", "indexerFlags": "G_Freeleech, G_Internal"},
        "deletedFiles": "sometimes",
        "isUpgrade": "false",
        "eventType": "Download",
    }
    event = parse_radarr(encode(body), JSON)
    assert event.action is Action.IMPORT
    assert event.ids == {} and event.images == [] and event.genres == [] and event.year == 1999
    assert event.remote_files == [] and event.remote_folder is None


def test_radarr_folder_derived_from_file_when_missing() -> None:
    """Without folderPath the folder is the movie file's parent, in the sender's style."""
    body = {
        "movie": {"title": "X"},
        "movieFile": {"path": "D:\\Movies\\X (2000)\\X.mkv"},
        "eventType": "Download",
    }
    event = parse_radarr(encode(body), JSON)
    assert event.remote_folder == "D:\\Movies\\X (2000)"
    mapper = PathMapper([{"remote": "d:\\movies", "local": "/srv/movies"}])
    assert mapper.to_local(event.remote_files[0]) == "/srv/movies/X (2000)/X.mkv"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"", "radarr webhook: empty body"),
        (b"<xml/>", "radarr webhook: body is not JSON (content type application/xml): Expecting value"),
        (b"[1, 2]", "radarr webhook: body is JSON an array, expected an object"),
        (b"\xff\xfe{}", "radarr webhook: body is not UTF-8 text"),
        (b'{"movie": {}}', "radarr webhook: no 'eventType' in the body; is this a radarr payload?"),
        (b'{"eventType": 3}', "radarr webhook: 'eventType' is a number, expected a string"),
        (b'{"eventType": " "}', "radarr webhook: 'eventType' is empty"),
        (
            b'{"movie": "The Matrix", "eventType": "Download"}',
            "radarr webhook: 'movie' is a string, expected an object",
        ),
        (b'{"eventType": "Download"}', "radarr webhook: Download event without a 'movie' object"),
        (
            b'{"series": {"title": "BB"}, "eventType": "Download"}',
            "radarr webhook: body has 'series' but no 'movie'; this looks like a Sonarr payload",
        ),
        (
            b'{"movie": {}, "movieFile": [], "eventType": "Download"}',
            "radarr webhook: 'movieFile' is an array, expected an object",
        ),
    ],
)
def test_radarr_bad_bodies(body: bytes, message: str) -> None:
    """Bodies that are not Radarr's format raise UserError saying what is wrong."""
    content_type = "application/xml" if body.startswith(b"<") else JSON
    with pytest.raises(UserError) as err:
        parse_radarr(body, content_type)
    assert err.value.message.startswith(message), err.value.message
    assert err.value.status == 400


# --- Sonarr -----------------------------------------------------------------


def test_sonarr_download_single_file() -> None:
    """A single-episode import: series ids, episode details, the file on the episode."""
    event = parse_sonarr(raw("sonarr/download.json"), JSON)
    assert (event.source, event.action, event.media_kind) == ("sonarr", Action.IMPORT, "episode")
    assert event.ids == {"tmdb": 1396, "imdb": "tt0903747", "tvdb": 81189}
    assert event.series_title == "Breaking Bad" and event.title == "Breaking Bad"
    assert (event.season, event.episode) == (1, 1)
    path = "/tv/Breaking Bad/Season 01/Breaking Bad - S01E01 - Pilot WEBDL-1080p.mkv"
    assert event.remote_files == [path]
    assert event.remote_folder == "/tv/Breaking Bad"
    assert event.episodes == [
        EpisodeInfo(1, 1, "Pilot", "2008-01-20", "Overview of Pilot.", 349232, path),
    ]
    assert [i.type for i in event.images] == ["banner", "poster", "clearlogo"]


def test_sonarr_on_import_complete_uses_episode_files() -> None:
    """'On Import Complete' (episodeFiles[]) lists every file and matches each episode to its file."""
    event = parse_sonarr(raw("sonarr/import_complete.json"), JSON)
    assert event.action is Action.IMPORT
    double = (
        "/tv/Breaking Bad/Season 01/"
        "Breaking Bad - S01E02E03 - Cat's in the Bag + And the Bag's in the River.mkv"
    )
    single = "/tv/Breaking Bad/Season 01/Breaking Bad - S01E04 - Cancer Man.mkv"
    assert event.remote_files == [double, single]
    assert [(e.episode, e.file) for e in event.episodes] == [(2, double), (3, double), (4, single)]
    assert event.season is None and event.episode is None


def test_sonarr_episode_file_delete_upgrade() -> None:
    """EpisodeFileDelete with deleteReason upgrade lists the deleted file."""
    event = parse_sonarr(raw("sonarr/episode_file_delete_upgrade.json"), JSON)
    assert event.action is Action.FILE_DELETED and event.delete_reason == "upgrade"
    assert event.deleted_files == ["/tv/Breaking Bad/Season 01/Breaking Bad - S01E01 - Pilot WEBDL-1080p.mkv"]
    assert event.episodes[0].file == event.deleted_files[0]


def test_sonarr_rename_with_previous_relative_path() -> None:
    """Rename reads previousPath, or series.path + previousRelativePath when only that is sent."""
    event = parse_sonarr(raw("sonarr/rename.json"), JSON)
    assert event.action is Action.RENAME and event.media_kind == "series"
    assert event.renamed == [
        (
            "/tv/Breaking Bad/Season 01/Breaking Bad - S01E01 - Pilot WEBDL-1080p.mkv",
            "/tv/Breaking Bad/Season 01/Breaking Bad S01E01 Pilot.mkv",
        ),
        (
            "/tv/Breaking Bad/Season 01/Breaking Bad - S01E04 - Cancer Man.mkv",
            "/tv/Breaking Bad/Season 01/Breaking Bad S01E04 Cancer Man.mkv",
        ),
    ]


def test_sonarr_series_events_and_test() -> None:
    """SeriesAdd, SeriesDelete (deletedFiles bool), HealthRestored and Test are classified."""
    add = parse_sonarr(raw("sonarr/series_add.json"), JSON)
    assert add.action is Action.ADDED and add.media_kind == "series"
    delete = parse_sonarr(raw("sonarr/series_delete.json"), JSON)
    assert delete.action is Action.DELETED and delete.files_deleted is False
    health = parse_sonarr(raw("sonarr/health_restored.json"), JSON)
    assert health.action is Action.IGNORED and health.ignore_reason and "health" in health.ignore_reason
    test = parse_sonarr(raw("sonarr/test.json"), JSON)
    assert test.action is Action.TEST and test.remote_folder == "C:\\testpath"
    assert test.ids == {"tvdb": 1234} and test.episodes[0].tvdb_id is None


def test_sonarr_upgrade_and_windows_join() -> None:
    """isUpgrade -> UPGRADE; a Windows series path + "Season 01/x.mkv" joins with backslashes."""
    body = {
        "series": {"title": "S", "path": "C:\\TV\\S"},
        "episodes": [{"seasonNumber": 1, "episodeNumber": 2}],
        "episodeFile": {"relativePath": "Season 01/S - S01E02.mkv"},
        "isUpgrade": True,
        "deletedFiles": [{"relativePath": "Season 01/S - S01E02 old.mkv"}],
        "eventType": "Download",
    }
    event = parse_sonarr(encode(body), JSON)
    assert event.action is Action.UPGRADE
    assert event.remote_files == ["C:\\TV\\S\\Season 01\\S - S01E02.mkv"]
    assert event.deleted_files == ["C:\\TV\\S\\Season 01\\S - S01E02 old.mkv"]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b'{"eventType": ["Download"]}', "sonarr webhook: 'eventType' is an array, expected a string"),
        (
            b'{"series": 5, "eventType": "Download"}',
            "sonarr webhook: 'series' is a number, expected an object",
        ),
        (b'{"eventType": "SeriesAdd"}', "sonarr webhook: SeriesAdd event without a 'series' object"),
        (
            b'{"movie": {"title": "M"}, "eventType": "Download"}',
            "sonarr webhook: body has 'movie' but no 'series'; this looks like a Radarr payload",
        ),
        (b"not json", "sonarr webhook: body is not JSON"),
    ],
)
def test_sonarr_bad_bodies(body: bytes, message: str) -> None:
    """Bodies that are not Sonarr's format raise UserError saying what is wrong."""
    with pytest.raises(UserError) as err:
        parse_sonarr(body, JSON)
    assert err.value.message.startswith(message), err.value.message


def test_sonarr_episodes_tolerate_junk_entries() -> None:
    """Non-object entries in episodes[] / episodeFiles[] are skipped, not fatal."""
    body = {
        "series": {"title": "S", "path": "/tv/S"},
        "episodes": ["x", {"seasonNumber": "1", "episodeNumber": "03"}],
        "episodeFiles": [7, {"path": "/tv/S/a.mkv"}, {"path": "/tv/S/b.mkv"}],
        "eventType": "Download",
    }
    event = parse_sonarr(encode(body), JSON)
    assert event.remote_files == ["/tv/S/a.mkv", "/tv/S/b.mkv"]
    assert event.episodes == [EpisodeInfo(1, 3)]


# --- Jellyfin ---------------------------------------------------------------


def test_jellyfin_item_added_movie_text_plain() -> None:
    """'Send All Properties' ItemAdded posted as text/plain: ids, GUID, genres string split."""
    event = parse_jellyfin(raw("jellyfin/item_added_movie.json"), "text/plain; charset=utf-8")
    assert (event.source, event.event_type, event.action) == ("jellyfin", "ItemAdded", Action.ADDED)
    assert event.media_kind == "movie" and event.item_type == "Movie"
    assert event.ids == {"tmdb": 603, "imdb": "tt0133093"}
    assert event.jellyfin_item_id == "f2a0c5d1e4b34c6f9a8b7c6d5e4f3a2b"
    assert event.genres == ["Action", "Science Fiction"] and event.year == 1999
    assert event.playback is None and event.remote_files == []


def test_jellyfin_playback_progress_episode() -> None:
    """PlaybackProgress of an episode: paused state, ticks -> seconds, series and numbers, user."""
    event = parse_jellyfin(raw("jellyfin/playback_progress_episode.json"), "text/plain")
    assert event.action is Action.PLAYBACK and event.media_kind == "episode"
    assert (event.series_title, event.season, event.episode) == ("Breaking Bad", 1, 1)
    assert event.ids == {"tmdb": 62085, "imdb": "tt0959621", "tvdb": 349232}
    assert event.episodes == [EpisodeInfo(1, 1, "Pilot", "2008-01-20", event.overview, 349232)]
    pb = event.playback
    assert pb is not None
    assert (pb.state, pb.position_seconds, pb.total_seconds) == ("paused", 600.0, 3480.0)
    assert (pb.played, pb.user, pb.player, pb.client) == (False, "alice", "Living Room", "Kodi")


def test_jellyfin_playback_stop_and_user_data() -> None:
    """PlaybackStop reads PlayedToCompletion; UserDataSaved reads Played; both are 'stopped'."""
    stop = parse_jellyfin(raw("jellyfin/playback_stop_movie.json"), "")
    assert stop.playback is not None
    assert (stop.playback.state, stop.playback.played, stop.playback.position_seconds) == (
        "stopped",
        True,
        8100.0,
    )
    saved = parse_jellyfin(raw("jellyfin/user_data_saved.json"), JSON)
    assert saved.action is Action.PLAYBACK and saved.playback is not None
    assert (saved.playback.state, saved.playback.played, saved.playback.position_seconds) == (
        "stopped",
        True,
        0.0,
    )


def test_jellyfin_handlebars_template() -> None:
    """A user template: odd key case, dashed GUID, numbers and bools as strings, clock positions."""
    template = (
        '{"notificationType": "PlaybackStart", "itemId": "F2A0C5D1-E4B3-4C6F-9A8B-7C6D5E4F3A2B",'
        ' "itemType": "Episode", "name": "Pilot", "seriesName": "Breaking Bad", "seasonNumber00": "01",'
        ' "episodeNumber00": "01", "episodeNumberEnd": "02", "provider_tvdb": "349232",'
        ' "playbackPosition": "00:01:30", "runTime": "00:58:00", "isPaused": "False",'
        ' "notificationUsername": "bob", "deviceName": "Phone"}'
    )
    event = parse_jellyfin(template.encode(), "text/plain")
    assert event.action is Action.PLAYBACK
    assert event.jellyfin_item_id == "f2a0c5d1e4b34c6f9a8b7c6d5e4f3a2b"
    assert (event.season, event.episode) == (1, 1)
    assert [(e.season, e.episode) for e in event.episodes] == [(1, 1), (1, 2)]
    assert event.playback is not None
    assert (event.playback.state, event.playback.position_seconds, event.playback.total_seconds) == (
        "playing",
        90.0,
        3480.0,
    )
    assert event.playback.user == "bob" and event.playback.player == "Phone"


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("jellyfin/authentication_failure.json", "AuthenticationFailure: nothing to do"),
        ("jellyfin/item_added_audio.json", "ItemAdded for a Audio: only movies, series and episodes count"),
    ],
)
def test_jellyfin_ignored(name: str, reason: str) -> None:
    """Other notifications and non-video items are ignored with a reason."""
    event = parse_jellyfin(raw(name), "text/plain")
    assert event.action is Action.IGNORED
    assert event.ignore_reason and event.ignore_reason.startswith(reason)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"Item added: The Matrix", "jellyfin webhook: body is not JSON (content type text/plain)"),
        (b'{"Name": "The Matrix"}', "jellyfin webhook: no 'NotificationType' in the body"),
        (b'{"NotificationType": null}', "jellyfin webhook: 'NotificationType' is null, expected a string"),
        (
            b'{"NotificationType": "ItemAdded", "ItemId": "not-a-guid"}',
            "jellyfin webhook: ItemId 'not-a-guid' is not a GUID",
        ),
        (
            b'{"NotificationType": "PlaybackStart", "ItemType": "Movie", "User": ["a"]}',
            "jellyfin webhook: 'User' is an array",
        ),
    ],
)
def test_jellyfin_bad_bodies(body: bytes, message: str) -> None:
    """Bodies that are not usable Jellyfin JSON raise UserError with the reason."""
    with pytest.raises(UserError) as err:
        parse_jellyfin(body, "text/plain")
    assert err.value.message.startswith(message), err.value.message


# --- Plex -------------------------------------------------------------------


def multipart(payload: bytes, boundary: str = "----PlexBoundary7MA4YWxkTrZu0gW", thumb: bool = True) -> bytes:
    """A Plex-style multipart/form-data body: the payload part, then a binary JPEG thumb part."""
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="payload"\r\n'
        "Content-Type: application/json\r\n\r\n".encode()
        + payload
        + b"\r\n"
    ]
    if thumb:
        jpeg = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + bytes(range(256)) + b"\r\n--not-the-boundary\r\n\xff\xd9"
        parts.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="thumb"; filename="thumb.jpg"\r\n'
            "Content-Type: image/jpeg\r\n\r\n".encode()
            + jpeg
            + b"\r\n"
        )
    return b"".join(parts) + f"--{boundary}--\r\n".encode()


def test_plex_multipart_movie_play() -> None:
    """media.play from a real multipart body with a thumb: ids from Guid[], ms -> seconds, names."""
    body = multipart(raw("plex/media_play_movie.json"))
    event = parse_plex(body, "multipart/form-data; boundary=----PlexBoundary7MA4YWxkTrZu0gW")
    assert (event.source, event.event_type, event.action) == ("plex", "media.play", Action.PLAYBACK)
    assert event.media_kind == "movie" and event.plex_rating_key == "1234"
    assert event.plex_guids == ["imdb://tt0133093", "tmdb://603", "tvdb://169"]
    assert event.ids == {"tmdb": 603, "imdb": "tt0133093", "tvdb": 169}
    assert event.genres == ["Action", "Science Fiction"]
    pb = event.playback
    assert pb is not None
    assert (pb.state, pb.position_seconds, pb.total_seconds, pb.played) == ("playing", 600.0, 8160.0, False)
    assert (pb.user, pb.player) == ("alice", "Living Room TV")


async def test_plex_body_written_by_aiohttp_formdata() -> None:
    """A body serialised by aiohttp's own multipart writer (non-ASCII title) parses too."""
    data = load("plex/media_play_movie.json")
    data["Metadata"]["title"] = "Amélie"
    form = aiohttp.FormData()
    form.add_field("payload", json.dumps(data, ensure_ascii=False), content_type="application/json")
    form.add_field("thumb", b"\xff\xd8\xff\xd9", filename="thumb.jpg", content_type="image/jpeg")
    writer = form()
    chunks: list[bytes] = []

    class Sink:
        """Collects what the multipart writer writes."""

        async def write(self, chunk: bytes) -> None:
            """Keep one chunk."""
            chunks.append(bytes(chunk))

    await writer.write(Sink())  # type: ignore[arg-type]
    event = parse_plex(b"".join(chunks), writer.content_type)
    assert event.title == "Amélie" and event.action is Action.PLAYBACK


def test_plex_scrobble_episode_raw_json() -> None:
    """A raw JSON body is accepted; scrobble marks played; episode numbers and series title."""
    event = parse_plex(raw("plex/media_scrobble_episode.json"), JSON)
    assert event.media_kind == "episode" and event.series_title == "Breaking Bad"
    assert (event.season, event.episode, event.title) == (1, 1, "Pilot")
    assert event.episodes[0].tvdb_id == 349232 and event.episodes[0].aired == "2008-01-20"
    assert event.playback is not None and event.playback.played
    assert event.playback.position_seconds == 3150.0


def test_plex_urlencoded_and_legacy_guid() -> None:
    """A urlencoded form with payload= works; an old-agent imdb guid gives the imdb id."""
    from urllib.parse import urlencode

    body = urlencode({"payload": raw("plex/library_new_legacy.json").decode()}).encode()
    event = parse_plex(body, "application/x-www-form-urlencoded")
    assert event.action is Action.ADDED and event.ids == {"imdb": "tt0133093"}


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("plex/admin_database_backup.json", "admin.database.backup: nothing to do"),
        ("plex/media_play_track.json", "media.play for a track: only movies and episodes are tracked"),
    ],
)
def test_plex_ignored(name: str, reason: str) -> None:
    """Admin events and music playback are ignored with a reason."""
    event = parse_plex(
        multipart(raw(name), thumb=False), "multipart/form-data; boundary=----PlexBoundary7MA4YWxkTrZu0gW"
    )
    assert event.action is Action.IGNORED and event.ignore_reason == reason + (
        " for this Plex event" if name.endswith("backup.json") else ""
    )


@pytest.mark.parametrize(
    ("body", "content_type", "message"),
    [
        (
            b"--b\r\n\r\n--b--",
            "multipart/form-data",
            "plex webhook: multipart content type without a boundary",
        ),
        (
            b'--b\r\nContent-Disposition: form-data; name="thumb"\r\n\r\nxx\r\n--b--\r\n',
            "multipart/form-data; boundary=b",
            "plex webhook: multipart body has no 'payload' part (parts: thumb)",
        ),
        (
            b'--b\r\nContent-Disposition: form-data; name="payload"\r\n\r\n{oops\r\n--b--\r\n',
            "multipart/form-data; boundary=b",
            "plex webhook: body is not JSON",
        ),
        (b'{"Metadata": {}}', JSON, "plex webhook: no 'event' in the body"),
        (b'{"event": "media.play", "Metadata": []}', JSON, "plex webhook: 'Metadata' is an array"),
        (
            b"other=1",
            "application/x-www-form-urlencoded",
            "plex webhook: form has no 'payload' field (fields: other)",
        ),
    ],
)
def test_plex_bad_bodies(body: bytes, content_type: str, message: str) -> None:
    """Bodies that are not Plex's format raise UserError with the reason."""
    with pytest.raises(UserError) as err:
        parse_plex(body, content_type)
    assert err.value.message.startswith(message), err.value.message


# --- dispatcher and model ---------------------------------------------------


def test_parse_webhook_dispatch_and_to_dict() -> None:
    """parse_webhook routes by source; to_dict is JSON-ready; unknown sources are NotFound."""
    event = parse_webhook("radarr", raw("radarr/rename.json"), JSON)
    data = event.to_dict()
    assert data["action"] == "rename" and "raw" not in data
    assert isinstance(data["renamed"][0], list)
    json.dumps(data)
    assert "raw" in event.to_dict(include_raw=True)
    assert event.summary() == "radarr Rename -> rename: The Matrix (1999)"
    with pytest.raises(NotFound, match="unknown webhook source 'emby'"):
        parse_webhook("emby", b"{}", JSON)


def test_summary_of_episode_and_ignored() -> None:
    """The one-line summary names series, episode and the ignore reason."""
    event = parse_jellyfin(raw("jellyfin/playback_progress_episode.json"), "text/plain")
    assert event.summary() == "jellyfin PlaybackProgress -> playback: Breaking Bad - Pilot (2008) S01E01"
    grab = parse_radarr(raw("radarr/grab.json"), JSON)
    assert grab.summary().endswith("[Grab: nothing to do until the file is imported]")


SAMPLES = sorted(str(p.relative_to(PAYLOADS)) for p in PAYLOADS.glob("*/*.json"))


@pytest.mark.parametrize("sample", SAMPLES)
def test_from_dict_round_trips_every_sample(sample: str) -> None:
    """Every stored sample of all four senders: to_dict -> JSON text -> from_dict is the same event."""
    event = parse_webhook(sample.split("/")[0], raw(sample), JSON)
    stored = json.loads(json.dumps(event.to_dict()))
    back = WebhookEvent.from_dict(stored)
    assert back == dataclasses.replace(event, raw={})
    assert back.to_dict() == event.to_dict()
    assert WebhookEvent.from_dict(json.loads(json.dumps(event.to_dict(include_raw=True)))) == event


def test_samples_cover_every_nested_part_of_the_event() -> None:
    """The round trip above sees images, episodes, renames, playback, ids and deleted files."""
    events = [parse_webhook(s.split("/")[0], raw(s), JSON) for s in SAMPLES]
    assert {s.split("/")[0] for s in SAMPLES} == {"radarr", "sonarr", "jellyfin", "plex"}
    assert any(e.images for e in events) and any(e.episodes for e in events) and any(e.renamed for e in events)
    assert any(e.playback for e in events) and any(e.ids for e in events) and any(e.deleted_files for e in events)
    assert {e.action for e in events} == set(Action)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"action": "explode"}, "does not fit"),
        ({"surprise": 1}, "unknown fields: surprise"),
        ({"images": [{"kind": "poster"}]}, "does not fit"),
        ({"renamed": [["only-one"]]}, "does not fit"),
        ({"playback": {"state": "playing", "volume": 3}}, "does not fit"),
    ],
)
def test_from_dict_names_what_does_not_fit(change: dict[str, Any], message: str) -> None:
    """A stored event of the wrong shape is a UserError, never a crash."""
    data = {**parse_webhook("radarr", raw("radarr/rename.json"), JSON).to_dict(), **change}
    with pytest.raises(UserError, match=message):
        WebhookEvent.from_dict(data)
    missing = parse_webhook("radarr", raw("radarr/rename.json"), JSON).to_dict()
    del missing["source"]
    with pytest.raises(UserError, match="does not fit"):
        WebhookEvent.from_dict(missing)
    with pytest.raises(UserError, match="not an object"):
        WebhookEvent.from_dict([1])
