"""`playback_capture` / `playback_restore` jobs: keep the viewer's place across a file upgrade."""

from __future__ import annotations

import asyncio
import logging
import os
from typing import Any, Final

from agent.clock import Clock
from agent.errors import AgentError, PermanentFailure, RetryLater
from agent.events import Emit
from agent.players import PlayerError
from agent.players.jellyfin import TICKS_PER_SECOND
from agent.players.jobs import CAPTURE, RESTORE, CapturePayload, RestorePayload
from agent.players.kodi import folder_of
from agent.players.registry import Player, PlayerRegistry
from agent.queue import JobContext
from agent.services import Services
from agent.store import Database, media
from agent.store import jobs as jobs_store
from agent.store import players as store

log = logging.getLogger(__name__)

SCAN_WAIT: Final = 60.0  # seconds a restore waits for Kodi's running scan to finish
NOT_SCANNED_DELAY: Final = 5.0  # seconds before looking again for a new file Kodi has not scanned yet


async def _find(player: Player, entity: str, file: str) -> dict[str, Any] | None:
    """The Kodi library item with exactly this (player-side) file."""
    if entity == "movie":
        return await player.kodi.find_movie_by_path(file)
    return await player.kodi.find_episode_by_path(file)


# -- capture ----------------------------------------------------------------------------------------------


async def capture_kodi(player: Player, entity: str, files: list[str]) -> list[dict[str, Any]]:
    """Watched state, resume point and live position of each old file this Kodi knows or plays."""
    active = await player.kodi.active_video_player()
    rows = []
    for local in files:
        remote = player.to_player(local)
        item = await _find(player, entity, remote)
        playing = active if active is not None and active["file"] == remote else None
        if item is None and playing is None:
            continue
        resume = (item or {}).get("resume") or {}
        rows.append(
            {
                "old_file": local,
                "player_item_id": (item or {}).get(f"{entity}id"),
                "position": float(playing["position"] if playing else resume.get("position") or 0.0),
                "total": float(playing["total"] if playing else resume.get("total") or 0.0),
                "playcount": (item or {}).get("playcount"),
                "lastplayed": (item or {}).get("lastplayed") or None,
                "was_playing": 1 if playing else 0,
            }
        )
    return rows


async def capture_jellyfin(player: Player, entity: str, files: list[str]) -> list[dict[str, Any]]:
    """Each Jellyfin user's data for the old files (Played, PlayCount, position, LastPlayedDate), one row
    per user who has any; a live session of an old file Jellyfin's library lacks is kept as before."""
    jellyfin = player.jellyfin
    rows: list[dict[str, Any]] = []
    users: list[dict[str, Any]] | None = None
    known: set[str] = set()
    for local in files:
        item = await jellyfin.find_item(entity, player.to_player(local))
        if item is None:
            continue
        known.add(local)
        users = users if users is not None else await jellyfin.users()
        for user in users:
            data = await jellyfin.user_data(item["Id"], user["Id"])
            ticks = int(data.get("PlaybackPositionTicks") or 0)
            count = int(data.get("PlayCount") or 0)
            if not (data.get("Played") or count or ticks):
                continue
            rows.append({
                "old_file": local, "player_item_id": item["Id"], "player_user": user["Id"],
                "position": ticks / TICKS_PER_SECOND, "total": 0.0, "playcount": count,
                "lastplayed": data.get("LastPlayedDate"), "played": 1 if data.get("Played") else 0,
                "was_playing": 0,
            })
    wanted = {player.to_player(local): local for local in files if local not in known}
    for session in await jellyfin.sessions() if wanted else []:
        local = wanted.get(session.get("path") or "")
        if local is None:
            continue
        rows.append(
            {
                "old_file": local,
                "player_item_id": session.get("item_id"),
                "position": session["position"],
                "total": session["runtime"],
                "playcount": None,
                "lastplayed": None,
                "was_playing": 1,
            }
        )
    return rows


async def capture_plex(player: Player, entity: str, files: list[str]) -> list[dict[str, Any]]:
    """The token's user's view count and offset of each old file Plex lists (one row per file seen)."""
    rows = []
    for local in files:
        item = await player.plex.find_item(entity, player.to_player(local))
        if item is None or not (item["viewCount"] or item["viewOffset"]):
            continue
        rows.append({
            "old_file": local, "player_item_id": item["ratingKey"], "position": item["viewOffset"] / 1000.0,
            "total": item["duration"] / 1000.0, "playcount": item["viewCount"], "lastplayed": None,
            "played": 1 if item["viewCount"] else 0, "was_playing": 0,
        })
    return rows


def watched_fields(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The NFO's playcount / lastplayed / resume from captured rows (most watched, latest, furthest)."""
    out: dict[str, Any] = {}
    counts = [int(r["playcount"]) for r in rows if r.get("playcount")]
    if counts:
        out["playcount"] = max(counts)
    played = [str(r["lastplayed"]) for r in rows if r.get("lastplayed")]
    if played:
        out["lastplayed"] = max(played)
    live = [r for r in rows if r.get("was_playing") and r.get("position")]
    stored = [r for r in rows if r.get("position")]
    best = max(live or stored, key=lambda r: float(r["position"]), default=None)
    if best is not None:
        out["resume"] = {
            "position": round(float(best["position"]), 3),
            "total": round(float(best["total"] or 0), 3),
        }
    return out


async def run_capture(db: Database, registry: PlayerRegistry, clock: Clock, emit: Emit, expire_hours: float,
                      ctx: JobContext, p: CapturePayload) -> dict[str, Any]:
    """Capture every player's view of the old files; RetryLater only for players that were down."""
    entity, item_id, files = p.entity, p.id, list(p.files)
    done: list[str] = list(p.done_players)
    now = clock.now()
    expires = now + expire_hours * 3600
    captured: dict[str, int] = {}
    failed: dict[str, str] = {}
    retry: dict[str, RetryLater] = {}
    all_rows: list[dict[str, Any]] = []
    for player in registry.players.values():
        if player.name in done:
            continue
        try:
            if player.is_kodi:
                rows = await capture_kodi(player, entity, files)
            elif player.is_plex:
                rows = await capture_plex(player, entity, files)
            else:
                rows = await capture_jellyfin(player, entity, files)
        except RetryLater as exc:
            await registry.mark(player, exc)
            retry[player.name] = exc
            continue
        except AgentError as exc:
            if isinstance(exc, PlayerError):
                await registry.mark(player, exc)
            failed[player.name] = exc.message
            continue
        await registry.mark(player)
        await db.write(store.replace_captures, player.name, entity, item_id, rows, now, expires)
        captured[player.name] = len(rows)
        if not player.is_plex:  # the NFO's watched state is Kodi's (and a live Jellyfin session's)
            all_rows += [r for r in rows if not r.get("player_user")]
        done.append(player.name)
    # Remember the players asked, so a retry skips them.
    ctx.payload["done_players"] = done
    await db.write(jobs_store.set_payload, ctx.job.id, ctx.payload)
    fields = watched_fields(all_rows)
    if fields and await db.write(media.merge_fields, entity, item_id, fields, now):
        emit(f"{entity}:updated", {"id": item_id})
    result = {"entity": entity, "id": item_id, "captured": captured, "failed": failed, "watched": fields}
    if not any(captured.values()):
        result["note"] = "no player had seen or was playing these files; nothing to restore"
    if retry:
        listed = "; ".join(f"{n}: {e.message}" for n, e in retry.items())
        raise RetryLater(
            f"will retry capture on {', '.join(retry)} ({listed})",
            delay=min((e.delay for e in retry.values() if e.delay is not None), default=None),
            detail=result,
        )
    return result


# -- restore ----------------------------------------------------------------------------------------------


async def find_new_item(player: Player, entity: str, file: str) -> dict[str, Any] | None:
    """The new file's Kodi item; while Kodi is still scanning, wait for VideoLibrary.OnScanFinished."""
    found = await _find(player, entity, file)
    if found is not None or player.listener is None:
        return found
    waiter = player.listener.wait_for("VideoLibrary.OnScanFinished", SCAN_WAIT, busy=player.kodi.is_scanning)
    if not await player.kodi.is_scanning():
        found = await _find(player, entity, file)  # a scan may have ended between the two calls
        waiter.close()  # type: ignore[attr-defined]
        return found
    await waiter
    return await _find(player, entity, file)


async def restore_kodi(player: Player, entity: str, row: dict[str, Any], new_file: str) -> str | None:
    """Set watched state + resume on the new item and resume playback; None when Kodi lacks it yet."""
    kodi = player.kodi
    remote = player.to_player(new_file)
    item = await find_new_item(player, entity, remote)
    if item is None:
        return None
    position, total = float(row["position"] or 0.0), float(row["total"] or 0.0)
    resume = {"position": position, "total": total} if position > 0 else None
    playcount = row["playcount"] if row["playcount"] is not None else None
    setter = kodi.set_movie_details if entity == "movie" else kodi.set_episode_details
    if playcount is not None or row["lastplayed"] or resume:
        await setter(
            item[f"{entity}id"], playcount=playcount, lastplayed=row["lastplayed"] or None, resume=resume
        )
    stale = await remove_stale_entries(player, entity, row["old_file"], new_file)
    removed = f"; removed the old entry {', '.join(map(str, stale))}" if stale else ""
    if not row["was_playing"]:
        return f"watched state set on {remote}{removed}"
    active = await kodi.active_video_player()
    old = player.to_player(row["old_file"])
    if active is not None and active["file"] not in (old, remote):
        return f"watched state set; not resuming playback: {player.name} now plays {active['file']}"
    await kodi.open_file(remote, position or None)
    return f"resumed {remote} at {position:.0f} s{removed}"


async def remove_stale_entries(player: Player, entity: str, old_file: str, new_file: str) -> list[int]:
    """Once the new file's entry exists, remove the entries Kodi still keeps for the replaced file.

    Only entries whose file is exactly the old file (as Kodi sees it) go, and only when that file is
    gone from disk and differs from the new one: never a library-wide clean. Returns the removed ids."""
    old_remote, new_remote = player.to_player(old_file), player.to_player(new_file)
    if old_remote == new_remote or await asyncio.to_thread(os.path.lexists, old_file):
        return []
    entries = await player.kodi.entries_in(entity, folder_of(old_remote))
    stale = [int(e[f"{entity}id"]) for e in entries if e.get("file") == old_remote]
    for item_id in stale:
        await player.kodi.remove_entry(entity, item_id)
        log.info("%s: removed the stale %s entry %d of %s", player.name, entity, item_id, old_remote)
    return stale


async def restore_jellyfin(player: Player, entity: str, row: dict[str, Any], new_file: str) -> str | None:
    """Give one Jellyfin user back their Played, PlayCount, position and LastPlayedDate on the new item;
    None while Jellyfin does not list the new file yet."""
    remote = player.to_player(new_file)
    item = await player.jellyfin.find_item(entity, remote)
    if item is None:
        return None
    ticks = round(float(row["position"] or 0.0) * TICKS_PER_SECOND)
    data = {"Played": bool(row["played"]), "PlayCount": int(row["playcount"] or 0),
            "PlaybackPositionTicks": ticks, "LastPlayedDate": row["lastplayed"] or None}
    await player.jellyfin.set_user_data(item["Id"], row["player_user"], data)
    return f"user {row['player_user']}: restored on item {item['Id']} ({remote})"


async def restore_plex(player: Player, entity: str, row: dict[str, Any], new_file: str) -> str | None:
    """Mark the new item watched (when it was) and set its view offset for the token's user; None while
    Plex does not list the new file yet. Plex's scrobble adds one view: a count above one is not copied."""
    remote = player.to_player(new_file)
    item = await player.plex.find_item(entity, remote)
    if item is None:
        return None
    done = []
    if row["playcount"] and not item["viewCount"]:
        await player.plex.scrobble(item["ratingKey"])
        done.append("watched")
    offset = round(float(row["position"] or 0.0) * 1000)
    if offset > 0:
        await player.plex.set_progress(item["ratingKey"], offset)
        done.append(f"offset {offset / 1000:.0f} s")
    return f"{' and '.join(done) or 'nothing to set'} on item {item['ratingKey']} ({remote})"


async def run_restore(db: Database, registry: PlayerRegistry, clock: Clock, ctx: JobContext,
                      p: RestorePayload) -> dict[str, Any]:
    """Restore every open capture of an item on the player it came from."""
    entity, item_id = p.entity, p.id
    rows = await db.read(store.open_captures, entity, item_id, clock.now())
    if not rows:
        return {"entity": entity, "id": item_id, "restored": {}, "note": "nothing captured (or expired)"}
    new_file = await db.read(media.current_file, entity, item_id)
    if new_file is None:
        raise PermanentFailure(f"{entity} {item_id} not found; cannot restore its playback state")
    final = ctx.job.attempts > ctx.job.max_retries
    restored: dict[str, str] = {}
    errors: dict[str, str] = {}
    skipped: dict[str, str] = {}
    waiting: dict[str, str] = {}
    for row in rows:
        player = registry.get(row["player"])
        error: str | None = None
        done: str | None = None
        if player is None:
            error = f"player '{row['player']}' is no longer configured"
        elif not player.is_kodi and not player.is_plex and not row.get("player_user"):
            skipped[row["player"]] = (
                f"only a live session was captured (Jellyfin did not list the old file); "
                f"captured position {float(row['position'] or 0):.0f} s"
            )
            await db.write(store.finish_capture, row["id"], clock.now(), new_file, skipped[row["player"]])
            continue
        else:
            try:
                if player.is_kodi:
                    done = await restore_kodi(player, entity, row, new_file)
                elif player.is_plex:
                    done = await restore_plex(player, entity, row, new_file)
                else:
                    done = await restore_jellyfin(player, entity, row, new_file)
            except RetryLater as exc:
                await registry.mark(player, exc)
                waiting[player.name] = exc.message
                if final:
                    error = exc.message
            except AgentError as exc:
                if isinstance(exc, PlayerError):
                    await registry.mark(player, exc)
                error = exc.message
            else:
                await registry.mark(player)
                if done is None:
                    waiting[player.name] = f"{new_file} is not in {player.name}'s library yet"
                    if final:
                        error = f"the new file {new_file} never appeared in {player.name}'s library"
        who = f"{row['player']}/{row['player_user']}" if row.get("player_user") else row["player"]
        if done is not None:
            restored[who] = done
            await db.write(store.finish_capture, row["id"], clock.now(), new_file, None)
        elif error is not None:
            errors[who] = error
            await db.write(store.finish_capture, row["id"], clock.now(), new_file, error)
    result = {
        "entity": entity,
        "id": item_id,
        "new_file": new_file,
        "restored": restored,
        "errors": errors,
        "skipped": skipped,
    }
    if waiting and not final:
        raise RetryLater(
            f"waiting for {', '.join(waiting)}: " + "; ".join(waiting.values()),
            delay=NOT_SCANNED_DELAY,
            detail=result,
        )
    if errors and not restored:
        raise PermanentFailure("; ".join(f"{n}: {e}" for n, e in errors.items()), detail=result)
    return result


def register(services: Services) -> None:
    """Register the playback_capture and playback_restore handlers."""

    async def capture(ctx: JobContext) -> dict[str, Any]:
        """Run one playback_capture job."""
        p = CapturePayload.from_payload(ctx.payload)
        await ctx.progress(0.1, f"capturing playback of {p.entity} {p.id}")
        return await run_capture(services.db, services.players, services.clock, services.emit,
                                 services.cfg.playback.expire_hours, ctx, p)

    async def restore(ctx: JobContext) -> dict[str, Any]:
        """Run one playback_restore job."""
        p = RestorePayload.from_payload(ctx.payload)
        await ctx.progress(0.1, f"restoring playback of {p.entity} {p.id}")
        return await run_restore(services.db, services.players, services.clock, ctx, p)

    services.queue.register(CAPTURE, capture)
    services.queue.register(RESTORE, restore, timeout=SCAN_WAIT + 60)
