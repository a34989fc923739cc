"""The webhook job: turn one recorded webhook event into scans, captures, cleanups, enrich or activity."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
import sqlite3
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agent.clock import Clock
from agent.config import Config
from agent.errors import PathError, PermanentFailure, UnsafeUserFile
from agent.events import Emit
from agent.paths import resolve_inside
from agent.queue import JobContext
from agent.store import Database, agents, assets, media, players
from agent.userfiles import open_user_file
from agent.webhooks.jobs import PRIORITY, event_id_of
from agent.webhooks.locate import Locator, OutsideLibraries, Place, hints_of
from agent.webhooks.model import Action, WebhookEvent
from agent.webhooks.record import load_event

log = logging.getLogger(__name__)

if TYPE_CHECKING:
    from agent.services import Services

_STATES = {"playing": "playing", "paused": "paused", "stopped": "idle"}


def sha256_of(path: str) -> str | None:
    """Hash a regular file's bytes; None for a FIFO, device or folder (never opened to wait on)."""
    try:
        fd = open_user_file(path)
    except UnsafeUserFile:
        return None
    digest = hashlib.sha256()
    with os.fdopen(fd, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


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


class WebhookWork:
    """Plans and enqueues the work for one event; `result` says what was done or why nothing."""

    def __init__(
        self,
        ctx: JobContext,
        event: WebhookEvent,
        event_id: int,
        *,
        cfg: Config,
        db: Database,
        clock: Clock,
        emit: Emit,
    ) -> None:
        self.ctx, self.event, self.event_id = ctx, event, event_id
        self.cfg, self.db, self.clock, self.emit = cfg, db, clock, emit
        self.locator = Locator(cfg, event.source)
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
            "hints": hints_of(self.event, self.locator).to_payload(),
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
        ids = await self.db.read(media.items_by_files, entity, local)
        if not ids and entity == "movie" and self.event.ids:
            ids = (await self.db.read(media.items_by_ids, "movie", self.event.ids))[:1]
        if not ids:
            self.result.setdefault("notes", []).append(
                f"no known {entity} has {', '.join(local)}; nothing to capture"
            )
            return []
        now = self.clock.now()
        since = now - self.cfg.playback.expire_hours * 3600
        wait: list[int] = []
        for item_id in ids:
            if only_if_missing:
                done, pending = await self.db.read(players.capture_state, entity, item_id, since, now)
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
                rows += await self.db.read(assets.stale_published, old.path, new.path)
        report = await asyncio.to_thread(
            remove_own_files, rows, [lib.path for lib in self.cfg.libraries]
        )
        forget = report["deleted"] + report["gone"]
        if forget:
            await self.db.write(assets.forget_published_files, forget)
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
            ids = await self.db.read(media.items_by_folder, self.entity, place.path)
        if not ids and self.event.ids:
            lib = place.library.name if place else None
            ids = await self.db.read(media.items_by_ids, self.entity, self.event.ids, lib)
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
        ids = await self.db.read(media.items_by_files, entity, local)
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
        ids = await self.db.read(media.items_by_ids, kind, self.event.ids)
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
            {"entity": entity, "id": item_id, "hints": hints_of(self.event).to_payload()},
            dedupe_key=f"enrich:{entity}:{item_id}",
            chain=None,  # an enrich job starts its item's chain (agent.enrich.enqueue_enrich)
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
            file = await self.db.read(media.current_file, found[0], found[1])
            if file is not None:
                data["file"] = file
        self.emit("player:activity", data)
        self.result["activity"] = data


def register(services: Services) -> None:
    """Register the `webhook` job handler: load the recorded event typed, then plan its work."""

    async def handle(ctx: JobContext) -> dict[str, Any]:
        event_id = event_id_of(ctx.payload)
        event = await load_event(services.db, event_id)
        work = WebhookWork(
            ctx, event, event_id, cfg=services.cfg, db=services.db, clock=services.clock, emit=services.emit
        )
        try:
            return await work.run()
        except OutsideLibraries as exc:
            if not services.cfg.shared_store:
                raise
            return await hand_over(ctx, services, exc)

    services.queue.register("webhook", handle)


async def hand_over(ctx: JobContext, services: Services, exc: OutsideLibraries) -> dict[str, Any]:
    """On a shared store, a webhook for a path outside this agent's libraries goes to the next agent that has
    not tried it (each maps the sender's paths with its own config); after the last, it fails as before."""
    me = services.cfg.agent.name
    tried = [*[str(t) for t in ctx.payload.get("tried") or [] if t != me], me]
    others = [a["name"] for a in await services.db.read(agents.listing)
              if a["name"] not in tried and a["stopped_at"] is None]
    if not others:
        tried_text = ", ".join(tried)
        raise OutsideLibraries(f"{exc.message}; no agent on this store holds it (tried {tried_text})",
                               detail=exc.detail) from None
    job = await services.queue.enqueue("webhook", {**ctx.payload, "tried": tried}, priority=ctx.job.priority,
                                       max_retries=ctx.job.max_retries, origin=ctx.job.origin or ctx.job.id,
                                       agent=others[0])
    log.info("webhook %s is outside this agent's libraries: handed to agent %s (job %d)",
             ctx.payload.get("event_id"), others[0], job.id)
    return {"handed_to": others[0], "job_id": job.id, "tried": tried}
