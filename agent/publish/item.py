"""Publish one item: plan its files (adopted NFOs or the configured one, artwork from its cache references),
absorb hand edits first, render the NFO, write everything through the Publisher and record the result."""

from __future__ import annotations

import asyncio
import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agent.config import Config
from agent.events import Emit
from agent.nfo import NfoError, render_episodes, render_nfo
from agent.nfo.baseline import save_baseline
from agent.publish.edits import absorb_hand_edits, is_text_nfo, read_existing
from agent.publish.names import KIND, art_filename, folder_and_stem, nfo_candidates, present_nfos
from agent.publish.writer import PlannedFile, Publisher
from agent.store import assets, media
from agent.store.base import Database
from agent.store.media import Item


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


async def shared_folder(db: Database, cfg: Config, item: Item) -> bool:
    """Whether several movies live in this movie's folder (or it is a library's root)."""
    if item.entity != "movie":
        return False
    if any(lib.path == Path(item.row["path"]) for lib in cfg.libraries):
        return True
    return await db.read(media.live_movies_in, item.row["path"]) > 1


async def art_plan(db: Database, item: Item, stem: str | None, shared: bool
                   ) -> tuple[list[PlannedFile], dict[str, str]]:
    """Planned artwork files from the item's cache references, and source URLs for the NFO."""
    plans, urls = [], {}
    for r in await db.read(assets.publishable_art, item.entity, item.id):
        if item.entity == "episode" and r["art_type"] != "thumb":
            continue
        name = art_filename(r["art_type"], r["ext"], stem=stem, shared_folder=shared, position=r["position"])
        plans.append(PlannedFile.asset(name, r["sha256"], r["ext"], r["art_type"], r["position"]))
        if r["position"] == 0 and (r["source_url"] or "").startswith(("http://", "https://")):
            urls[r["art_type"]] = r["source_url"]
    return plans, urls


async def nfo_files(cfg: Config, item: Item, shared: bool) -> NfoFiles:
    """Adopt the item's NFOs already there (any another tool wrote, XML only); else the configured target.

    Every present candidate is written with the same bytes, so no NFO a player prefers is left stale.
    A FIFO, folder, device or link out of the libraries among them is never read: nothing NFO is written.
    """
    candidates = nfo_candidates(item, shared, cfg.nfo.movie_filename)
    roots = [lib.path for lib in cfg.libraries]
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


async def render_for(db: Database, cfg: Config, item: Item, existing: bytes | None, art_urls: dict[str, str]
                     ) -> bytes:
    """Render the item's NFO, keeping the existing file's unmanaged tags (a multi-episode file: every episode)."""
    kind = KIND[item.entity]
    templates = cfg.nfo.templates
    fields = dict(item.fields)
    if art_urls:
        fields["art"] = art_urls
    if item.entity == "episode":
        siblings = await db.read(media.episodes_in_file, item.row["file"])
        if len(siblings) > 1:
            episodes = [fields if sibling.id == item.id else dict(sibling.fields) for sibling in siblings]
            return await asyncio.to_thread(render_episodes, episodes, existing, templates)
    return await asyncio.to_thread(render_nfo, kind, fields, existing, templates)  # parses `existing`: off the loop


async def publish_item(publisher: Publisher, cfg: Config, emit: Emit, entity: str, item_id: int) -> dict[str, Any]:
    """Write one item's files (through `publisher`, whose db and clock it uses); a broken NFO on disk is reported
    and left untouched. Returns the publish job's result."""
    db, clock = publisher.db, publisher.clock
    baselines = cfg.data_dir / "published"
    item = await db.read(media.load, entity, item_id)
    if item.row.get("missing_since") is not None:
        return {"skipped": "the item's files are missing"}
    shared = await shared_folder(db, cfg, item)
    folder, stem = folder_and_stem(item)
    nfo = await nfo_files(cfg, item, shared)
    edits: list[str] = []
    for path in nfo.targets:
        if nfo.existing.get(path) is not None:
            item, found = await absorb_hand_edits(db, clock, baselines, item, path, nfo.existing[path] or b"")
            edits = sorted({*edits, *found})
    plans, urls = await art_plan(db, item, stem, shared)
    nfo_error = None
    try:
        if nfo.unreadable is not None:
            raise nfo.unreadable
        data = await render_for(db, cfg, item, nfo.existing.get(nfo.primary), urls)
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
            await asyncio.to_thread(save_baseline, baselines, path, data)
    await db.write(_record_nfo, entity, item_id, columns, clock.now())
    emit(f"{entity}:updated", {"id": item_id})
    return {"written": report.written, "unchanged": report.skipped, "removed": report.removed,
            "kept_foreign": report.kept_foreign, "kept_original": report.kept_original, "hand_edits": edits,
            "nfo_error": nfo_error}


def _record_nfo(conn: Any, entity: str, item_id: int, columns: dict[str, Any], now: float) -> Item:
    """Save the item's NFO path, hash and error (writer thread)."""
    return media.save(conn, media.load(conn, entity, item_id), {}, now, extra_columns=columns)
