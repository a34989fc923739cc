"""`notify_players` jobs: tell each player group about a published, changed or deleted item."""

from __future__ import annotations

import json
import logging
import os
import sqlite3
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from agent.errors import AgentError, PermanentFailure, RetryLater, UserError
from agent.players import PlayerError
from agent.players.kodi import folder_of
from agent.players.registry import Player, PlayerRegistry, players_of
from agent.queue import JobContext

if TYPE_CHECKING:
    from agent.service import Agent

log = logging.getLogger(__name__)

UPDATES: Final = ("Created", "Modified", "Deleted")
ENTITIES: Final = ("movie", "series", "episode")
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


def _item_paths(conn: sqlite3.Connection, entity: str, item_id: int) -> dict[str, Any] | None:
    """file / folder / show folder of an item from its row, or None when the row is gone."""
    if entity == "movie":
        row = conn.execute("SELECT file, path FROM movies WHERE id = ?", (item_id,)).fetchone()
        return None if row is None else {"file": row["file"], "folder": row["path"]}
    if entity == "series":
        row = conn.execute("SELECT path FROM series WHERE id = ?", (item_id,)).fetchone()
        return None if row is None else {"file": None, "folder": row["path"]}
    row = conn.execute(
        "SELECT e.file, s.path AS show FROM episodes e JOIN series s ON s.id = e.series_id WHERE e.id = ?",
        (item_id,),
    ).fetchone()
    if row is None:
        return None
    return {"file": row["file"], "folder": os.path.dirname(row["file"]), "show": row["show"]}


async def resolve_target(agent: Agent, payload: dict[str, Any]) -> Target:
    """Validate the payload and find the item's local paths (payload paths win for Deleted)."""
    entity, update = payload.get("entity"), payload.get("update") or "Modified"
    if entity not in ENTITIES:
        raise PermanentFailure(f"notify_players: unknown entity {entity!r} (use movie, series or episode)")
    if update not in UPDATES:
        raise PermanentFailure(
            f"notify_players: unknown update {update!r} (use Created, Modified or Deleted)"
        )
    try:
        item_id = int(payload.get("id") or 0)
    except (TypeError, ValueError):
        raise PermanentFailure(f"notify_players: id must be an integer, got {payload.get('id')!r}") from None
    row = await agent.db.read(_item_paths, entity, item_id) if item_id else None
    file, folder = payload.get("file"), payload.get("folder")
    if row is not None:
        file = file or row["file"]
        folder = folder or row["folder"]
    elif update != "Deleted":
        raise PermanentFailure(f"{entity} {item_id} not found; nothing to tell the players")
    if not folder and file:
        folder = os.path.dirname(file)
    if not folder:
        raise PermanentFailure(
            f"notify_players for {entity} {item_id}: no file or folder to tell the players"
        )
    return Target(entity, item_id, update, file, folder, (row or {}).get("show"))


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
    """POST /Library/Media/Updated with the item's path as Jellyfin sees it."""
    local = t.file if t.file and t.entity != "series" else t.folder
    path = player.to_player(local)
    await player.jellyfin.media_updated([(path, t.update)])
    return f"{t.update} {path}"


async def notify_player(registry: PlayerRegistry, player: Player, t: Target) -> str:
    """Tell one player, recording its connection state."""
    try:
        action = await (notify_kodi(player, t) if player.is_kodi else notify_jellyfin(player, t))
    except PlayerError as exc:
        await registry.mark(player, exc)
        raise
    await registry.mark(player)
    return action


def _save_done(conn: sqlite3.Connection, job_id: int, payload: dict[str, Any]) -> None:
    """Remember in the job's payload which groups were told, so a retry skips them."""
    conn.execute("UPDATE job_queue SET payload = ? WHERE id = ?", (json.dumps(payload), job_id))


async def run_notify(agent: Agent, ctx: JobContext) -> dict[str, Any]:
    """Tell every group once; RetryLater for the groups that were down or deferred."""
    target = await resolve_target(agent, ctx.payload)
    registry = await players_of(agent)
    done: list[str] = list(ctx.payload.get("done_groups") or [])
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
    if done != list(ctx.payload.get("done_groups") or []):
        ctx.payload["done_groups"] = done
        await agent.db.write(_save_done, ctx.job.id, ctx.payload)
    result = {
        "entity": target.entity,
        "id": target.id,
        "update": target.update,
        "groups": told,
        "failed": failed,
    }
    if retry:
        listed = "; ".join(f"{name}: {exc.message}" for name, exc in retry.items())
        delays = [exc.delay for exc in retry.values() if exc.delay is not None]
        raise RetryLater(
            f"will retry {', '.join(retry)} ({listed})", delay=min(delays) if delays else None, detail=result
        )
    if failed and not told:
        raise PermanentFailure("; ".join(f"{name}: {msg}" for name, msg in failed.items()), detail=result)
    return result


async def enqueue_notify(
    agent: Agent,
    entity: str,
    item_id: int,
    update: str,
    *,
    priority: int = 5,
    file: str | None = None,
    folder: str | None = None,
    depends_on: list[int] | None = None,
) -> Any:
    """Queue one notify_players job (deduplicated per item and update)."""
    payload: dict[str, Any] = {"entity": entity, "id": item_id, "update": update, "priority": priority}
    if file:
        payload["file"] = file
    if folder:
        payload["folder"] = folder
    return await agent.queue.enqueue(
        "notify_players",
        payload,
        priority=priority,
        depends_on=depends_on or [],
        dedupe_key=f"notify:{entity}:{item_id}:{update}",
    )


def register(agent: Agent) -> None:
    """Register the notify_players handler."""

    async def handle(ctx: JobContext) -> dict[str, Any]:
        """Run one notify_players job."""
        await ctx.progress(
            0.1, f"notifying players about {ctx.payload.get('entity')} {ctx.payload.get('id')}"
        )
        return await run_notify(agent, ctx)

    agent.queue.register("notify_players", handle)
