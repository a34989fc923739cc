"""Which config file owns a data_dir, so a second config cannot prune the first one's libraries.

The config is the source of truth for libraries: opening the store drops libraries it does not list,
and their items with them. Two configs on one data_dir (the example and a user's copy, a typo'd
`--config`) would then delete each other's records. The rule:

- `data_dir/config-owner.json` names the config file that last opened the store;
- the owner may change its libraries freely (add, remove, rename, move);
- another config may open the store only when it keeps every library that holds items (same name,
  kind and path, or a rename of one: same kind and path); it then becomes the owner;
- otherwise opening is refused, naming both files; deleting the owner file hands the data over.

A library renamed in the config (same kind and path, new name) keeps its row, so its items stay.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import stat
from pathlib import Path
from typing import Final

from agent.config import Config
from agent.errors import UserError
from agent.fsutil import atomic_write
from agent.store import agents
from agent.store import config as store

log = logging.getLogger(__name__)

OWNER_FILE: Final = "config-owner.json"
_MAX_OWNER_BYTES: Final = 64 * 1024


def owner_file(cfg: Config) -> Path:
    """Where the owning config's path is kept."""
    return cfg.data_dir / OWNER_FILE


def config_id(cfg: Config) -> str | None:
    """The config file's absolute path (None for a config that did not come from a file)."""
    return str(cfg.path.resolve()) if cfg.path is not None else None


def read_owner(cfg: Config) -> str | None:
    """The path recorded in the owner file; None when there is none (or it is not a small regular file)."""
    try:
        fd = os.open(owner_file(cfg), os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        data = os.read(fd, _MAX_OWNER_BYTES)
    except OSError:
        return None
    finally:
        os.close(fd)
    try:
        owner = json.loads(data).get("config")
    except (ValueError, AttributeError):
        return None
    return owner if isinstance(owner, str) and owner else None


def record_owner(cfg: Config) -> None:
    """Name this config as the data_dir's owner (a failed write is logged: the store itself is fine)."""
    me = config_id(cfg)
    if me is None:
        return
    try:
        atomic_write(owner_file(cfg), json.dumps({"config": me}, indent=2).encode() + b"\n")
    except OSError as exc:
        log.warning("cannot record the config that owns %s: %s", cfg.data_dir, exc.strerror or exc)


def rename_libraries(conn: sqlite3.Connection, cfg: Config) -> None:
    """A configured library new by name but with a stored library's kind and path is that one, renamed."""
    me = cfg.store_agent
    stored = {name: (kind, path) for name, kind, path in store.libraries(conn, me)}
    names = {lib.name for lib in cfg.libraries}
    for lib in cfg.libraries:
        if lib.name in stored:
            continue
        for old, (kind, path) in stored.items():
            if old not in names and kind == lib.kind and path == str(lib.path):
                store.rename_library(conn, old, lib.name, me)
                del stored[old]
                break


def _dropped_with_items(conn: sqlite3.Connection, cfg: Config) -> list[str]:
    """Stored libraries holding items that this config would drop or point elsewhere: "Name (N items)"."""
    wanted = {(lib.name, lib.kind, str(lib.path)) for lib in cfg.libraries}
    renamed = {(lib.kind, str(lib.path)) for lib in cfg.libraries}
    names = {lib.name for lib in cfg.libraries}
    lost = []
    for name, kind, path, items in store.libraries_with_items(conn, cfg.store_agent):
        kept = (name, kind, path) in wanted or (name not in names and (kind, path) in renamed)
        if items and not kept:
            lost.append(f"{name} at {path} ({items} item{'s' if items != 1 else ''})")
    return lost


def check_owner(conn: sqlite3.Connection, cfg: Config) -> None:
    """Refuse (UserError naming both files) a config that would drop another config's libraries."""
    me = config_id(cfg)
    owner = read_owner(cfg)
    if me is None or owner is None or owner == me or not os.path.exists(owner):
        return  # no record, the owner itself, or an owner file that no longer exists
    lost = _dropped_with_items(conn, cfg)
    if lost:
        raise UserError(
            f"data_dir {cfg.data_dir} holds the libraries of {owner}, and {me} configures other ones:"
            f" opening it would drop {'; '.join(lost)}. Give {me} a data_dir of its own, or the same"
            f" libraries; to hand the data to it on purpose, delete {owner_file(cfg)} and start again"
        )


def mirror_config(conn: sqlite3.Connection, cfg: Config, now: float) -> None:
    """Make the store's libraries, players, groups and mappings the config's (one transaction).

    The config is the source of truth; another config's libraries are refused before anything changes.
    On a shared store (PostgreSQL) the libraries are this agent's only; other agents' libraries, players
    they listed, and path mappings (each agent maps its own paths, from its own config) are left alone.
    """
    me = cfg.store_agent
    check_owner(conn, cfg)
    rename_libraries(conn, cfg)
    for lib in cfg.libraries:
        store.put_library(conn, lib.name, lib.kind, str(lib.path), now, me)
    store.keep_only_libraries(conn, [lib.name for lib in cfg.libraries], me)
    if me is None:
        store.clear_mappings(conn)
        for source, scfg in cfg.sources.items():
            for i, m in enumerate(scfg.path_mappings):
                store.add_mapping(conn, "source", source, i, m.remote, m.local)
    groups = store.player_groups(conn)
    for pos, p in enumerate(cfg.players):
        group = p.group or p.name
        if group not in groups:
            groups[group] = store.add_player_group(conn, group)
        store.put_player(conn, p.name, p.type, groups[group], pos, p.url)
        if me is None:
            for i, m in enumerate(p.path_mappings):
                store.add_mapping(conn, "player", p.name, i, m.remote, m.local)
    others = agents.others_players(conn, me) if me is not None else set()
    store.keep_only_players(conn, [*(p.name for p in cfg.players), *sorted(others)])
    record_owner(cfg)
