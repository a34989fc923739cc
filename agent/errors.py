"""Exceptions the agent raises on purpose; each maps to one HTTP status and CLI exit code."""

from __future__ import annotations

from typing import Any


class AgentError(Exception):
    """Base of every expected error; `status` is the HTTP status it maps to."""

    status = 500
    default_message = "internal error"

    def __init__(self, message: str | None = None, detail: Any = None) -> None:
        super().__init__(message or self.default_message)
        self.message = message or self.default_message
        self.detail = detail


class UserError(AgentError):
    """The caller asked for something wrong (bad config, bad id, bad body)."""

    status = 400
    default_message = "bad request"


class ConfigError(UserError):
    """The configuration file is invalid; the message names the key and line."""

    default_message = "invalid configuration"


class NotFound(UserError):
    """The requested thing does not exist."""

    status = 404
    default_message = "not found"


class Conflict(UserError):
    """The request conflicts with the current state (e.g. cancelling a running job)."""

    status = 409
    default_message = "conflict"


class PathError(UserError):
    """A path is outside every library, or no path mapping covers it."""

    default_message = "path not covered"


class RetryLater(AgentError):
    """A job should be retried after `delay` seconds (HTTP 429 Retry-After, 5xx, timeouts)."""

    def __init__(self, message: str | None = None, delay: float | None = None, detail: Any = None) -> None:
        super().__init__(message or "temporary failure, retry later", detail)
        self.delay = delay


class PermanentFailure(AgentError):
    """A job failed in a way a retry cannot fix; it goes straight to failed."""

    default_message = "permanent failure"


class JobCancelled(AgentError):
    """Raised at a checkpoint when the running job was cancelled."""

    default_message = "job cancelled"


class UnsafeUserFile(PermanentFailure):
    """A user's file was not read: not a regular file, too large, or a link leading outside the libraries."""

    default_message = "file not read"
