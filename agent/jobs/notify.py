"""`notify_players` jobs: tell each player group about a published, changed or deleted item."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Any, Final

from agent.errors import AgentError, PermanentFailure, RetryLater, UserError
from agent.players import PlayerError
from agent.players.jobs import NOTIFY, NotifyPayload
from agent.players.kodi import folder_of
from agent.players.registry import Player, PlayerRegistry
from agent.queue import JobContext
from agent.services import Services
from agent.store import Database, media
from agent.store import jobs as jobs_store

log = logging.getLogger(__name__)

DEFER_DELAY: Final = 60.0  # seconds a `defer_while_playing` Kodi is left alone while it plays


@dataclass(frozen=True)
class Target:
    """What to tell players about, in OUR (local) paths."""

    entity: str
    id: int
    update: str
    file: str | None  # the video file (movies, episodes)
    folder: str  # the item's own folder: movie folder, series folder, the episode file's folder
    show_folder: str | None = None  # episodes: the series folder


async def resolve_target(db: Database, p: NotifyPayload) -> Target:
    """The item's local paths from its row (payload paths win, and stand in for a Deleted item's gone row)."""
    row = await db.read(media.item_paths, p.entity, p.id) if p.id else None
    file, folder = p.file, p.folder
    if row is not None:
        file = file or row["file"]
        folder = folder or row.get("folder") or os.path.dirname(row["file"])
    elif p.update != "Deleted":
        raise PermanentFailure(f"{p.entity} {p.id} not found; nothing to tell the players")
    if not folder and file:
        folder = os.path.dirname(file)
    if not folder:
        raise PermanentFailure(f"notify_players for {p.entity} {p.id}: no file or folder to tell the players")
    return Target(p.entity, p.id, p.update, file, folder, (row or {}).get("show"))


async def notify_kodi(player: Player, t: Target) -> str:
    """Refresh a known item, scan the item's folder for an unknown one, clean the folder for Deleted."""
    kodi = player.kodi
    if player.cfg.defer_while_playing:
        active = await kodi.active_video_player()
        if active is not None:
            raise RetryLater(
                f"player '{player.name}' is playing {active['file'] or 'something'}; "
                f"notifying it later (defer_while_playing)",
                delay=DEFER_DELAY,
            )
    folder = player.to_player(t.folder)
    if t.update == "Deleted":
        await kodi.clean(folder)
        return f"cleaned {folder}"
    if t.entity == "series":
        return f"{await kodi.publish_item('tvshow', None, folder)} {folder}"
    if not t.file:
        raise UserError(f"{t.entity} {t.id} has no file to tell Kodi about")
    file = player.to_player(t.file)
    if t.entity == "movie":
        action = await kodi.publish_item("movie", file, folder)
        return f"{action} {file if action == 'refreshed' else folder}"
    episode = await kodi.find_episode_by_path(file)
    if episode is not None:
        await kodi.refresh_episode(episode["episodeid"])
        return f"refreshed {file}"
    show_folder = player.to_player(t.show_folder) if t.show_folder else folder_of(file)
    scan = folder_of(file) if await kodi.find_tvshow_by_path(show_folder) is not None else show_folder
    await kodi.scan(scan)
    return f"scanned {scan}"


async def notify_jellyfin(player: Player, t: Target) -> str:
    """A known item gets a per-item full refresh (it re-reads the NFO and local art); an item Jellyfin does
    not know yet, or a deleted one, is reported by path (/Library/Media/Updated). Never a library scan."""
    local = t.file if t.file and t.entity != "series" else t.folder
    path = player.to_player(local)
    jellyfin = player.jellyfin
    if t.update != "Deleted":
        item = await jellyfin.find_item(t.entity, path)
        if item is not None:
            await jellyfin.refresh_item(item["Id"])
            return f"refreshed {path} (item {item['Id']})"
    await jellyfin.media_updated([(path, t.update)])
    return f"{t.update} {path}"


async def notify_plex(player: Player, t: Target) -> str:
    """A partial scan of the item's own folder in the section that holds it (Plex re-reads the NFO with its
    NFO agent and the local artwork); a deleted file's folder is scanned the same way. Never a library scan."""
    local = t.folder if t.entity == "series" or not t.file else os.path.dirname(t.file)
    folder = player.to_player(local)
    section = await player.plex.scan_folder(folder)
    return f"scanned {folder} (section {section})"


async def notify_player(registry: PlayerRegistry, player: Player, t: Target) -> str:
    """Tell one player, recording its connection state."""
    try:
        if player.is_kodi:
            action = await notify_kodi(player, t)
        elif player.is_plex:
            action = await notify_plex(player, t)
        else:
            action = await notify_jellyfin(player, t)
    except PlayerError as exc:
        await registry.mark(player, exc)
        raise
    await registry.mark(player)
    return action


async def drop_textures(registry: PlayerRegistry, art: tuple[str, ...]) -> dict[str, Any]:
    """Drop the cached thumbnails of new or removed artwork on EVERY Kodi, group members included: each
    client keeps its own Textures13.db even when the library database is shared. Best effort per player."""
    report: dict[str, Any] = {}
    for player in registry.kodis():
        try:
            dropped = await player.kodi.drop_textures([player.to_player(path) for path in art])
        except AgentError as exc:
            if isinstance(exc, PlayerError):
                await registry.mark(player, exc)
            report[player.name] = {"error": exc.message}
            log.warning("textures on %s: %s", player.name, exc.message)
            continue
        report[player.name] = {"dropped": dropped}
    return report


async def run_notify(db: Database, registry: PlayerRegistry, ctx: JobContext, p: NotifyPayload) -> dict[str, Any]:
    """Tell every group once; RetryLater for the groups that were down or deferred."""
    target = await resolve_target(db, p)
    done: list[str] = list(p.done_groups)
    told: dict[str, Any] = {}
    failed: dict[str, str] = {}
    retry: dict[str, RetryLater] = {}
    for group in registry.groups:
        if group.name in done:
            told[group.name] = "told on an earlier attempt"
            continue
        try:
            member, action = await group.run(lambda p: notify_player(registry, p, target))
        except RetryLater as exc:  # every member down (PlayerGroupFailed) or deferred while playing
            retry[group.name] = exc
        except AgentError as exc:
            failed[group.name] = exc.message
            log.warning(
                "notify %s %s: group %s failed: %s", target.entity, target.id, group.name, exc.message
            )
        else:
            told[group.name] = {"player": member, "action": action}
            done.append(group.name)
    textures = await drop_textures(registry, p.art) if p.art else {}
    if done != list(p.done_groups):
        # Remember which groups were told, so a retry skips them.
        ctx.payload["done_groups"] = done
        await db.write(jobs_store.set_payload, ctx.job.id, ctx.payload)
    result = {
        "entity": target.entity,
        "id": target.id,
        "update": target.update,
        "groups": told,
        "failed": failed,
    }
    if textures:
        result["textures"] = textures
    if retry:
        listed = "; ".join(f"{name}: {exc.message}" for name, exc in retry.items())
        delays = [exc.delay for exc in retry.values() if exc.delay is not None]
        raise RetryLater(
            f"will retry {', '.join(retry)} ({listed})", delay=min(delays) if delays else None, detail=result
        )
    if failed and not told:
        raise PermanentFailure("; ".join(f"{name}: {msg}" for name, msg in failed.items()), detail=result)
    return result


def register(services: Services) -> None:
    """Register the notify_players handler."""

    async def handle(ctx: JobContext) -> dict[str, Any]:
        """Run one notify_players job."""
        p = NotifyPayload.from_payload(ctx.payload)
        await ctx.progress(0.1, f"notifying players about {p.entity} {p.id}")
        return await run_notify(services.db, services.players, ctx, p)

    services.queue.register(NOTIFY, handle)
