"""Enrichment: fill an item's fields and artwork from providers, webhook hints and local files, never over a lock."""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agent.errors import AgentError, RetryLater
from agent.nfo import NfoError
from agent.nfo.parse import parse_nfo_async
from agent.providers import ArtworkCandidate, ProviderResult, choose_artwork
from agent.providers.base import rank_candidates
from agent.providers.configured import Providers, build_providers
from agent.publishing import KIND, episode_fields, read_existing
from agent.store import media
from agent.store.media import ART_LOCK_PREFIX, Item

if TYPE_CHECKING:
    from agent.services import Services as Agent

log = logging.getLogger("agent.enrich")
ID_FIELDS = ("tmdb_id", "imdb_id", "tvdb_id")


def providers_of(agent: Agent) -> Providers:
    """The agent's providers (built by the composition root; built here for an agent that has none)."""
    found = agent.providers
    if found is None:
        found = build_providers(agent.cfg, agent.db, agent.clock, agent.http)
    return found


@dataclass
class EnrichReport:
    """What one enrichment changed."""

    fields: list[str] = field(default_factory=list)
    artwork: list[str] = field(default_factory=list)
    source: str = "local"
    skipped_locked: list[str] = field(default_factory=list)
    skipped_held: list[str] = field(default_factory=list)  # kept from another tool's NFO (`nfo.existing: keep`)

    def to_dict(self) -> dict[str, Any]:
        """JSON for the job result."""
        return {"fields": self.fields, "artwork": self.artwork, "source": self.source,
                "skipped_locked": self.skipped_locked, "skipped_held": self.skipped_held}


def hint_fields(hints: dict[str, Any]) -> dict[str, Any]:
    """Field-model values from a webhook payload (title, year, overview, genres, ids)."""
    out: dict[str, Any] = {}
    for key in ("title", "year", "genres"):
        if hints.get(key):
            out[key] = hints[key]
    if hints.get("overview"):
        out["plot"] = hints["overview"]
    for key, value in (hints.get("ids") or {}).items():
        name = key if key.endswith("_id") else f"{key}_id"
        if name in ID_FIELDS and value:
            out[name] = value
    return out


def hint_artwork(hints: dict[str, Any]) -> list[ArtworkCandidate]:
    """Artwork candidates from a webhook's images[].remoteUrl."""
    out = []
    for img in hints.get("images") or []:
        try:
            out.append(ArtworkCandidate(type=img["type"], url=img["url"], source="webhook"))
        except (KeyError, ValueError, TypeError):
            continue
    return out


async def _lookup(agent: Agent, providers: Providers, item: Item, series: Item | None
                  ) -> tuple[ProviderResult | None, list[ArtworkCandidate]]:
    """Ask the providers about an item; returns (metadata result, extra artwork)."""
    tmdb, fanart = providers.tmdb, providers.fanart
    ids = {k: item.fields[k] for k in ID_FIELDS if item.fields.get(k)}
    result: ProviderResult | None = None
    extra: list[ArtworkCandidate] = []
    if item.entity == "episode":
        show_ids = {k: series.fields[k] for k in ID_FIELDS if series and series.fields.get(k)}
        season, number = item.fields.get("season"), item.fields.get("episode")
        if tmdb and show_ids and season is not None and number is not None:
            result = await tmdb.episode(show_ids, int(season), int(number))
        return result, extra
    kind = "movie" if item.entity == "movie" else "tv"
    if tmdb is not None:
        if not ids.get("tmdb_id") and not ids.get("imdb_id") and not (kind == "tv" and ids.get("tvdb_id")):
            title = item.fields.get("title")
            if title:
                search = tmdb.search_movie if kind == "movie" else tmdb.search_tv
                found = rank_candidates(await search(title, item.fields.get("year")), title, item.fields.get("year"))
                if found:
                    ids["tmdb_id"] = found[0]["tmdb_id"]
        if ids:
            result = await (tmdb.movie(ids) if kind == "movie" else tmdb.tv(ids))
    if fanart is not None:
        art_ids = dict(ids)
        if result is not None:
            art_ids.update({k: v for k, v in result.raw_ids.items() if v})
            art_ids.update({k: result.fields[k] for k in ID_FIELDS if result.fields.get(k)})
        if art_ids:
            extra = await fanart.artwork(kind, art_ids)
    return result, extra


async def foreign_nfo_fields(agent: Agent, item: Item) -> set[str]:
    """The item's fields present in its NFO when another tool wrote it (the agent never published that file).

    A file the agent wrote and someone edited is not foreign: its edits become locks when it is published.
    """
    path = item.row.get("nfo_path")
    if not path or await agent.db.fetchone("SELECT 1 FROM published_files WHERE path = ?", (path,)):
        return set()
    try:
        data = await asyncio.to_thread(read_existing, Path(path), [lib.path for lib in agent.cfg.libraries])
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


async def held_fields(agent: Agent, item: Item, refresh: bool) -> set[str]:
    """Fields providers must not change: another tool's NFO values under `nfo.existing: keep`, unless refreshing."""
    if refresh or agent.cfg.nfo.existing != "keep":
        return set()
    return item.held | await foreign_nfo_fields(agent, item)


async def enrich_item(agent: Agent, entity: str, item_id: int, hints: dict[str, Any] | None = None,
                      refresh: bool = False) -> EnrichReport:
    """Enrich one item: fields (locks and held NFO values respected, nothing erased), then artwork into the cache.

    `refresh`: the values held from another tool's NFO are dropped and providers update them.
    """
    hints = hints or {}
    item = await agent.db.read(media.load, entity, item_id)
    series = None
    if entity == "episode":
        series = await agent.db.read(media.load, "series", item.row["series_id"])
    report = EnrichReport()
    # 1. webhook hints only fill gaps; 2. provider answers update unlocked fields
    gaps = {k: v for k, v in hint_fields(hints).items() if not item.fields.get(k)}
    providers = providers_of(agent)
    result, extra_art = await _lookup(agent, providers, item, series)
    incoming = dict(gaps)
    if result is not None:
        incoming.update(result.fields)
        report.source = "tmdb"
    elif gaps:
        report.source = "webhook"
    held = await held_fields(agent, item, refresh)
    report.skipped_locked = sorted(k for k in incoming if k in item.locked)
    report.skipped_held = sorted(k for k in incoming if k in held and k not in item.locked)
    changes = media.merge(item, incoming, held=held)
    candidates = (result.artwork if result else []) + extra_art + hint_artwork(hints)
    report.artwork = await _artwork(agent, item, candidates)
    merged = {**item.fields, **changes}
    # enriched means "identified and filled": an item nobody could identify stays unidentified
    status = "enriched" if any(merged.get(k) for k in ID_FIELDS) else "unidentified"
    item = await agent.db.write(_save, item, changes, status, agent.clock.now(), held)
    report.fields = sorted(changes)
    agent.emit(f"{entity}:updated", {"id": item.id, "status": item.row["status"]})
    return report


def _save(conn: Any, item: Item, changes: dict[str, Any], status: str, now: float, held: set[str]) -> Item:
    """Save changes, the new status and the held fields in one transaction (re-reading locks inside it)."""
    fresh = media.load(conn, item.entity, item.id)
    changes = {k: v for k, v in changes.items() if k not in fresh.locked}  # a lock taken meanwhile wins
    return media.save(conn, fresh, changes, now, status=status,
                      extra_columns={"nfo_held_fields": json.dumps(sorted(held))})


async def _artwork(agent: Agent, item: Item, candidates: list[ArtworkCandidate]) -> list[str]:
    """Cache chosen artwork and reference it; locked types and a user's own files are left alone."""
    cache = agent.cache
    if cache is None:
        return []
    written = await _own_files(agent, item)
    taken: set[str] = set()
    changed: list[str] = []
    # the user's own artwork beside the media is the choice for its type: cache it so it is never lost
    for art_type, path in (item.artwork_found or {}).items():
        if art_type in ("extrafanart",) or not isinstance(path, str):
            continue
        if path in written:  # the agent wrote it: not a user choice
            continue
        try:
            asset = await cache.store_file(Path(path), roots=[lib.path for lib in agent.cfg.libraries])
        except (AgentError, OSError) as exc:
            log.warning("cannot cache local artwork %s: %s", path, exc)
            continue
        await cache.add_reference(asset.sha256, item.entity, item.id, art_type, 0, source="local")
        taken.add(art_type)
    types = list(agent.cfg.artwork.types) + (["thumb"] if item.entity == "episode" else [])
    chosen = choose_artwork(candidates, language=agent.cfg.providers.tmdb.language, types=types,
                            extrafanart=agent.cfg.artwork.extrafanart if item.entity == "movie" else 0)
    for slot, picks in chosen.items():
        base_type = slot.split("-")[-1]
        if slot in taken or f"{ART_LOCK_PREFIX}{slot}" in item.locked or f"{ART_LOCK_PREFIX}{base_type}" in item.locked:
            continue
        position = 0
        for cand in picks:
            try:
                asset = await cache.fetch(cand.url)
            except RetryLater:
                raise
            except AgentError as exc:
                log.info("skipping %s image %s: %s", slot, cand.url, exc.message)
                continue
            await cache.add_reference(asset.sha256, item.entity, item.id, slot, position, source=cand.source)
            changed.append(slot if position == 0 else f"{slot}{position}")
            position += 1
    return changed


async def _own_files(agent: Agent, item: Item) -> set[str]:
    """Paths the agent itself wrote for this item (those are not a user's choice)."""
    rows = await agent.db.fetchall("SELECT path FROM published_files WHERE entity_type = ? AND entity_id = ?",
                                   (item.entity, item.id))
    return {r["path"] for r in rows}
