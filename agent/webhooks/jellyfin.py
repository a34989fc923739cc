"""jellyfin-plugin-webhook payloads ("Send All Properties" or a JSON template) -> WebhookEvent."""

from __future__ import annotations

from typing import Any, Final

from agent.errors import UserError
from agent.webhooks.model import Action, EpisodeInfo, MediaKind, PlaybackInfo, PlaybackState, WebhookEvent
from agent.webhooks.values import (
    CaseInsensitive,
    as_bool,
    as_date,
    as_float,
    as_int,
    as_str,
    clock_seconds,
    decode_json_object,
    genres,
    json_type,
    make_ids,
    normalise_guid,
    positive_id,
    require_str,
)

SOURCE: Final = "jellyfin"
TICKS_PER_SECOND = 10_000_000  # .NET ticks are 100 ns
MAX_SPAN = 99  # episodes one file may hold after its first (a larger EpisodeNumberEnd is ignored)

_KINDS: dict[str, MediaKind] = {"movie": "movie", "episode": "episode", "series": "series"}
_PLAYBACK = {"PlaybackStart", "PlaybackProgress", "PlaybackStop", "UserDataSaved"}


def parse_jellyfin(body: bytes, content_type: str) -> WebhookEvent:
    """Decode and classify one Jellyfin webhook (JSON in any content type, keys in any case)."""
    data = decode_json_object(body, content_type, SOURCE)
    view = CaseInsensitive(data)
    if "NotificationType" not in view:
        raise UserError(
            "jellyfin webhook: no 'NotificationType' in the body; enable 'Send All Properties' or put "
            '"NotificationType": "{{NotificationType}}" in the template'
        )
    event_type = require_str({"NotificationType": view["NotificationType"]}, "NotificationType", SOURCE)
    item_type = as_str(view.get("ItemType"))
    kind = _KINDS.get(item_type.lower()) if item_type else None
    action, reason = _classify(event_type, item_type, kind)

    item_id = view.get("ItemId")
    guid = normalise_guid(item_id)
    if as_str(item_id) and guid is None:
        raise UserError(
            f"jellyfin webhook: ItemId {item_id!r} is not a GUID (32 hex digits, dashes optional)"
        )
    event = WebhookEvent(
        source=SOURCE,
        event_type=event_type,
        action=action,
        ignore_reason=reason,
        media_kind=kind,
        ids=make_ids(view.get("Provider_tmdb"), view.get("Provider_imdb"), view.get("Provider_tvdb")),
        title=as_str(view.get("Name")),
        year=as_int(view.get("Year")) or None,
        overview=as_str(view.get("Overview")),
        genres=genres(view.get("Genres")),
        item_type=item_type,
        jellyfin_item_id=guid,
        series_title=as_str(view.get("SeriesName")),
        raw=data,
    )
    if kind == "episode":
        _apply_episode(event, view)
    if action is Action.PLAYBACK:
        event.playback = _playback(event_type, view)
    return event


def _classify(event_type: str, item_type: str | None, kind: MediaKind | None) -> tuple[Action, str | None]:
    """ItemAdded -> ADDED, playback and user data -> PLAYBACK, the rest ignored with a reason."""
    if event_type == "ItemAdded":
        if item_type and kind is None:
            return Action.IGNORED, f"ItemAdded for a {item_type}: only movies, series and episodes count"
        return Action.ADDED, None
    if event_type in _PLAYBACK:
        if item_type and kind not in ("movie", "episode"):
            return Action.IGNORED, f"{event_type} for a {item_type}: only movies and episodes are tracked"
        return Action.PLAYBACK, None
    return Action.IGNORED, f"{event_type}: nothing to do for this notification type"


def _number(view: CaseInsensitive, key: str) -> int | None:
    """A season/episode number from Key, Key00 or Key000 (the plugin sends padded copies)."""
    for name in (key, key + "00", key + "000"):
        value = as_int(view.get(name))
        if value is not None:
            return value
    return None


def _apply_episode(event: WebhookEvent, view: CaseInsensitive) -> None:
    """Season and episode numbers and the one EpisodeInfo of an Episode item (no file path is sent)."""
    event.season = _number(view, "SeasonNumber")
    event.episode = _number(view, "EpisodeNumber")
    event.episodes = [
        EpisodeInfo(
            season=event.season,
            episode=event.episode,
            title=event.title,
            aired=as_date(view.get("PremiereDate")),
            overview=event.overview,
            tvdb_id=positive_id(view.get("Provider_tvdb")),
        )
    ]
    last = _number(view, "EpisodeNumberEnd")
    if event.episode is not None and last is not None and event.episode < last <= event.episode + MAX_SPAN:
        event.episodes += [EpisodeInfo(event.season, n) for n in range(event.episode + 1, last + 1)]


def _seconds(view: CaseInsensitive, ticks_key: str, clock_key: str) -> float | None:
    """Seconds from a ticks field, else from its "hh:mm:ss" twin."""
    ticks = as_float(view.get(ticks_key))
    if ticks is not None and ticks >= 0:
        return ticks / TICKS_PER_SECOND
    return clock_seconds(view.get(clock_key))


def _playback(event_type: str, view: CaseInsensitive) -> PlaybackInfo:
    """Playback state, position and who is watching from a playback or UserDataSaved notification."""
    paused = as_bool(view.get("IsPaused")) or False
    state: PlaybackState
    state = "stopped" if event_type in ("PlaybackStop", "UserDataSaved") else "paused" if paused else "playing"
    played_key = "PlayedToCompletion" if event_type == "PlaybackStop" else "Played"
    return PlaybackInfo(
        state=state,
        position_seconds=_seconds(view, "PlaybackPositionTicks", "PlaybackPosition"),
        total_seconds=_seconds(view, "RunTimeTicks", "RunTime"),
        played=as_bool(view.get(played_key)) or False,
        user=as_str(view.get("NotificationUsername")) or _username(view.get("User")),
        player=as_str(view.get("DeviceName")),
        client=as_str(view.get("ClientName")) or as_str(view.get("Client")),
    )


def _username(value: Any) -> str | None:
    """A user name from a string or a {Name: ...} object some templates send."""
    if isinstance(value, dict):
        return as_str(CaseInsensitive(value).get("Name"))
    if isinstance(value, list):
        raise UserError(f"jellyfin webhook: 'User' is {json_type(value)}, expected a name or an object")
    return as_str(value)
