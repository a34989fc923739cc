"""Plan what goes beside an item (NFO + artwork), absorb hand edits first, then write through the Publisher."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agent.errors import UnsafeUserFile
from agent.fsutil import atomic_write
from agent.library.naming import stack_key
from agent.nfo import NfoError, parse_nfo, render_episodes, render_nfo
from agent.nfo.model import MAX_NFO_BYTES
from agent.nfo.parse import parse_nfo_async
from agent.nfo.render import existing_roots
from agent.store import media
from agent.store.media import Item
from agent.userfiles import read_user_file

if TYPE_CHECKING:
    from agent.service import Agent

log = logging.getLogger("agent.publish")
KIND = {"movie": "movie", "series": "tvshow", "episode": "episodedetails"}
# Fields compared when an NFO was edited by hand (everything the NFO carries that the agent manages).
EDITABLE_FROM_NFO = ("title", "original_title", "sort_title", "year", "premiered", "plot", "outline", "tagline",
                     "runtime", "mpaa", "genres", "countries", "studios", "directors", "credits", "tags", "set",
                     "trailer", "userrating", "tmdb_id", "imdb_id", "tvdb_id", "aired", "showtitle", "show_status")


def nfo_target(agent: Agent, item: Item, shared_folder: bool) -> Path:
    """Where the item's NFO goes (DESIGN section 7)."""
    if item.entity == "series":
        return Path(item.row["path"]) / "tvshow.nfo"
    video = Path(item.row["file"])
    if item.entity == "movie":
        folder = Path(item.row["path"])
        if video.name.lower() in ("index.bdmv", "video_ts.ifo"):
            return folder / "movie.nfo"
        if agent.cfg.nfo.movie_filename == "movie" and not shared_folder:
            return folder / "movie.nfo"
    return video.with_suffix(".nfo")


def nfo_candidates(agent: Agent, item: Item, shared_folder: bool) -> list[Path]:
    """Every NFO a player may read for the item, the configured target first (peers.md A1).

    A movie alone in its folder: `<stem>.nfo`, the stacked title's `<name>.nfo`, `movie.nfo`; a disc:
    `movie.nfo`, `<folder>.nfo`, `BDMV/index.nfo` or `VIDEO_TS/VIDEO_TS.nfo`. In a shared folder only `<stem>.nfo`.
    """
    target = nfo_target(agent, item, shared_folder)
    if item.entity != "movie" or shared_folder:
        return [target]
    video, folder = Path(item.row["file"]), Path(item.row["path"])
    if video.name.lower() in ("index.bdmv", "video_ts.ifo"):
        others = [folder / f"{folder.name}.nfo", video.with_suffix(".nfo")]
    else:
        stack = stack_key(video.stem)
        others = [video.with_suffix(".nfo"), *([folder / f"{stack[0]}.nfo"] if stack else []), folder / "movie.nfo"]
    out = [target]
    for path in others:
        if path not in out:
            out.append(path)
    return out


def present_nfos(paths: Sequence[Path]) -> dict[Path, Path]:
    """Candidate -> the file that exists for it, spelled as on disk (any case); blocking: run in a thread."""
    listings: dict[Path, dict[str, str]] = {}
    found: dict[Path, Path] = {}
    for path in paths:
        if path.parent not in listings:
            try:
                with os.scandir(path.parent) as entries:
                    listings[path.parent] = {e.name.casefold(): e.name for e in entries}
            except OSError:
                listings[path.parent] = {}
        name = listings[path.parent].get(path.name.casefold())
        if name is not None and path.parent / name not in found.values():
            found[path] = path.parent / name
    return found


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


def baseline_name(nfo_path: str | Path) -> str:
    """The file name of the copy kept for `nfo_path` (under data_dir/published/<first two>/)."""
    return hashlib.sha256(str(nfo_path).encode("utf-8", "surrogateescape")).hexdigest() + ".nfo"


def baseline_path(agent: Agent, nfo_path: Path) -> Path:
    """Where the agent keeps a copy of the NFO it last wrote at `nfo_path` (to tell hand edits apart)."""
    name = baseline_name(nfo_path)
    return agent.cfg.data_dir / "published" / name[:2] / name


def save_baseline(agent: Agent, nfo_path: Path, data: bytes) -> None:
    """Keep the bytes just published at `nfo_path` (blocking; run in a thread); a failure only costs precision."""
    path = baseline_path(agent, nfo_path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, data)
    except OSError as exc:  # hand edits then fall back to comparing with the current fields
        log.warning("cannot keep a copy of %s in %s: %s", nfo_path, path, exc.strerror or exc)


def load_baseline(agent: Agent, nfo_path: Path, sha256: str) -> bytes | None:
    """The copy of what the agent last wrote at `nfo_path`, if it is intact (hashes to `sha256`)."""
    try:
        data = baseline_path(agent, nfo_path).read_bytes()
    except OSError:
        return None
    return data if hashlib.sha256(data).hexdigest() == sha256 else None


def episode_fields(item: Item, parsed: Any) -> dict[str, Any]:
    """The fields of this episode in a parsed NFO (a multi-episode file holds several)."""
    if item.entity == "episode" and len(parsed.episodes) > 1:
        return next((e for e in parsed.episodes if e.get("episode") == item.fields.get("episode")), parsed.fields)
    return parsed.fields


async def absorb_hand_edits(agent: Agent, item: Item, nfo_path: Path, data: bytes) -> tuple[Item, list[str]]:
    """If the NFO changed since the agent wrote it, take the differing fields as locked user edits."""
    written = await agent.db.fetchone("SELECT sha256 FROM published_files WHERE path = ?", (str(nfo_path),))
    if written is None or hashlib.sha256(data).hexdigest() == written["sha256"]:
        return item, []
    kind = KIND[item.entity]
    parsed = await parse_nfo_async(data, kind)
    if not parsed.ok:
        return item, []
    before = None
    baseline = await asyncio.to_thread(load_baseline, agent, nfo_path, written["sha256"])
    if baseline is not None:
        parsed_before = await parse_nfo_async(baseline, kind)
        before = episode_fields(item, parsed_before) if parsed_before.ok else None
    edits = hand_edits(kind, item, episode_fields(item, parsed), before)
    if not edits:
        return item, []
    log.info("%s %d: NFO %s was edited by hand; keeping %s as user edits", item.entity, item.id, nfo_path,
             ", ".join(sorted(edits)))
    item = await agent.db.write(lambda c: media.save(c, media.load(c, item.entity, item.id), edits,
                                                     agent.clock.now(), lock=True))
    return item, sorted(edits)


async def render_for(agent: Agent, item: Item, existing: bytes | None, art_urls: dict[str, str]) -> bytes:
    """Render the item's NFO, keeping the existing file's unmanaged tags."""
    kind = KIND[item.entity]
    templates = agent.cfg.nfo.templates
    fields = dict(item.fields)
    if art_urls:
        fields["art"] = art_urls
    if item.entity == "episode":
        rows = await agent.db.fetchall(
            "SELECT * FROM episodes WHERE file = ? AND missing_since IS NULL ORDER BY season, episode",
            (item.row["file"],))
        if len(rows) > 1:
            episodes = []
            for row in rows:
                sibling = media.item_from_row("episode", row)
                episodes.append(fields if sibling.id == item.id else dict(sibling.fields))
            return await asyncio.to_thread(render_episodes, episodes, existing, templates)
    return await asyncio.to_thread(render_nfo, kind, fields, existing, templates)  # parses `existing`: off the loop


def is_text_nfo(kind: str, existing: bytes | None) -> bool:
    """True for an NFO on disk with content but no XML (a release's text file): it is kept before ours replaces it."""
    if not existing or not existing.strip():
        return False
    try:
        return not existing_roots(kind, existing)
    except NfoError:
        return False


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


__all__ = ["KIND", "absorb_hand_edits", "baseline_path", "episode_fields", "hand_edits", "is_text_nfo", "load_baseline",
           "nfo_candidates", "nfo_target", "present_nfos", "read_existing", "render_for", "save_baseline"]
