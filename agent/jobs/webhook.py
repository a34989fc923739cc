"""The webhook job: turn one recorded webhook event into scans, captures, cleanups, enrich or activity."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agent.config import Config, LibraryConfig
from agent.errors import AgentError, PathError, PermanentFailure
from agent.jobs.model import Priority
from agent.paths import PathMapper, resolve_inside
from agent.queue import JobContext
from agent.webhooks import Action, WebhookEvent, parse_webhook

if TYPE_CHECKING:
    from agent.service import Agent

PRIORITY = Priority.CRITICAL
_STATES = {"playing": "playing", "paused": "paused", "stopped": "idle"}


@dataclass(frozen=True)
class Place:
    """A local path (normalised, not symlink-resolved) and the library that holds it."""

    library: LibraryConfig
    path: str


class Locator:
    """Maps a sender's paths to ours and finds the library holding them (the longest root wins)."""

    def __init__(self, cfg: Config, source: str) -> None:
        source_cfg = cfg.sources.get(source)
        mappings = source_cfg.path_mappings if source_cfg else ()
        self.source = source
        self.mapper = PathMapper([{"remote": m.remote, "local": m.local} for m in mappings], name=source)
        self.libraries = cfg.libraries
        self.roots = [lib.path for lib in cfg.libraries]

    def tried(self) -> str:
        """The mappings as a message fragment."""
        shown = ", ".join(str(m) for m in self.mapper.mappings)
        return shown or "none (paths taken as-is)"

    def locate(self, remote: str) -> Place:
        """Map a sender path and find its library; PermanentFailure naming the path and mappings otherwise."""
        try:
            local = os.path.normpath(self.mapper.to_local(remote))
        except PathError as exc:
            raise PermanentFailure(
                f"cannot map {self.source} path '{remote}': {exc.message}",
                detail={"path": remote, "mappings": self.tried()},
            ) from None
        best: tuple[int, LibraryConfig] | None = None
        for lib in self.libraries:
            try:
                resolve_inside(local, [lib.path])
            except PathError:
                continue
            depth = len(Path(os.path.realpath(lib.path)).parts)
            if best is None or depth > best[0]:
                best = (depth, lib)
        if best is None:
            libs = ", ".join(f"{lib.name}: {lib.path}" for lib in self.libraries) or "none configured"
            raise PermanentFailure(
                f"{self.source} path '{remote}' maps to '{local}', which is outside every library ({libs}); "
                f"{self.source} path mappings tried: {self.tried()}",
                detail={"path": remote, "local": local, "mappings": self.tried()},
            )
        return Place(best[1], local)


def hints_of(event: WebhookEvent, locator: Locator | None = None) -> dict[str, Any]:
    """The Hints a scan or enrich gets from the sender: title, year, overview, genres, ids, images."""
    ids = {f"{k}_id": v for k, v in event.ids.items()}
    hints: dict[str, Any] = {
        "title": event.series_title or event.title,
        "year": event.year,
        "overview": event.overview if event.media_kind != "episode" else None,
        "genres": list(event.genres),
        "ids": ids,
        "images": [{"type": i.type, "url": i.url} for i in event.images],
    }
    if event.source == "sonarr" and event.episodes:
        episodes = []
        for ep in event.episodes:
            file = None
            if ep.file and locator is not None:
                file = locator.locate(ep.file).path
            episodes.append(
                {
                    "season": ep.season,
                    "episode": ep.episode,
                    "title": ep.title,
                    "aired": ep.aired,
                    "overview": ep.overview,
                    "tvdb_id": ep.tvdb_id,
                    "file": file,
                }
            )
        hints["episodes"] = episodes
    return {k: v for k, v in hints.items() if v not in (None, [], {})}


def sha256_of(path: str) -> str:
    """Hash a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _stale_rows(conn: sqlite3.Connection, old: str, new: str) -> list[sqlite3.Row]:
    """published_files rows beside `old` named `<old stem>.x` or `<old stem>-x`, not `<new stem>...`."""
    folder, old_stem = os.path.dirname(old), Path(old).stem
    new_stem = Path(new).stem if os.path.dirname(new) == folder else None
    out = []
    for row in conn.execute(
        "SELECT path, sha256, entity_type, entity_id, kind FROM published_files WHERE path >= ? AND path < ?",
        (os.path.join(folder, old_stem), os.path.join(folder, old_stem) + "\uffff"),
    ):
        path = row["path"]
        name = os.path.basename(path)
        if os.path.dirname(path) != folder or not name.startswith(old_stem):
            continue
        if name[len(old_stem) : len(old_stem) + 1] not in (".", "-"):
            continue
        if new_stem and name.startswith(new_stem) and name[len(new_stem) : len(new_stem) + 1] in (".", "-"):
            continue
        out.append(row)
    return out


def remove_own_files(rows: list[sqlite3.Row], roots: list[Path]) -> dict[str, list[str]]:
    """Delete files the agent wrote that are unchanged since; keep anything changed, foreign or outside."""
    report: dict[str, list[str]] = {"deleted": [], "kept_changed": [], "gone": [], "kept_outside": []}
    for row in rows:
        path = row["path"]
        try:
            resolve_inside(path, roots)
        except PathError:
            report["kept_outside"].append(path)
            continue
        if os.path.islink(path):
            report["kept_changed"].append(path)
        elif not os.path.exists(path):
            report["gone"].append(path)
        elif sha256_of(path) != row["sha256"]:
            report["kept_changed"].append(path)
        else:
            os.unlink(path)
            report["deleted"].append(path)
    return report


def _forget_published(conn: sqlite3.Connection, paths: list[str]) -> None:
    """Drop published_files rows for files that no longer exist."""
    conn.executemany("DELETE FROM published_files WHERE path = ?", [(p,) for p in paths])


def items_by_files(conn: sqlite3.Connection, entity: str, files: list[str]) -> list[int]:
    """Ids of movies or episodes whose main file is one of `files`."""
    if not files:
        return []
    table = "movies" if entity == "movie" else "episodes"
    marks = ",".join("?" * len(files))
    rows = conn.execute(f"SELECT id FROM {table} WHERE file IN ({marks}) ORDER BY id", files)
    return [r["id"] for r in rows]


def items_by_ids(
    conn: sqlite3.Connection, entity: str, ids: dict[str, Any], library: str | None = None
) -> list[int]:
    """Ids of movies, series or episodes matching any of the sender's ids (optionally in one library)."""
    table = {"movie": "movies", "series": "series", "episode": "episodes"}[entity]
    columns = {"tmdb": "tmdb_id", "imdb": "imdb_id", "tvdb": "tvdb_id"}
    if entity == "episode":
        columns = {"tvdb": "tvdb_id"}
    terms = [(f"t.{col} = ?", ids[key]) for key, col in columns.items() if ids.get(key) is not None]
    if not terms:
        return []
    where = " OR ".join(t for t, _ in terms)
    params: list[Any] = [v for _, v in terms]
    sql = f"SELECT t.id FROM {table} t"
    if library is not None and entity != "episode":
        sql += " JOIN libraries l ON l.id = t.library_id WHERE l.name = ? AND"
        params.insert(0, library)
    else:
        sql += " WHERE"
    rows = conn.execute(f"{sql} ({where}) ORDER BY t.missing_since IS NOT NULL, t.id", params)
    return [r["id"] for r in rows]


def item_by_folder(conn: sqlite3.Connection, entity: str, folder: str) -> list[int]:
    """Ids of movies or series whose folder is `folder`."""
    table = "movies" if entity == "movie" else "series"
    return [r["id"] for r in conn.execute(f"SELECT id FROM {table} WHERE path = ? ORDER BY id", (folder,))]


def capture_state(
    conn: sqlite3.Connection, entity: str, item_id: int, since: float, now: float
) -> tuple[bool, int | None]:
    """(already captured, id of a capture job still to run) for one item within the capture window."""
    open_rows = conn.execute(
        "SELECT 1 FROM playback_state WHERE entity_type = ? AND entity_id = ? AND restored_at IS NULL"
        " AND expires_at > ?",
        (entity, item_id, now),
    ).fetchone()
    job = conn.execute(
        "SELECT id, status FROM job_queue WHERE type = 'playback_capture'"
        " AND status IN ('pending', 'running', 'completed')"
        " AND json_extract(payload, '$.entity') = ? AND json_extract(payload, '$.id') = ?"
        " AND created_at >= ? ORDER BY id DESC LIMIT 1",
        (entity, item_id, since),
    ).fetchone()
    if job is not None and job["status"] != "completed":
        return True, job["id"]
    return bool(open_rows) or job is not None, None


class WebhookWork:
    """Plans and enqueues the work for one event; `result` says what was done or why nothing."""

    def __init__(self, agent: Agent, ctx: JobContext, event: WebhookEvent, event_id: int) -> None:
        self.agent, self.ctx, self.event, self.event_id = agent, ctx, event, event_id
        self.locator = Locator(agent.cfg, event.source)
        self.result: dict[str, Any] = {
            "event_id": event_id,
            "source": event.source,
            "event_type": event.event_type,
            "action": event.action.value,
            "enqueued": [],
        }

    async def enqueue(self, type_: str, payload: dict[str, Any], **kw: Any) -> int:
        """Enqueue a follow-up at the webhook priority and note it in the result."""
        payload = {**payload, "priority": PRIORITY}
        job = await self.ctx.enqueue(type_, payload, priority=PRIORITY, **kw)
        note = {"type": type_, "job_id": job.id}
        note.update({k: payload[k] for k in ("library", "folder", "entity", "id") if k in payload})
        self.result["enqueued"].append(note)
        return job.id

    async def run(self) -> dict[str, Any]:
        """Dispatch on the event's action."""
        action = self.event.action
        if action in (Action.IMPORT, Action.UPGRADE):
            await self.imported()
        elif action is Action.RENAME:
            await self.renamed()
        elif action is Action.ADDED:
            await self.added()
        elif action is Action.DELETED:
            await self.deleted()
        elif action is Action.FILE_DELETED:
            await self.file_deleted()
        elif action is Action.PLAYBACK:
            await self.playback()
        else:
            self.result["nothing"] = self.event.ignore_reason or f"{self.event.event_type}: nothing to do"
        return self.result

    # ------------------------------------------------------------------ arr events

    @property
    def entity(self) -> str:
        """The item kind a Radarr/Sonarr event is about."""
        return "movie" if self.event.source == "radarr" else "series"

    def folder(self) -> Place:
        """The movie folder (dirname of the movie file) or the show folder, mapped and inside a library."""
        ev = self.event
        if ev.source == "radarr" and ev.remote_files:
            file = self.locator.locate(ev.remote_files[0])
            return Place(file.library, os.path.dirname(file.path))
        if ev.remote_folder:
            return self.locator.locate(ev.remote_folder)
        if ev.remote_files:
            file = self.locator.locate(ev.remote_files[0])
            return Place(file.library, os.path.dirname(file.path))
        raise PermanentFailure(f"{ev.source} {ev.event_type} names no file and no folder; nothing to scan")

    async def scan(
        self,
        place: Place,
        file: str | None = None,
        upgrade: bool = False,
        depends_on: list[int] | None = None,
    ) -> int:
        """Enqueue the scan of one item folder with the sender's hints."""
        payload: dict[str, Any] = {
            "library": place.library.name,
            "folder": place.path,
            "hints": hints_of(self.event, self.locator),
            "source": "webhook",
        }
        if file:
            payload["file"] = file
        if upgrade:
            payload["upgrade"] = True
        return await self.enqueue(
            "scan",
            payload,
            dedupe_key=f"scan:{place.library.name}:{place.path}",
            lock_key=f"scan:{place.library.name}",
            depends_on=depends_on or (),
        )

    async def imported(self) -> None:
        """Download / upgrade / On Import Complete: capture first on an upgrade, then scan the folder."""
        place = self.folder()
        files = [self.locator.locate(f).path for f in self.event.remote_files]
        depends: list[int] = []
        if self.event.is_upgrade and self.event.deleted_files:
            depends = await self.capture(self.event.deleted_files, only_if_missing=True)
        await self.scan(
            place, file=files[0] if files else None, upgrade=self.event.is_upgrade, depends_on=depends
        )

    async def capture(self, remote_files: list[str], only_if_missing: bool) -> list[int]:
        """Enqueue playback_capture for the items whose file is being replaced; returns job ids to wait on."""
        local = [self.locator.locate(f).path for f in remote_files]
        entity = "movie" if self.event.source == "radarr" else "episode"
        ids = await self.agent.db.read(items_by_files, entity, local)
        if not ids and entity == "movie" and self.event.ids:
            ids = (await self.agent.db.read(items_by_ids, "movie", self.event.ids))[:1]
        if not ids:
            self.result.setdefault("notes", []).append(
                f"no known {entity} has {', '.join(local)}; nothing to capture"
            )
            return []
        now = self.agent.clock.now()
        since = now - self.agent.cfg.playback.expire_hours * 3600
        wait: list[int] = []
        for item_id in ids:
            if only_if_missing:
                done, pending = await self.agent.db.read(capture_state, entity, item_id, since, now)
                if pending is not None:
                    wait.append(pending)
                if done:
                    continue
            wait.append(
                await self.enqueue(
                    "playback_capture",
                    {"entity": entity, "id": item_id, "files": local, "source": self.event.source},
                    dedupe_key=f"playback_capture:{entity}:{item_id}",
                )
            )
        return wait

    async def renamed(self) -> None:
        """Rename: remove the agent's own files under the old names, then rescan the folder."""
        pairs = [(self.locator.locate(old), self.locator.locate(new)) for old, new in self.event.renamed]
        rows: list[sqlite3.Row] = []
        for old, new in pairs:
            if old.path != new.path:
                rows += await self.agent.db.read(_stale_rows, old.path, new.path)
        report = await asyncio.to_thread(
            remove_own_files, rows, [lib.path for lib in self.agent.cfg.libraries]
        )
        forget = report["deleted"] + report["gone"]
        if forget:
            await self.agent.db.write(_forget_published, forget)
        self.result["removed"] = report["deleted"]
        self.result["kept"] = report["kept_changed"] + report["kept_outside"]
        if self.event.remote_folder or self.event.remote_files:
            await self.scan(self.folder())
        elif pairs:
            new = pairs[0][1]
            await self.scan(Place(new.library, os.path.dirname(new.path)))

    async def added(self) -> None:
        """MovieAdded/SeriesAdd: scan a folder that exists; Jellyfin/Plex: match a known item."""
        if self.event.source in ("jellyfin", "plex"):
            await self.player_added()
            return
        place = self.folder()
        if not await asyncio.to_thread(os.path.isdir, place.path):
            self.result["nothing"] = (
                f"folder '{place.path}' does not exist yet; the import webhook will scan it"
            )
            return
        await self.scan(place)

    async def deleted(self) -> None:
        """MovieDelete/SeriesDelete: clean up the matching item (by folder, else by ids)."""
        place = self.folder() if self.event.remote_folder or self.event.remote_files else None
        ids: list[int] = []
        if place is not None:
            ids = await self.agent.db.read(item_by_folder, self.entity, place.path)
        if not ids and self.event.ids:
            lib = place.library.name if place else None
            ids = await self.agent.db.read(items_by_ids, self.entity, self.event.ids, lib)
        if not ids:
            where = f"folder '{place.path}'" if place else "its ids"
            self.result["nothing"] = f"no known {self.entity} matches {where} {json.dumps(self.event.ids)}"
            return
        for item_id in ids:
            await self.enqueue(
                "cleanup",
                {
                    "entity": self.entity,
                    "id": item_id,
                    "reason": f"{self.event.source} {self.event.event_type}",
                },
                dedupe_key=f"cleanup:{self.entity}:{item_id}",
            )

    async def file_deleted(self) -> None:
        """MovieFileDelete/EpisodeFileDelete: capture playback for an upgrade, else clean up."""
        ev = self.event
        if (ev.delete_reason or "").lower() == "upgrade":
            await self.capture(ev.deleted_files, only_if_missing=False)
            return
        local = [self.locator.locate(f).path for f in ev.deleted_files]
        entity = "movie" if ev.source == "radarr" else "episode"
        ids = await self.agent.db.read(items_by_files, entity, local)
        if not ids:
            self.result["nothing"] = f"no known {entity} has {', '.join(local) or 'the deleted file'}"
            return
        for item_id in ids:
            await self.enqueue(
                "cleanup",
                {
                    "entity": entity,
                    "id": item_id,
                    "files": local,
                    "reason": f"{ev.source} {ev.event_type}: {ev.delete_reason or 'deleted'}",
                },
                dedupe_key=f"cleanup:{entity}:{item_id}",
            )

    # ------------------------------------------------------------------ player events

    async def known(self) -> tuple[str, int] | None:
        """The known item a Jellyfin/Plex event names by ids, or None."""
        kind = self.event.media_kind
        if kind is None or not self.event.ids:
            return None
        ids = await self.agent.db.read(items_by_ids, kind, self.event.ids)
        return (kind, ids[0]) if ids else None

    async def player_added(self) -> None:
        """Jellyfin ItemAdded: note the match; Plex library.new: enrich the known item."""
        found = await self.known()
        if found is None:
            self.result["nothing"] = (
                f"no known {self.event.media_kind or 'item'} matches "
                f"{json.dumps(self.event.ids) if self.event.ids else 'no ids were sent'}"
            )
            return
        entity, item_id = found
        if self.event.source == "jellyfin":
            self.result["matched"] = {"entity": entity, "id": item_id}
            return
        await self.enqueue(
            "enrich",
            {"entity": entity, "id": item_id, "hints": hints_of(self.event)},
            dedupe_key=f"enrich:{entity}:{item_id}",
        )

    async def playback(self) -> None:
        """Emit player:activity for a Jellyfin/Plex playback event; nothing is stored."""
        pb = self.event.playback
        if pb is None:
            self.result["nothing"] = "playback event without playback details"
            return
        name = pb.player or pb.client or pb.user or "unknown"
        data: dict[str, Any] = {
            "player": f"{self.event.source}:{name}",
            "state": _STATES.get(pb.state, "idle"),
            "title": self.event.title,
            "position": pb.position_seconds,
            "total": pb.total_seconds,
        }
        found = await self.known()
        if found is not None and found[0] in ("movie", "episode"):
            table = "movies" if found[0] == "movie" else "episodes"
            row = await self.agent.db.fetchone(f"SELECT file FROM {table} WHERE id = ?", (found[1],))
            if row is not None:
                data["file"] = row["file"]
        self.agent.emit("player:activity", data)
        self.result["activity"] = data


def register(agent: Agent) -> None:
    """Register the `webhook` job handler."""

    async def handle(ctx: JobContext) -> dict[str, Any]:
        event_id = ctx.payload.get("event_id")
        if not isinstance(event_id, int):
            raise PermanentFailure(f"webhook job payload needs an integer event_id, got {event_id!r}")
        row = await agent.db.fetchone("SELECT source, payload FROM webhook_events WHERE id = ?", (event_id,))
        if row is None:
            raise PermanentFailure(f"webhook event {event_id} does not exist")
        try:
            event = parse_webhook(row["source"], row["payload"].encode("utf-8"), "application/json")
        except AgentError as exc:
            raise PermanentFailure(
                f"webhook event {event_id} cannot be parsed again: {exc.message}"
            ) from None
        return await WebhookWork(agent, ctx, event, event_id).run()

    agent.queue.register("webhook", handle)
