"""Plex webhooks (multipart/form-data with a `payload` part, or a raw JSON body) -> WebhookEvent."""

from __future__ import annotations

import re
from email.message import EmailMessage, Message
from email.parser import BytesParser
from email.policy import HTTP
from typing import Any, Final
from urllib.parse import parse_qs

from agent.errors import UserError
from agent.webhooks.model import Action, EpisodeInfo, MediaKind, PlaybackInfo, PlaybackState, WebhookEvent
from agent.webhooks.values import (
    as_date,
    as_float,
    as_int,
    as_str,
    decode_json_object,
    genres,
    make_ids,
    merge_ids,
    opt_list,
    opt_obj,
    require_str,
)

SOURCE: Final = "plex"
_STATES: dict[str, PlaybackState] = {
    "media.play": "playing",
    "media.resume": "playing",
    "media.scrobble": "playing",
    "media.pause": "paused",
    "media.stop": "stopped",
}
_KINDS: dict[str, MediaKind] = {"movie": "movie", "episode": "episode", "show": "series"}
_GUID_RE = re.compile(r"^(imdb|tmdb|tvdb)://([^/?#]+)$", re.IGNORECASE)
_LEGACY_RE = re.compile(
    r"^com\.plexapp\.agents\.(imdb|themoviedb|thetvdb)://([^/?#]+)(\?.*)?$", re.IGNORECASE
)


def parse_plex(body: bytes, content_type: str) -> WebhookEvent:
    """Decode and classify one Plex webhook; UserError for a body that is not Plex's format."""
    data = decode_json_object(_payload_bytes(body, content_type), "application/json", SOURCE)
    event_type = require_str(data, "event", SOURCE)
    meta = opt_obj(data, "Metadata", SOURCE) or {}
    plex_type = as_str(meta.get("type"))
    kind = _KINDS.get(plex_type.lower()) if plex_type else None
    action, reason = _classify(event_type, plex_type, kind)

    guids = [g for g in (as_str(x.get("id")) for x in opt_list(meta, "Guid") if isinstance(x, dict)) if g]
    event = WebhookEvent(
        source=SOURCE,
        event_type=event_type,
        action=action,
        ignore_reason=reason,
        media_kind=kind,
        ids=merge_ids(_ids(guids), _legacy_ids(as_str(meta.get("guid")))),
        title=as_str(meta.get("title")),
        year=as_int(meta.get("year")) or None,
        overview=as_str(meta.get("summary")),
        genres=genres([g.get("tag") for g in opt_list(meta, "Genre") if isinstance(g, dict)]),
        item_type=plex_type,
        plex_rating_key=as_str(meta.get("ratingKey")),
        plex_guids=guids,
        raw=data,
    )
    if kind == "episode":
        event.series_title = as_str(meta.get("grandparentTitle"))
        event.season = as_int(meta.get("parentIndex"))
        event.episode = as_int(meta.get("index"))
        event.episodes = [
            EpisodeInfo(
                season=event.season,
                episode=event.episode,
                title=event.title,
                aired=as_date(meta.get("originallyAvailableAt")),
                overview=event.overview,
                tvdb_id=as_int(event.ids.get("tvdb")),
            )
        ]
    elif kind == "series":
        event.series_title = event.title
    if action is Action.PLAYBACK:
        event.playback = _playback(event_type, data, meta)
    return event


def _payload_bytes(body: bytes, content_type: str) -> bytes:
    """The JSON bytes: the `payload` part of a multipart or urlencoded form, else the body itself."""
    kind = content_type.split(";", 1)[0].strip().lower()
    if kind.startswith("multipart/"):
        return _multipart_payload(body, content_type)
    if kind == "application/x-www-form-urlencoded":
        try:
            form = parse_qs(body.decode("utf-8"), keep_blank_values=True, strict_parsing=True)
        except (UnicodeDecodeError, ValueError) as exc:
            raise UserError(f"plex webhook: form body cannot be read ({exc})") from None
        if "payload" not in form:
            raise UserError(f"plex webhook: form has no 'payload' field (fields: {', '.join(sorted(form))})")
        return form["payload"][0].encode("utf-8")
    return body


def _multipart_payload(body: bytes, content_type: str) -> bytes:
    """Find the `payload` form field in a multipart/form-data body (a `thumb` JPEG may ride along)."""
    if "boundary=" not in content_type.lower():
        raise UserError("plex webhook: multipart content type without a boundary")
    head = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode("latin-1", "replace")
    message = BytesParser(policy=HTTP).parsebytes(head + body)
    if not isinstance(message, EmailMessage) or not message.is_multipart():
        raise UserError("plex webhook: multipart body could not be parsed")
    names: list[str] = []
    for part in message.iter_parts():
        name = _field_name(part)
        names.append(name or "?")
        if name == "payload":
            data = part.get_payload(decode=True)
            return data if isinstance(data, bytes) else str(data).encode("utf-8")
    shown = ", ".join(names) or "none"
    raise UserError(f"plex webhook: multipart body has no 'payload' part (parts: {shown})")


def _field_name(part: Message) -> str | None:
    """The form field name from a part's Content-Disposition."""
    name = part.get_param("name", header="content-disposition")
    return name if isinstance(name, str) else None


def _ids(guids: list[str]) -> dict[str, int | str]:
    """Ids from the new-agent Guid list ("imdb://tt…", "tmdb://603", "tvdb://…")."""
    found: dict[str, str] = {}
    for guid in guids:
        match = _GUID_RE.match(guid)
        if match:
            found.setdefault(match.group(1).lower(), match.group(2))
    return make_ids(found.get("tmdb"), found.get("imdb"), found.get("tvdb"))


def _legacy_ids(guid: str | None) -> dict[str, int | str]:
    """Ids from an old-agent guid such as com.plexapp.agents.imdb://tt0133093?lang=en (movies only)."""
    match = _LEGACY_RE.match(guid or "")
    if not match:
        return {}
    agent, value = match.group(1).lower(), match.group(2)
    if agent == "imdb":
        return make_ids(imdb=value)
    if agent == "themoviedb":
        return make_ids(tmdb=value)
    return make_ids(tvdb=value)


def _classify(event_type: str, plex_type: str | None, kind: MediaKind | None) -> tuple[Action, str | None]:
    """media.* playback -> PLAYBACK, library.new -> ADDED, everything else ignored with a reason."""
    if event_type in _STATES:
        if plex_type and kind not in ("movie", "episode"):
            return Action.IGNORED, f"{event_type} for a {plex_type}: only movies and episodes are tracked"
        return Action.PLAYBACK, None
    if event_type == "library.new":
        if plex_type and kind is None:
            return Action.IGNORED, f"library.new for a {plex_type}: only movies, shows and episodes count"
        return Action.ADDED, None
    return Action.IGNORED, f"{event_type}: nothing to do for this Plex event"


def _playback(event_type: str, data: dict[str, Any], meta: dict[str, Any]) -> PlaybackInfo:
    """Playback state and position (Plex sends milliseconds) with the account and player names."""
    offset = as_float(meta.get("viewOffset"))
    duration = as_float(meta.get("duration"))
    account = opt_obj(data, "Account", SOURCE) or {}
    player = opt_obj(data, "Player", SOURCE) or {}
    return PlaybackInfo(
        state=_STATES[event_type],
        position_seconds=offset / 1000 if offset is not None else None,
        total_seconds=duration / 1000 if duration is not None else None,
        played=event_type == "media.scrobble",
        user=as_str(account.get("title")),
        player=as_str(player.get("title")),
    )
