"""Sonarr Connect > Webhook payloads -> WebhookEvent (single file and "On Import Complete" forms)."""

from __future__ import annotations

import re
from typing import Any

from agent.webhooks.arr import SONARR, apply_deleted_files, decode, file_path, new_event, renamed_files
from agent.webhooks.model import Action, EpisodeInfo, WebhookEvent
from agent.webhooks.values import as_date, as_int, as_str, make_ids, opt_list, opt_obj, positive_id

_SXXEYY = re.compile(r"[Ss](\d{1,4})((?:[ ._-]*[Ee]\d{1,4})+)")
_EYY = re.compile(r"[Ee](\d{1,4})")
_SERIES_LEVEL = {"SeriesAdd", "SeriesDelete", "Rename"}


def parse_sonarr(body: bytes, content_type: str) -> WebhookEvent:
    """Decode and classify one Sonarr webhook; UserError for a body that is not Sonarr's format."""
    names = SONARR
    data, event_type, series = decode(body, content_type, names)
    event = new_event(data, event_type, series, names)
    series = series or {}
    event.series_title = event.title
    event.ids = make_ids(series.get("tmdbId"), series.get("imdbId"), series.get("tvdbId"))
    folder = as_str(series.get("path"))
    event.remote_folder = folder

    files = _episode_files(data, folder)
    episodes = [ep for ep in opt_list(data, "episodes") if isinstance(ep, dict)]
    if event_type in _SERIES_LEVEL or (not episodes and series):
        event.media_kind = "series"
    elif episodes:
        event.media_kind = "episode"

    if event.action is Action.FILE_DELETED:
        event.deleted_files = files
        event.files_deleted = bool(files) or None
    elif event.action is Action.RENAME:
        event.renamed = renamed_files(data, "renamedEpisodeFiles", folder, names.source)
        event.remote_files = [new for _, new in event.renamed]
    else:
        event.remote_files = files
        apply_deleted_files(event, data, folder)

    event.episodes = [_episode(ep, _file_for(ep, files)) for ep in episodes]
    if len(event.episodes) == 1:
        event.season, event.episode = event.episodes[0].season, event.episodes[0].episode
    return event


def _episode_files(data: dict[str, Any], folder: str | None) -> list[str]:
    """Sender paths from episodeFile, or from each of episodeFiles[] ("On Import Complete")."""
    single = opt_obj(data, "episodeFile", "sonarr")
    if single is not None:
        path = file_path(single, folder, "sonarr", "episodeFile")
        return [path] if path else []
    paths: list[str] = []
    for i, file in enumerate(opt_list(data, "episodeFiles")):
        path = file_path(file, folder, "sonarr", f"episodeFiles[{i}]")
        if path and path not in paths:
            paths.append(path)
    return paths


def _numbers_in(path: str) -> set[tuple[int, int]]:
    """(season, episode) pairs named in a file name like S01E02E03 or s01e02-e03."""
    found: set[tuple[int, int]] = set()
    name = re.split(r"[\\/]", path)[-1]
    for match in _SXXEYY.finditer(name):
        season = int(match.group(1))
        found.update((season, int(e)) for e in _EYY.findall(match.group(2)))
    return found


def _file_for(episode: dict[str, Any], files: list[str]) -> str | None:
    """The file holding an episode: the only file, else the one whose name carries its SxxEyy."""
    if len(files) == 1:
        return files[0]
    key = (as_int(episode.get("seasonNumber")), as_int(episode.get("episodeNumber")))
    if None in key:
        return None
    matches = [f for f in files if key in _numbers_in(f)]
    return matches[0] if len(matches) == 1 else None


def _episode(episode: dict[str, Any], file: str | None) -> EpisodeInfo:
    """One Sonarr episode object as an EpisodeInfo."""
    return EpisodeInfo(
        season=as_int(episode.get("seasonNumber")),
        episode=as_int(episode.get("episodeNumber")),
        title=as_str(episode.get("title")),
        aired=as_date(episode.get("airDate")) or as_date(episode.get("airDateUtc")),
        overview=as_str(episode.get("overview")),
        tvdb_id=positive_id(episode.get("tvdbId")),
        file=file,
    )
