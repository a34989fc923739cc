"""Player clients (Kodi, Jellyfin) and the errors every client raises.

The clients live in `kodi.py`, `kodi_events.py`, `jellyfin.py` and `group.py`; this module only holds
the shared exceptions so each client can import them without a cycle.
"""

from __future__ import annotations

from typing import Any

from agent.errors import AgentError, PermanentFailure, RetryLater

# How long a job should wait before retrying a player that could not be reached.
UNREACHABLE_RETRY_DELAY = 30.0


class PlayerError(AgentError):
    """A media player answered badly or not at all; `player` names it."""

    status = 502
    default_message = "media player error"
    player: str = ""


class PlayerUnreachable(PlayerError, RetryLater):
    """The player could not be reached (refused, timed out, 5xx): try the next group member or later."""

    default_message = "media player unreachable"

    def __init__(self, player: str, message: str, delay: float | None = UNREACHABLE_RETRY_DELAY) -> None:
        super().__init__(f"player '{player}': {message}", delay=delay)
        self.player = player


class PlayerTimeout(PlayerError, RetryLater):
    """The player did not finish something (a scan) within the time we allowed."""

    default_message = "media player timed out"

    def __init__(self, player: str, message: str, delay: float | None = UNREACHABLE_RETRY_DELAY) -> None:
        super().__init__(f"player '{player}': {message}", delay=delay)
        self.player = player


class PlayerAuthError(PlayerError, PermanentFailure):
    """The player rejected our credentials; only a configuration change fixes it."""

    default_message = "media player rejected the credentials"

    def __init__(self, player: str, message: str) -> None:
        super().__init__(f"player '{player}': {message}")
        self.player = player


class PlayerRequestError(PlayerError, PermanentFailure):
    """The player refused a request (wrong URL, bad answer); a retry will not help."""

    default_message = "media player refused the request"

    def __init__(self, player: str, message: str, detail: Any = None) -> None:
        super().__init__(f"player '{player}': {message}", detail=detail)
        self.player = player


class KodiError(PlayerRequestError):
    """Kodi answered a JSON-RPC call with an error object."""

    def __init__(
        self, player: str, method: str, message: str, code: int | None = None, data: Any = None
    ) -> None:
        text = f"Kodi {method} failed: {message}" + (f" (code {code})" if code is not None else "")
        super().__init__(player, text, detail=data)
        self.method = method
        self.code = code
        self.kodi_message = message


class PlayerGroupFailed(PlayerUnreachable):
    """Every member of a player group failed; `failures` maps member name to its error."""

    def __init__(self, group: str, failures: dict[str, Exception]) -> None:
        listed = "; ".join(f"{name}: {_reason(exc)}" for name, exc in failures.items())
        super().__init__(group, f"every member of the group failed ({listed})")
        self.player = group
        self.failures = failures


def _reason(exc: Exception) -> str:
    """Return an error's message without repeating the player prefix."""
    text = getattr(exc, "message", None) or str(exc) or type(exc).__name__
    return text.split(": ", 1)[1] if text.startswith("player '") and ": " in text else text


__all__ = [
    "UNREACHABLE_RETRY_DELAY",
    "KodiError",
    "PlayerAuthError",
    "PlayerError",
    "PlayerGroupFailed",
    "PlayerRequestError",
    "PlayerTimeout",
    "PlayerUnreachable",
]
