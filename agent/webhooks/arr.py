"""What Radarr and Sonarr payloads share: event classification, files, images, renames, deletions."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from agent.errors import PathError, UserError
from agent.paths import join_remote, parse_path
from agent.webhooks.model import Action, ImageRef, Source, WebhookEvent
from agent.webhooks.values import (
    as_bool,
    as_int,
    as_str,
    decode_json_object,
    genres,
    opt_list,
    opt_obj,
    require_str,
)

# Sender coverType (camelCase, compared lower-case) -> our art type. Others (screenshot,
# headshot, unknown) are not artwork we place beside media.
COVER_TYPES: dict[str, str] = {
    "poster": "poster",
    "fanart": "fanart",
    "banner": "banner",
    "clearlogo": "clearlogo",
    "logo": "clearlogo",
}

_IGNORED: dict[str, str] = {
    "Grab": "Grab: nothing to do until the file is imported",
    "Health": "Health: a health check notice needs no work",
    "HealthRestored": "HealthRestored: a health check notice needs no work",
    "ApplicationUpdate": "ApplicationUpdate: {app} updated itself; nothing to do",
    "ManualInteractionRequired": "ManualInteractionRequired: the import waits for someone in {app}; "
    "nothing to do until the file is imported",
}


@dataclass(frozen=True)
class ArrNames:
    """The per-application names: the sender, its item key and its event names."""

    source: Source
    app: str
    item_key: str
    other_key: str
    other_app: str
    added: str
    deleted: str
    file_deleted: str


RADARR = ArrNames(
    "radarr", "Radarr", "movie", "series", "sonarr", "MovieAdded", "MovieDelete", "MovieFileDelete"
)
SONARR = ArrNames(
    "sonarr", "Sonarr", "series", "movie", "radarr", "SeriesAdd", "SeriesDelete", "EpisodeFileDelete"
)


def decode(
    body: bytes, content_type: str, names: ArrNames
) -> tuple[dict[str, Any], str, dict[str, Any] | None]:
    """Decode the body, read eventType and the item object; reject the other app's payloads."""
    data = decode_json_object(body, content_type, names.source)
    event_type = require_str(data, "eventType", names.source)
    item = opt_obj(data, names.item_key, names.source)
    if item is None and isinstance(data.get(names.other_key), dict):
        raise UserError(
            f"{names.source} webhook: body has '{names.other_key}' but no '{names.item_key}'; this looks "
            f"like a {names.other_app.capitalize()} payload (post it to /api/webhooks/{names.other_app})"
        )
    return data, event_type, item


def classify(data: dict[str, Any], event_type: str, names: ArrNames) -> tuple[Action, str | None]:
    """Turn an eventType into an Action and, for Test or ignored events, the reason."""
    if event_type == "Test":
        return Action.TEST, f"Test: {names.app} connection test received"
    if event_type in _IGNORED:
        return Action.IGNORED, _IGNORED[event_type].format(app=names.app)
    if event_type == "Download":
        return (Action.UPGRADE if as_bool(data.get("isUpgrade")) else Action.IMPORT), None
    if event_type == "Rename":
        return Action.RENAME, None
    if event_type == names.added:
        return Action.ADDED, None
    if event_type == names.deleted:
        return Action.DELETED, None
    if event_type == names.file_deleted:
        return Action.FILE_DELETED, None
    return Action.IGNORED, f"unknown event type '{event_type}'"


def new_event(
    data: dict[str, Any], event_type: str, item: dict[str, Any] | None, names: ArrNames
) -> WebhookEvent:
    """Build the event with what both apps share; an action needing the item without one is an error."""
    action, reason = classify(data, event_type, names)
    if item is None and action not in (Action.TEST, Action.IGNORED):
        raise UserError(f"{names.source} webhook: {event_type} event without a '{names.item_key}' object")
    item = item or {}
    return WebhookEvent(
        source=names.source,
        event_type=event_type,
        action=action,
        ignore_reason=reason,
        title=as_str(item.get("title")),
        year=as_int(item.get("year")) or None,
        overview=as_str(item.get("overview")),
        genres=genres(item.get("genres")),
        images=images(item),
        is_upgrade=action is Action.UPGRADE,
        delete_reason=as_str(data.get("deleteReason")),
        instance_name=as_str(data.get("instanceName")),
        raw=data,
    )


def images(item: dict[str, Any]) -> list[ImageRef]:
    """Artwork from images[].remoteUrl with the coverType mapped to our art type."""
    out: list[ImageRef] = []
    for image in opt_list(item, "images"):
        if not isinstance(image, dict):
            continue
        kind = COVER_TYPES.get((as_str(image.get("coverType")) or "").lower())
        url = as_str(image.get("remoteUrl"))
        if kind and url and url.lower().startswith(("http://", "https://")):
            out.append(ImageRef(kind, url))
    return out


def file_path(file: object, folder: str | None, source: str, where: str) -> str | None:
    """A file object's absolute path: `path`, else folder + `relativePath`; None when neither is known."""
    if not isinstance(file, dict):
        return None
    path = as_str(file.get("path"))
    if path:
        return path
    relative = as_str(file.get("relativePath"))
    if relative and folder:
        try:
            return join_remote(folder, relative)
        except PathError as exc:
            raise UserError(f"{source} webhook: cannot place {where}.relativePath: {exc.message}") from None
    return None


def previous_path(file: dict[str, Any], folder: str | None, source: str) -> str | None:
    """A renamed file's old absolute path: `previousPath`, else folder + `previousRelativePath`."""
    old = as_str(file.get("previousPath"))
    if old:
        return old
    return file_path({"relativePath": file.get("previousRelativePath")}, folder, source, "previous")


def renamed_files(data: dict[str, Any], key: str, folder: str | None, source: str) -> list[tuple[str, str]]:
    """(old, new) sender paths from renamedMovieFiles / renamedEpisodeFiles."""
    pairs: list[tuple[str, str]] = []
    for i, file in enumerate(opt_list(data, key)):
        if not isinstance(file, dict):
            continue
        new = file_path(file, folder, source, f"{key}[{i}]")
        old = previous_path(file, folder, source)
        if new and old:
            pairs.append((old, new))
    return pairs


def apply_deleted_files(event: WebhookEvent, data: dict[str, Any], folder: str | None) -> None:
    """Read `deletedFiles`: a list of file objects (Download upgrade) or a bool (item delete)."""
    value = data.get("deletedFiles")
    flag = as_bool(value)
    if flag is not None:
        event.files_deleted = flag
    elif isinstance(value, list):
        for i, file in enumerate(value):
            path = file_path(file, folder, event.source, f"deletedFiles[{i}]")
            if path:
                event.deleted_files.append(path)
        event.files_deleted = bool(event.deleted_files) or None


def parent_folder(path: str) -> str | None:
    """The sender-style parent folder of a sender path, or None if it cannot be parsed."""
    try:
        parsed = parse_path(path)
    except PathError:
        return None
    if not parsed.segments:
        return None
    return parsed.render(parsed.segments[:-1], trailing=False)
