"""`publish` jobs: write an item's NFO and artwork beside the media, then tell the players."""

from __future__ import annotations

import asyncio
import hashlib
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agent.errors import PermanentFailure
from agent.nfo import NfoError
from agent.publish import PlannedFile, art_filename, nfo_filename
from agent.publishing import (
    KIND,
    absorb_hand_edits,
    is_text_nfo,
    nfo_candidates,
    present_nfos,
    read_existing,
    render_for,
    save_baseline,
)
from agent.queue import JobContext
from agent.queue.model import Priority
from agent.store import media
from agent.store.media import Item

if TYPE_CHECKING:
    from agent.service import Agent

log = logging.getLogger("agent.publish")


async def _shared_folder(agent: Agent, item: Item) -> bool:
    """Whether several movies live in this movie's folder (or it is a library's root)."""
    if item.entity != "movie":
        return False
    if any(lib.path == Path(item.row["path"]) for lib in agent.cfg.libraries):
        return True
    row = await agent.db.fetchone("SELECT COUNT(*) AS n FROM movies WHERE path = ? AND missing_since IS NULL",
                                  (item.row["path"],))
    return bool(row and row["n"] > 1)


def _folder_and_stem(item: Item) -> tuple[Path, str | None]:
    """The folder files go into and the video stem used in names."""
    if item.entity == "series":
        return Path(item.row["path"]), None
    video = Path(item.row["file"])
    if item.entity == "movie":
        return Path(item.row["path"]), video.stem
    return video.parent, video.stem


async def _art_plan(agent: Agent, item: Item, stem: str | None, shared: bool
                    ) -> tuple[list[PlannedFile], dict[str, str]]:
    """Planned artwork files from the item's cache references, and source URLs for the NFO."""
    rows = await agent.db.fetchall(
        "SELECT r.art_type, r.position, r.sha256, a.ext, a.source_url FROM asset_references r"
        " JOIN cache_assets a ON a.sha256 = r.sha256 WHERE r.entity_type = ? AND r.entity_id = ?"
        " AND a.quarantined = 0 ORDER BY r.art_type, r.position", (item.entity, item.id))
    plans, urls = [], {}
    for r in rows:
        if item.entity == "episode" and r["art_type"] != "thumb":
            continue
        name = art_filename(r["art_type"], r["ext"], stem=stem, shared_folder=shared, position=r["position"])
        plans.append(PlannedFile.asset(name, r["sha256"], r["ext"], r["art_type"], r["position"]))
        if r["position"] == 0 and (r["source_url"] or "").startswith(("http://", "https://")):
            urls[r["art_type"]] = r["source_url"]
    return plans, urls


@dataclass
class NfoFiles:
    """The NFO files one publish writes: the adopted ones (or the configured one) and what they held."""

    targets: list[Path]
    existing: dict[Path, bytes | None] = field(default_factory=dict)
    keep_original: bool = False  # the configured target holds a release's text .nfo: keep it as -orig
    unreadable: NfoError | None = None

    @property
    def primary(self) -> Path:
        """The file whose unmanaged tags are kept and whose path the item records."""
        return self.targets[0]


async def _nfo_files(agent: Agent, item: Item, shared: bool) -> NfoFiles:
    """Adopt the item's NFOs already there (any another tool wrote, XML only); else the configured target.

    Every present candidate is written with the same bytes, so no NFO a player prefers is left stale.
    A FIFO, folder, device or link out of the libraries among them is never read: nothing NFO is written.
    """
    candidates = nfo_candidates(agent, item, shared)
    roots = [lib.path for lib in agent.cfg.libraries]
    present = await asyncio.to_thread(present_nfos, candidates)
    existing: dict[Path, bytes | None] = {}
    try:
        for path in present.values():
            existing[path] = await asyncio.to_thread(read_existing, path, roots)
    except NfoError as exc:
        return NfoFiles([path], unreadable=exc)  # the file that cannot be read is the one named
    kind = KIND[item.entity]
    text = {p for p, data in existing.items() if await asyncio.to_thread(is_text_nfo, kind, data)}
    adopted = [p for p in existing if p not in text]
    if adopted:
        return NfoFiles(adopted, existing)
    default = present.get(candidates[0], candidates[0])
    return NfoFiles([default], existing, keep_original=default in text)


async def publish_item(agent: Agent, entity: str, item_id: int) -> dict[str, Any]:
    """Write one item's files; a broken NFO on disk is reported and left untouched."""
    item = await agent.db.read(media.load, entity, item_id)
    if item.row.get("missing_since") is not None:
        return {"skipped": "the item's files are missing"}
    publisher = agent.services["publisher"]
    shared = await _shared_folder(agent, item)
    folder, stem = _folder_and_stem(item)
    nfo = await _nfo_files(agent, item, shared)
    edits: list[str] = []
    for path in nfo.targets:
        if nfo.existing.get(path) is not None:
            item, found = await absorb_hand_edits(agent, item, path, nfo.existing[path] or b"")
            edits = sorted({*edits, *found})
    plans, urls = await _art_plan(agent, item, stem, shared)
    nfo_error = None
    try:
        if nfo.unreadable is not None:
            raise nfo.unreadable
        data = await render_for(agent, item, nfo.existing.get(nfo.primary), urls)
        for index, path in enumerate(nfo.targets):
            plans.insert(index, PlannedFile.nfo(str(path.relative_to(folder)), data, keep_original=nfo.keep_original))
    except NfoError as exc:
        nfo_error = f"{nfo.primary.name}: {exc.message}; left untouched"
        data = None
    report = await publisher.publish(entity, item_id, folder, plans)
    columns: dict[str, Any] = {"nfo_error": nfo_error}
    if data is not None:
        columns.update(nfo_path=str(nfo.primary), nfo_hash=hashlib.sha256(data).hexdigest())
        for path in nfo.targets:  # what hand edits are compared with
            await asyncio.to_thread(save_baseline, agent, path, data)
    await agent.db.write(lambda c: media.save(c, media.load(c, entity, item_id), {}, agent.clock.now(),
                                              extra_columns=columns))
    agent.emit(f"{entity}:updated", {"id": item_id})
    return {"written": report.written, "unchanged": report.skipped, "removed": report.removed,
            "kept_foreign": report.kept_foreign, "kept_original": report.kept_original, "hand_edits": edits,
            "nfo_error": nfo_error}


def register(agent: Agent) -> None:
    """Register the publish handler."""

    async def handle(ctx: JobContext) -> dict[str, Any]:
        p = ctx.payload
        entity, item_id = p["entity"], int(p["id"])
        if entity not in media.TABLES:
            raise PermanentFailure(f"unknown entity {entity!r}")
        await ctx.progress(0.1, f"publishing {entity} {item_id}")
        result = await publish_item(agent, entity, item_id)
        if "skipped" in result:
            return result
        priority = int(p.get("priority") or Priority.NORMAL)
        update = p.get("update") or ("Modified" if result["written"] or result["removed"] else None)
        if update and agent.cfg.players:
            job = await ctx.enqueue("notify_players", {"entity": entity, "id": item_id, "update": update},
                                    priority=priority, depends_on=[ctx.job.id],
                                    dedupe_key=f"notify:{entity}:{item_id}")
            result["notify_job"] = job.id
            waiting = await agent.db.fetchone(
                "SELECT COUNT(*) AS n FROM playback_state WHERE entity_type = ? AND entity_id = ?"
                " AND restored_at IS NULL AND expires_at > ?", (entity, item_id, agent.clock.now()))
            if waiting and waiting["n"]:
                restore = await ctx.enqueue("playback_restore", {"entity": entity, "id": item_id},
                                            priority=Priority.CRITICAL, depends_on=[job.id],
                                            dedupe_key=f"restore:{entity}:{item_id}")
                result["restore_job"] = restore.id
        return result

    agent.queue.register("publish", handle)


__all__ = ["nfo_filename", "publish_item", "register"]
