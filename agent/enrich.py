"""Enrichment: fill an item's fields from providers and webhook hints, never over a lock, and adopt the user's own
artwork beside the media (remote artwork is agent.artwork's step), and give movies and episodes their file's
stream details (agent.streams);
`EnrichRequest` is the enrich job's payload and `enqueue_enrich` its enqueue call."""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agent.cache import AssetCache
from agent.clock import Clock
from agent.config import Config
from agent.errors import AgentError, PermanentFailure, UserError
from agent.events import Emit
from agent.hints import Hints
from agent.nfo import NfoError
from agent.nfo.parse import parse_nfo_async
from agent.providers import ProviderResult
from agent.providers.base import rank_candidates
from agent.providers.configured import Providers
from agent.publish.edits import episode_fields, read_existing
from agent.publish.names import KIND
from agent.queue import JobContext, Queue
from agent.queue.model import Job, Priority
from agent.store import assets, media
from agent.store.base import Database
from agent.store.media import Item
from agent.streams import StreamProber

log = logging.getLogger("agent.enrich")
ID_FIELDS = ("tmdb_id", "imdb_id", "tvdb_id")
STREAM_ENTITIES = ("movie", "episode")  # items that are a video file; series and seasons have no fileinfo


@dataclass
class EnrichReport:
    """What one enrichment changed."""

    fields: list[str] = field(default_factory=list)
    artwork: list[str] = field(default_factory=list)
    source: str = "local"
    skipped_locked: list[str] = field(default_factory=list)
    skipped_held: list[str] = field(default_factory=list)  # kept from another tool's NFO (`nfo.existing: keep`)
    streamdetails: str | None = None  # where the file's stream details came from (None: ffprobe not available)

    def to_dict(self) -> dict[str, Any]:
        """JSON for the job result."""
        out = {"fields": self.fields, "artwork": self.artwork, "source": self.source,
               "skipped_locked": self.skipped_locked, "skipped_held": self.skipped_held}
        return out if self.streamdetails is None else {**out, "streamdetails": self.streamdetails}


def hint_fields(hints: Hints) -> dict[str, Any]:
    """Field-model values from a sender's hints (title, year, overview as plot, genres, ids)."""
    out: dict[str, Any] = {}
    if hints.title:
        out["title"] = hints.title
    if hints.year:
        out["year"] = hints.year
    if hints.genres:
        out["genres"] = list(hints.genres)
    if hints.overview:
        out["plot"] = hints.overview
    for key, value in hints.ids.items():
        name = key if key.endswith("_id") else f"{key}_id"
        if name in ID_FIELDS and value:
            out[name] = value
    return out


def provider_ids(item: Item) -> dict[str, Any]:
    """The ids an item is known by at the providers."""
    return {k: item.fields[k] for k in ID_FIELDS if item.fields.get(k)}


async def lookup(providers: Providers, item: Item, series: Item | None) -> ProviderResult | None:
    """Ask TMDB about an item: its fields and the artwork it offers (a title search first when it has no id)."""
    tmdb = providers.tmdb
    if tmdb is None:
        return None
    ids = provider_ids(item)
    if item.entity == "episode":
        show_ids = provider_ids(series) if series is not None else {}
        season, number = item.fields.get("season"), item.fields.get("episode")
        if show_ids and season is not None and number is not None:
            return await tmdb.episode(show_ids, int(season), int(number))
        return None
    kind = "movie" if item.entity == "movie" else "tv"
    if not ids.get("tmdb_id") and not ids.get("imdb_id") and not (kind == "tv" and ids.get("tvdb_id")):
        title = item.fields.get("title")
        if title:
            search = tmdb.search_movie if kind == "movie" else tmdb.search_tv
            found = rank_candidates(await search(title, item.fields.get("year")), title, item.fields.get("year"))
            if found:
                ids["tmdb_id"] = found[0]["tmdb_id"]
    if not ids:
        return None
    return await (tmdb.movie(ids) if kind == "movie" else tmdb.tv(ids))


async def foreign_nfo_fields(db: Database, cfg: Config, item: Item) -> set[str]:
    """The item's fields present in its NFO when another tool wrote it (the agent never published that file).

    A file the agent wrote and someone edited is not foreign: its edits become locks when it is published.
    """
    path = item.row.get("nfo_path")
    if not path or await db.read(assets.published_hash, path) is not None:
        return set()
    try:
        data = await asyncio.to_thread(read_existing, Path(path), [lib.path for lib in cfg.libraries])
    except (NfoError, OSError) as exc:
        log.info("%s %d: cannot read %s to hold its values: %s", item.entity, item.id, path, exc)
        return set()
    if not data:
        return set()
    parsed = await parse_nfo_async(data, KIND[item.entity])
    if not parsed.ok:  # a release's text .nfo, or a broken file: nothing in it is the item's data
        return set()
    allowed = set(media.editable_fields(item.entity))
    return {k for k, v in episode_fields(item, parsed).items()
            if k in allowed and k in item.fields and v not in (None, "", [], {})}


async def held_fields(db: Database, cfg: Config, item: Item, refresh: bool) -> set[str]:
    """Fields providers must not change: another tool's NFO values under `nfo.existing: keep`, unless refreshing."""
    if refresh or cfg.nfo.existing != "keep":
        return set()
    return item.held | await foreign_nfo_fields(db, cfg, item)


@dataclass(frozen=True, kw_only=True)
class Enricher:
    """Enriches items with the parts it needs: the database, config, clock, artwork cache, providers, the stream
    prober and events."""

    db: Database
    cfg: Config
    clock: Clock
    cache: AssetCache
    providers: Providers
    prober: StreamProber
    emit: Emit

    async def enrich_item(self, entity: str, item_id: int, hints: Hints | None = None, refresh: bool = False
                          ) -> EnrichReport:
        """Enrich one item's fields (locks and held NFO values respected, nothing erased) and adopt the user's own
        artwork beside the media; remote artwork is the artwork job's (agent.artwork), so it never delays these.

        `refresh`: the values held from another tool's NFO are dropped and providers update them.
        """
        hints = hints or Hints()
        item = await self.db.read(media.load, entity, item_id)
        series = None
        if entity == "episode":
            series = await self.db.read(media.load, "series", item.row["series_id"])
        report = EnrichReport()
        # 1. webhook hints only fill gaps; 2. provider answers update unlocked fields
        gaps = {k: v for k, v in hint_fields(hints).items() if not item.fields.get(k)}
        result = await lookup(self.providers, item, series)
        incoming = dict(gaps)
        if result is not None:
            incoming.update(result.fields)
            report.source = "tmdb"
        elif gaps:
            report.source = "webhook"
        # 3. the file's own streams (ffprobe, cached by file signature): a property of the file, not a provider's
        info = None
        if entity in STREAM_ENTITIES and self.prober.available and item.row.get("file"):
            info = await self.prober.details(str(item.row["file"]))
            report.streamdetails = info.summary()
            if info.details:
                incoming["streamdetails"] = info.details
        held = await held_fields(self.db, self.cfg, item, refresh)
        if info is not None and info.replaced:
            held.discard("streamdetails")  # another tool's fileinfo described the file before it was replaced
        report.skipped_locked = sorted(k for k in incoming if k in item.locked)
        report.skipped_held = sorted(k for k in incoming if k in held and k not in item.locked)
        changes = media.merge(item, incoming, held=held)
        # before anything is published: a file the user put beside the media is never overwritten
        report.artwork = await adopt_local_artwork(self.db, self.cfg, self.cache, item)
        merged = {**item.fields, **changes}
        # enriched means "identified and filled": an item nobody could identify stays unidentified
        status = "enriched" if any(merged.get(k) for k in ID_FIELDS) else "unidentified"
        item = await self.db.write(_save, item, changes, status, self.clock.now(), held)
        report.fields = sorted(changes)
        self.emit(f"{entity}:updated", {"id": item.id, "status": item.row["status"]})
        return report


async def adopt_local_artwork(db: Database, cfg: Config, cache: AssetCache, item: Item) -> list[str]:
    """Cache the user's own artwork beside the media and make it the choice for its type (never lost, never
    overwritten by a provider's); returns the types adopted. Files the agent wrote are not a user's choice."""
    written = {row["path"] for row in await db.read(assets.published_of, item.entity, item.id)}
    adopted: list[str] = []
    for art_type, path in (item.artwork_found or {}).items():
        if art_type in ("extrafanart",) or not isinstance(path, str) or path in written:
            continue
        try:
            asset = await cache.store_file(Path(path), roots=[lib.path for lib in cfg.libraries])
        except (AgentError, OSError) as exc:
            log.warning("cannot cache local artwork %s: %s", path, exc)
            continue
        await cache.add_reference(asset.sha256, item.entity, item.id, art_type, 0, source="local")
        adopted.append(art_type)
    return adopted


def _save(conn: Any, item: Item, changes: dict[str, Any], status: str, now: float, held: set[str]) -> Item:
    """Save changes, the new status and the held fields in one transaction (re-reading locks inside it)."""
    fresh = media.load(conn, item.entity, item.id)
    changes = {k: v for k, v in changes.items() if k not in fresh.locked}  # a lock taken meanwhile wins
    return media.save(conn, fresh, changes, now, status=status,
                      extra_columns={"nfo_held_fields": json.dumps(sorted(held))})



@dataclass(frozen=True)
class EnrichRequest:
    """Enrich one item, then publish it; `hints` fill gaps, `refresh` drops values held from another tool's NFO,
    `update` is the players' update kind its publish sends."""

    entity: str
    id: int
    priority: int = Priority.NORMAL
    hints: Hints = field(default_factory=Hints)
    update: str | None = None
    refresh: bool = False

    @property
    def dedupe_key(self) -> str:
        """One pending enrich (or refresh) per item."""
        return f"{'refresh' if self.refresh else 'enrich'}:{self.entity}:{self.id}"

    def to_payload(self) -> dict[str, Any]:
        """The job payload: {"entity", "id", "priority"[, "hints", "refresh", "update"]}."""
        payload: dict[str, Any] = {"entity": self.entity, "id": self.id, "priority": self.priority}
        if self.hints:
            payload["hints"] = self.hints.to_payload()
        if self.refresh:
            payload["refresh"] = True
        if self.update:
            payload["update"] = self.update
        return payload

    @classmethod
    def from_payload(cls, payload: dict[str, Any]) -> EnrichRequest:
        """Read a job payload; PermanentFailure naming what is wrong with it."""
        entity = payload.get("entity")
        if entity not in media.TABLES:
            raise PermanentFailure(f"unknown entity {entity!r}")
        try:
            item_id, priority = int(payload["id"]), int(payload.get("priority") or Priority.NORMAL)
        except (KeyError, TypeError, ValueError):
            raise PermanentFailure(f"enrich payload needs an integer id and priority, got {payload!r}") from None
        try:
            hints = Hints.from_payload(payload.get("hints"))
        except UserError as exc:
            raise PermanentFailure(f"enrich payload for {entity} {item_id}: {exc.message}") from None
        update = payload.get("update")
        if update is not None and not isinstance(update, str):
            raise PermanentFailure(f"enrich payload's update must be a string, got {update!r}")
        return cls(entity, item_id, priority, hints, update or None, bool(payload.get("refresh")))


async def enqueue_enrich(queue: Queue | JobContext, request: EnrichRequest) -> Job:
    """Queue enrichment of one item (deduplicated against a pending one of the same kind).

    An enrich job starts its item's chain, whoever queued it: its publish, artwork and notify follow it in
    that chain, so they run before the next item's lookup (depth-first per item).
    """
    return await queue.enqueue("enrich", request.to_payload(), priority=request.priority,
                               dedupe_key=request.dedupe_key, chain=None)
