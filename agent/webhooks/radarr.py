"""Radarr Connect > Webhook payloads -> WebhookEvent."""

from __future__ import annotations

from agent.webhooks.arr import RADARR, apply_deleted_files, decode, file_path, new_event, parent_folder, renamed_files
from agent.webhooks.model import Action, WebhookEvent
from agent.webhooks.values import as_str, make_ids, merge_ids, opt_obj


def parse_radarr(body: bytes, content_type: str) -> WebhookEvent:
    """Decode and classify one Radarr webhook; UserError for a body that is not Radarr's format."""
    names = RADARR
    data, event_type, movie = decode(body, content_type, names)
    event = new_event(data, event_type, movie, names)
    movie = movie or {}
    remote = opt_obj(data, "remoteMovie", names.source) or {}
    movie_file = opt_obj(data, "movieFile", names.source)

    if movie or remote:
        event.media_kind = "movie"
    event.ids = merge_ids(
        make_ids(movie.get("tmdbId"), movie.get("imdbId")),
        make_ids(remote.get("tmdbId"), remote.get("imdbId")),
    )
    if event.title is None:
        event.title = as_str(remote.get("title"))
    # movie.filePath is declared but never filled: the file comes from movieFile.
    folder = as_str(movie.get("folderPath")) or as_str(movie.get("path"))
    path = file_path(movie_file, folder, names.source, "movieFile")
    if folder is None and path:
        folder = parent_folder(path)
    event.remote_folder = folder

    if event.action is Action.FILE_DELETED:
        if path:
            event.deleted_files.append(path)
        event.files_deleted = bool(path) or None
    elif event.action is Action.RENAME:
        event.renamed = renamed_files(data, "renamedMovieFiles", folder, names.source)
        event.remote_files = [new for _, new in event.renamed]
    else:
        if path:
            event.remote_files.append(path)
        apply_deleted_files(event, data, folder)
    return event
