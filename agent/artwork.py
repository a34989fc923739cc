"""Artwork, the step after enrichment: fetch an item's remote images into the cache, never holding up its fields.

Enrichment saves fields and the item is published at once; then one `artwork` job per item asks the
providers what artwork they offer (TMDB's answer comes from the response cache enrichment just filled;
fanart.tv is asked here, so its being down never delays metadata), adds the images a sender offered,
fetches the chosen ones and republishes the item when anything changed. An image host that fails is
retried with the queue's backoff; once the retries are spent the item carries `artwork_error` (API,
dashboard) and the job completes. A later enrich or scan tries again. `ArtworkRequest` is the job's
payload and `enqueue_artwork` its enqueue call.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any, Final

from agent.cache import AssetCache
from agent.clock import Clock
from agent.config import Config
from agent.enrich import ID_FIELDS, lookup, provider_ids
from agent.errors import AgentError, PermanentFailure, RetryLater
from agent.events import Emit
from agent.hints import HintImage
from agent.providers import ArtworkCandidate, choose_artwork
from agent.providers.configured import Providers
from agent.queue import JobContext, Queue
from agent.queue.model import Job, Priority
from agent.store import media
from agent.store.base import Database
from agent.store.media import ART_LOCK_PREFIX, Item

log = logging.getLogger("agent.artwork")
ARTWORK: Final = "artwork"
MAX_ERROR: Final = 500  # characters of artwork_error kept


@dataclass(frozen=True)
class ArtworkRequest:
    """Fetch one item's remote artwork; `images` are what a sender (Radarr, Sonarr) offered for it."""

    entity: str
    id: int
    priority: int = Priority.NORMAL
    images: tuple[HintImage, ...] = ()

    @property
    def dedupe_key(self) -> str:
        """One pending artwork job per item."""
        return f"{ARTWORK}:{self.entity}:{self.id}"

    def to_payload(self) -> dict[str, Any]:
        """The job payload: {"entity", "id", "priority"[, "images": [{"type", "url"}]]}."""
        out: dict[str, Any] = {"entity": self.entity, "id": self.id, "priority": self.priority}
        if self.images:
            out["images"] = [{"type": i.type, "url": i.url} for i in self.images]
        return out

    @classmethod
    def from_payload(cls, payload: dict[str, Any]) -> ArtworkRequest:
        """Read a job payload; PermanentFailure naming what is wrong with it."""
        entity = payload.get("entity")
        if entity not in media.TABLES:
            raise PermanentFailure(f"unknown entity {entity!r}")
        try:
            item_id, priority = int(payload["id"]), int(payload.get("priority") or Priority.NORMAL)
        except (KeyError, TypeError, ValueError):
            raise PermanentFailure(f"artwork payload needs an integer id and priority, got {payload!r}") from None
        raw = payload.get("images") or []
        if not isinstance(raw, list) or not all(isinstance(i, dict) and isinstance(i.get("type"), str)
                                                and isinstance(i.get("url"), str) for i in raw):
            raise PermanentFailure(f"artwork payload's images must be a list of {{type, url}}, got {raw!r}")
        return cls(entity, item_id, priority, tuple(HintImage(i["type"], i["url"]) for i in raw))


def artwork_spec(entity: str, item_id: int, priority: int, max_retries: int, origin: int | None = None
                 ) -> dict[str, Any]:
    """The queue spec enqueue_artwork builds, for a batch insert (a scan retrying items with an artwork_error);
    `origin` is the scan's job."""
    request = ArtworkRequest(entity, item_id, priority)
    return {"type": ARTWORK, "payload": request.to_payload(), "priority": priority, "max_retries": max_retries,
            "dedupe_key": request.dedupe_key, "lock_key": None, "depends_on": [], "delay": 0.0, "chain": None,
            "origin": origin}


async def enqueue_artwork(queue: Queue | JobContext, request: ArtworkRequest) -> Job:
    """Queue the artwork step of one item (deduplicated against a pending one); from a handler, pass its context
    so the step runs in the item's chain, right after its publish."""
    return await queue.enqueue(ARTWORK, request.to_payload(), priority=request.priority,
                               dedupe_key=request.dedupe_key)


@dataclass
class ArtworkReport:
    """What one artwork step did: slots changed, and why some are missing (None: nothing failed)."""

    artwork: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)  # "<slot>: <why>"
    transient: bool = False  # a failure worth trying again (a host unreachable, a 5xx, a 429)
    had_error: bool = False  # the item carried an artwork_error before this step

    @property
    def error(self) -> str | None:
        """The item's artwork_error: every failure in one line, or None."""
        return "; ".join(self.failed)[:MAX_ERROR] or None

    def to_dict(self) -> dict[str, Any]:
        """JSON for the job result."""
        return {"artwork": self.artwork, "artwork_error": self.error}


def hint_candidates(images: tuple[HintImage, ...]) -> list[ArtworkCandidate]:
    """Artwork candidates from the images a sender offered (types the agent does not know are skipped)."""
    out = []
    for img in images:
        try:
            out.append(ArtworkCandidate(type=img.type, url=img.url, source="webhook"))
        except (ValueError, TypeError):
            continue
    return out


@dataclass(frozen=True, kw_only=True)
class Artworker:
    """Fetches items' remote artwork with the parts it needs."""

    db: Database
    cfg: Config
    clock: Clock
    cache: AssetCache
    providers: Providers
    emit: Emit

    async def candidates(self, item: Item, report: ArtworkReport) -> list[ArtworkCandidate]:
        """What TMDB (from the response cache enrichment filled) and fanart.tv offer; a provider that fails is
        noted in the report and the others still count."""
        series = None
        if item.entity == "episode":
            series = await self.db.read(media.load, "series", item.row["series_id"])
        found: list[ArtworkCandidate] = []
        ids = provider_ids(item)
        try:
            result = await lookup(self.providers, item, series)
        except RetryLater as exc:
            report.failed.append(f"TMDB: {exc.message}")
            report.transient = True
            result = None
        except AgentError as exc:
            report.failed.append(f"TMDB: {exc.message}")
            result = None
        if result is not None:
            found += result.artwork
            ids.update({k: v for k, v in result.raw_ids.items() if v})
            ids.update({k: result.fields[k] for k in ID_FIELDS if result.fields.get(k)})
        fanart = self.providers.fanart
        if fanart is not None and item.entity != "episode" and ids:
            try:
                found += await fanart.artwork("movie" if item.entity == "movie" else "tv", ids)
            except RetryLater as exc:
                report.failed.append(f"fanart.tv: {exc.message}")
                report.transient = True
            except AgentError as exc:
                report.failed.append(f"fanart.tv: {exc.message}")
        return found

    async def fetch_item(self, request: ArtworkRequest) -> ArtworkReport:
        """Fetch and reference the item's chosen images; locked types and the user's own files are left alone."""
        cfg, cache = self.cfg, self.cache
        item = await self.db.read(media.load, request.entity, request.id)
        report = ArtworkReport(had_error=item.row.get("artwork_error") is not None)
        offered = await self.candidates(item, report) + hint_candidates(request.images)
        own = {r.art_type for r in await cache.references(item.entity, item.id) if r.source == "local"}
        types = list(cfg.artwork.types) + (["thumb"] if item.entity == "episode" else [])
        chosen = choose_artwork(offered, language=cfg.providers.tmdb.language, types=types,
                                extrafanart=cfg.artwork.extrafanart if item.entity == "movie" else 0)
        wanted = [(slot, cand) for slot, picks in chosen.items()
                  if slot not in own and f"{ART_LOCK_PREFIX}{slot}" not in item.locked
                  and f"{ART_LOCK_PREFIX}{slot.split('-')[-1]}" not in item.locked
                  for cand in picks]
        # The item's images download together (each is one host round trip), then are referenced in order in
        # one transaction: positions count only the images that arrived, as when they were fetched in turn.
        fetched = await asyncio.gather(*(cache.fetch(cand.url) for _, cand in wanted), return_exceptions=True)
        references: list[tuple[str, str, int, str]] = []  # (sha256, slot, position, source)
        positions: dict[str, int] = {}
        for (slot, cand), got in zip(wanted, fetched, strict=True):
            if isinstance(got, RetryLater):
                report.failed.append(f"{slot}: {got.message}")
                report.transient = True
                continue
            if isinstance(got, AgentError):
                log.info("skipping %s image %s: %s", slot, cand.url, got.message)
                report.failed.append(f"{slot}: {got.message}")
                continue
            if isinstance(got, BaseException):
                raise got
            position = positions.get(slot, 0)
            positions[slot] = position + 1
            references.append((got.sha256, slot, position, cand.source))
            report.artwork.append(slot if position == 0 else f"{slot}{position}")
        await cache.add_references(item.entity, item.id, references)
        return report

    async def record_error(self, entity: str, item_id: int, error: str | None) -> None:
        """Keep (or clear) the item's artwork_error and tell /ws when it changed."""
        if await self.db.write(media.set_artwork_error, entity, item_id, error, self.clock.now()):
            self.emit(f"{entity}:updated", {"id": item_id, "artwork_error": error})
