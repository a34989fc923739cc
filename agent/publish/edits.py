"""What is already on disk for an item: the existing NFO read safely, a release's text .nfo told apart, and the
fields someone edited by hand in an NFO the agent wrote, taken as locked user edits before it is rewritten."""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from agent.clock import Clock
from agent.errors import UnsafeUserFile
from agent.nfo import NfoError, parse_nfo, render_nfo
from agent.nfo.baseline import load_baseline
from agent.nfo.model import MAX_NFO_BYTES
from agent.nfo.parse import parse_nfo_async
from agent.nfo.render import existing_roots
from agent.publish.names import KIND
from agent.store import assets, media
from agent.store.base import Database
from agent.store.media import Item
from agent.userfiles import read_user_file

log = logging.getLogger("agent.publish")
# Fields compared when an NFO was edited by hand (everything the NFO carries that the agent manages).
EDITABLE_FROM_NFO = ("title", "original_title", "sort_title", "year", "premiered", "plot", "outline", "tagline",
                     "runtime", "mpaa", "genres", "countries", "studios", "directors", "credits", "tags", "set",
                     "trailer", "userrating", "tmdb_id", "imdb_id", "tvdb_id", "aired", "showtitle", "show_status")


def read_existing(path: Path, roots: Sequence[Path] | None = None) -> bytes | None:
    """The NFO on disk, or None when there is none (blocking: run it in a thread).

    Only a regular file of at most MAX_NFO_BYTES is read, never through a link leaving `roots`;
    a FIFO, device, folder, link out or oversized file is an NfoError, and the publish leaves it alone.
    """
    try:
        return read_user_file(path, roots, MAX_NFO_BYTES)
    except FileNotFoundError:
        return None
    except UnsafeUserFile as exc:
        raise NfoError(f"existing NFO {exc.detail['reason']}", detail=exc.detail) from exc


def is_text_nfo(kind: str, existing: bytes | None) -> bool:
    """True for an NFO on disk with content but no XML (a release's text file): it is kept before ours replaces it."""
    if not existing or not existing.strip():
        return False
    try:
        return not existing_roots(kind, existing)
    except NfoError:
        return False


def episode_fields(item: Item, parsed: Any) -> dict[str, Any]:
    """The fields of this episode in a parsed NFO (a multi-episode file holds several)."""
    if item.entity == "episode" and len(parsed.episodes) > 1:
        return next((e for e in parsed.episodes if e.get("episode") == item.fields.get("episode")), parsed.fields)
    return parsed.fields


def _norm(kind: str, fields: dict[str, Any]) -> dict[str, Any]:
    """Fields as an NFO round trip gives them back (so comparisons ignore formatting)."""
    parsed = parse_nfo(render_nfo(kind, fields))
    return parsed.fields if parsed.ok else fields


def hand_edits(kind: str, item: Item, on_disk: dict[str, Any], written: dict[str, Any] | None = None
               ) -> dict[str, Any]:
    """Fields whose value in an NFO someone edited differs from what the agent wrote: they become user edits.

    `written` is the NFO the agent last wrote, parsed; without it the item's current fields stand in
    (which misreads a field the providers changed since that publish as an edit).
    """
    if written is None:
        written = _norm(kind, {k: v for k, v in item.fields.items() if k in EDITABLE_FROM_NFO})
    edits: dict[str, Any] = {}
    for name in EDITABLE_FROM_NFO:
        theirs = on_disk.get(name)
        if theirs in (None, "", [], {}) and written.get(name) in (None, "", [], {}):
            continue
        if theirs != written.get(name):
            edits[name] = theirs
    return edits


async def absorb_hand_edits(db: Database, clock: Clock, baselines: Path, item: Item, nfo_path: Path, data: bytes
                            ) -> tuple[Item, list[str]]:
    """If the NFO changed since the agent wrote it, take the differing fields as locked user edits.

    `baselines` is the folder of copies of what the agent wrote (data_dir/published).
    """
    written = await db.read(assets.published_hash, str(nfo_path))
    if written is None or hashlib.sha256(data).hexdigest() == written:
        return item, []
    kind = KIND[item.entity]
    parsed = await parse_nfo_async(data, kind)
    if not parsed.ok:
        return item, []
    before = None
    baseline = await asyncio.to_thread(load_baseline, baselines, nfo_path, written)
    if baseline is not None:
        parsed_before = await parse_nfo_async(baseline, kind)
        before = episode_fields(item, parsed_before) if parsed_before.ok else None
    edits = hand_edits(kind, item, episode_fields(item, parsed), before)
    if not edits:
        return item, []
    log.info("%s %d: NFO %s was edited by hand; keeping %s as user edits", item.entity, item.id, nfo_path,
             ", ".join(sorted(edits)))
    item = await db.write(_lock_edits, item, edits, clock.now())
    return item, sorted(edits)


def _lock_edits(conn: Any, item: Item, edits: dict[str, Any], now: float) -> Item:
    """Save hand-edited values as locked fields (writer thread)."""
    return media.save(conn, media.load(conn, item.entity, item.id), edits, now, lock=True)
