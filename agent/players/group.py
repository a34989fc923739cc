"""Player groups: players sharing one library database; only the first reachable member is told."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable
from typing import Generic, Protocol, TypeVar

from agent.errors import UserError
from agent.players import PlayerGroupFailed, PlayerUnreachable

log = logging.getLogger(__name__)


class NamedPlayer(Protocol):
    """Anything with a `name`: KodiClient, JellyfinClient."""

    name: str


M = TypeVar("M", bound=NamedPlayer)
T = TypeVar("T")


class PlayerGroup(Generic[M]):
    """An ordered list of players that share a database; a lone player is a group of one."""

    def __init__(self, name: str, members: list[M]) -> None:
        if not members:
            raise UserError(f"player group '{name}' has no members")
        names = [m.name for m in members]
        if len(set(names)) != len(names):
            raise UserError(f"player group '{name}' lists a player twice: {', '.join(names)}")
        self.name = name
        self.members = list(members)

    async def run(self, fn: Callable[[M], Awaitable[T]]) -> tuple[str, T]:
        """Call `fn` on the first member that is reachable; return (member name, result).

        Only PlayerUnreachable moves on to the next member; any other error (bad credentials, a
        JSON-RPC error) comes from a reachable player and is raised as is. When every member is
        unreachable, PlayerGroupFailed names each member's failure.
        """
        failures: dict[str, Exception] = {}
        for member in self.members:
            try:
                result = await fn(member)
            except PlayerUnreachable as exc:
                log.warning("group %s: %s unreachable, trying the next: %s", self.name, member.name, exc)
                failures[member.name] = exc
                continue
            return member.name, result
        raise PlayerGroupFailed(self.name, failures)


def build_groups(players: Iterable[tuple[str | None, M]]) -> list[PlayerGroup[M]]:
    """Group (group name or None, player) pairs in order; a player without a group is a group of one."""
    grouped: dict[str, list[M]] = {}
    singles: set[str] = set()
    for group, player in players:
        key = group or player.name
        if key in singles or (not group and key in grouped):
            raise UserError(f"the name '{key}' is used twice (two players, or a player and a group)")
        if not group:
            singles.add(key)
        grouped.setdefault(key, []).append(player)
    return [PlayerGroup(name, members) for name, members in grouped.items()]
