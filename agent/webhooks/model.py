"""The normalised webhook event every sender's payload is turned into."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Literal

from agent.errors import UserError

Source = Literal["radarr", "sonarr", "jellyfin", "plex"]
MediaKind = Literal["movie", "episode", "series"]
PlaybackState = Literal["playing", "paused", "stopped"]


class Action(StrEnum):
    """What an event asks of the agent, whatever the sender called it."""

    IMPORT = "import"
    UPGRADE = "upgrade"
    RENAME = "rename"
    ADDED = "added"
    DELETED = "deleted"
    FILE_DELETED = "file_deleted"
    PLAYBACK = "playback"
    TEST = "test"
    IGNORED = "ignored"


# Actions that need no job: the webhook answers 200 {"ignored": ignore_reason}.
NO_WORK_ACTIONS: frozenset[Action] = frozenset({Action.TEST, Action.IGNORED})


@dataclass(frozen=True)
class ImageRef:
    """One artwork URL a sender offered; `type` is our art type (poster, fanart, banner, clearlogo)."""

    type: str
    url: str


@dataclass(frozen=True)
class EpisodeInfo:
    """One episode named by the event; `file` is the sender's path of its video when known."""

    season: int | None
    episode: int | None
    title: str | None = None
    aired: str | None = None
    overview: str | None = None
    tvdb_id: int | None = None
    file: str | None = None


@dataclass(frozen=True)
class PlaybackInfo:
    """Where a player is in an item: state, position and length in seconds, and who watches where."""

    state: PlaybackState
    position_seconds: float | None = None
    total_seconds: float | None = None
    played: bool = False
    user: str | None = None
    player: str | None = None
    client: str | None = None


@dataclass
class WebhookEvent:
    """A sender's webhook reduced to what the agent acts on; `raw` keeps the decoded body.

    Paths in `remote_folder`, `remote_files`, `deleted_files`, `renamed` and `episodes[].file`
    are the sender's spelling: map them with that source's PathMapper before touching disk.
    `ids` holds only known ids: `tmdb`/`tvdb` as positive ints, `imdb` as "tt…".
    """

    source: Source
    event_type: str
    action: Action
    ignore_reason: str | None = None
    media_kind: MediaKind | None = None
    ids: dict[str, int | str] = field(default_factory=dict)
    title: str | None = None
    year: int | None = None
    overview: str | None = None
    genres: list[str] = field(default_factory=list)
    images: list[ImageRef] = field(default_factory=list)
    remote_folder: str | None = None
    remote_files: list[str] = field(default_factory=list)
    episodes: list[EpisodeInfo] = field(default_factory=list)
    is_upgrade: bool = False
    delete_reason: str | None = None
    deleted_files: list[str] = field(default_factory=list)
    files_deleted: bool | None = None
    renamed: list[tuple[str, str]] = field(default_factory=list)
    playback: PlaybackInfo | None = None
    series_title: str | None = None
    season: int | None = None
    episode: int | None = None
    item_type: str | None = None
    jellyfin_item_id: str | None = None
    plex_rating_key: str | None = None
    plex_guids: list[str] = field(default_factory=list)
    instance_name: str | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def needs_work(self) -> bool:
        """True when a job should be queued (not a Test and not ignored)."""
        return self.action not in NO_WORK_ACTIONS

    def summary(self) -> str:
        """A one-line description for logs and the dashboard."""
        what = self.series_title or self.title or "?"
        if self.title and self.series_title and self.title != self.series_title:
            what = f"{self.series_title} - {self.title}"
        if self.year:
            what += f" ({self.year})"
        if self.season is not None and self.episode is not None:
            what += f" S{self.season:02d}E{self.episode:02d}"
        text = f"{self.source} {self.event_type} -> {self.action.value}: {what}"
        return text + (f" [{self.ignore_reason}]" if self.ignore_reason else "")

    def to_dict(self, include_raw: bool = False) -> dict[str, Any]:
        """A JSON-ready dict (tuples become lists, the enum its value); `raw` only on request."""
        data = dataclasses.asdict(self)
        data["action"] = self.action.value
        data["renamed"] = [list(pair) for pair in self.renamed]
        if not include_raw:
            data.pop("raw")
        return data

    @classmethod
    def from_dict(cls, data: object) -> WebhookEvent:
        """The event `to_dict` gave (with or without `raw`); UserError naming what does not fit."""
        if not isinstance(data, dict):
            raise UserError(f"stored webhook event is not an object: {type(data).__name__}")
        unknown = set(data) - _FIELDS
        if unknown:
            raise UserError(f"stored webhook event has unknown fields: {', '.join(sorted(unknown))}")
        try:
            values = dict(data)
            values["action"] = Action(data["action"])
            values["images"] = [ImageRef(**i) for i in data.get("images", [])]
            values["episodes"] = [EpisodeInfo(**e) for e in data.get("episodes", [])]
            values["renamed"] = [_pair(p) for p in data.get("renamed", [])]
            if data.get("playback") is not None:
                values["playback"] = PlaybackInfo(**data["playback"])
            return cls(**values)
        except KeyError as exc:
            raise UserError(f"stored webhook event does not fit: it lacks {exc}") from None
        except (TypeError, ValueError) as exc:
            raise UserError(f"stored webhook event does not fit: {exc}") from None


_FIELDS = frozenset(f.name for f in dataclasses.fields(WebhookEvent))


def _pair(value: object) -> tuple[str, str]:
    """One (old, new) rename pair read back from its JSON list."""
    if not isinstance(value, list | tuple) or len(value) != 2:
        raise ValueError(f"a renamed entry must be an [old, new] pair, got {value!r}")
    return (value[0], value[1])
