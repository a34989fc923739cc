"""Job rows, statuses, priorities and the retry decision (pure, no I/O)."""

from __future__ import annotations

import json
import random
import sqlite3
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from agent.clock import iso
from agent.errors import JobCancelled, PermanentFailure, RetryLater, UserError


class Status(StrEnum):
    """Where a job is in its life."""

    PENDING = "pending"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


TERMINAL = frozenset({Status.COMPLETED, Status.FAILED, Status.CANCELLED})


class Priority:
    """DESIGN section 8: lower runs first."""

    CRITICAL = 1  # webhooks, playback restore
    HIGH = 2  # user actions
    NORMAL = 5  # enrich, publish
    LOW = 10  # scans, cleanup, GC


BACKOFF_BASE = 10.0  # seconds before the first retry
BACKOFF_CAP = 3600.0  # never wait longer than an hour between tries


@dataclass
class Job:
    """A queued piece of work. `payload` is the caller's; everything else is the queue's state."""

    id: int
    type: str
    priority: int
    status: Status
    payload: dict[str, Any]
    result: Any = None
    error: str | None = None
    attempts: int = 0
    max_retries: int = 3
    run_after: float = 0.0
    dedupe_key: str | None = None
    lock_key: str | None = None
    progress: float = 0.0
    message: str | None = None
    worker: str | None = None
    created_at: float = 0.0
    started_at: float | None = None
    completed_at: float | None = None
    updated_at: float = 0.0
    depends_on: list[int] = field(default_factory=list)
    chain: int | None = None  # the job that started this chain (None: this job itself)
    origin: int | None = None  # the job that started this piece of work (a scan, a webhook), or None
    agent: str | None = None  # the agent that must run it (a shared store; None: any agent)

    @classmethod
    def from_row(cls, row: sqlite3.Row, depends_on: list[int] | None = None) -> Job:
        """Build a Job from a job_queue row."""
        return cls(
            id=row["id"], type=row["type"], priority=row["priority"], status=Status(row["status"]),
            payload=json.loads(row["payload"] or "{}"),
            result=json.loads(row["result"]) if row["result"] else None,
            error=row["error"], attempts=row["attempts"], max_retries=row["max_retries"],
            run_after=row["run_after"], dedupe_key=row["dedupe_key"], lock_key=row["lock_key"], chain=row["chain"],
            origin=row["origin"], agent=row["agent"],
            progress=row["progress"], message=row["message"],
            worker=row["worker"], created_at=row["created_at"], started_at=row["started_at"],
            completed_at=row["completed_at"], updated_at=row["updated_at"], depends_on=depends_on or [],
        )

    def to_dict(self) -> dict[str, Any]:
        """The API shape of a job (DESIGN section 5)."""
        waiting = self.status == Status.PENDING and self.attempts > 0
        return {
            "id": self.id, "type": self.type, "priority": self.priority, "status": self.status.value,
            "payload": self.payload, "result": self.result, "error": self.error, "attempts": self.attempts,
            "max_retries": self.max_retries, "progress": self.progress, "message": self.message,
            "depends_on": self.depends_on, "dedupe_key": self.dedupe_key, "chain": self.chain,
            "origin": self.origin, "agent": self.agent, "worker": self.worker,
            "created_at": iso(self.created_at), "started_at": iso(self.started_at),
            "completed_at": iso(self.completed_at), "next_retry_at": iso(self.run_after) if waiting else None,
        }


@dataclass
class JobSpec:
    """What a caller asks for when enqueueing; `validate` names the first bad field."""

    type: str
    payload: dict[str, Any] = field(default_factory=dict)
    priority: int = Priority.NORMAL
    max_retries: int | None = None  # None: the queue's default
    dedupe_key: str | None = None
    lock_key: str | None = None
    depends_on: list[int] = field(default_factory=list)
    delay: float = 0.0
    chain: int | None = None  # order next to this chain's jobs (JobContext.enqueue sets it for follow-ups)
    origin: int | None = None  # the scan or webhook job this work came from (JobContext.enqueue sets it)

    def validate(self) -> None:
        """Raise UserError naming the problem when a field is out of range or the wrong kind."""
        if not isinstance(self.type, str) or not self.type.strip():
            raise UserError(f"job type must be a non-empty string, got {self.type!r}")
        if not isinstance(self.payload, dict):
            raise UserError(f"job payload must be a JSON object, got {type(self.payload).__name__}")
        if isinstance(self.priority, bool) or not isinstance(self.priority, int) \
                or not 1 <= self.priority <= 100:
            raise UserError(f"priority must be an integer between 1 and 100, got {self.priority!r}")
        if self.max_retries is not None and (not isinstance(self.max_retries, int) or self.max_retries < 0):
            raise UserError(f"max_retries must be a non-negative integer, got {self.max_retries!r}")
        if not isinstance(self.delay, int | float) or not 0 <= self.delay < 10 * 365 * 86400:
            raise UserError(f"delay must be a number of seconds from 0 up to ten years, got {self.delay!r}")
        if self.chain is not None and (isinstance(self.chain, bool) or not isinstance(self.chain, int)
                                       or self.chain < 1):
            raise UserError(f"chain must be a positive job id, got {self.chain!r}")
        if self.origin is not None and (isinstance(self.origin, bool) or not isinstance(self.origin, int)
                                        or self.origin < 1):
            raise UserError(f"origin must be a positive job id, got {self.origin!r}")
        for dep in self.depends_on:
            if isinstance(dep, bool) or not isinstance(dep, int) or dep < 1:
                raise UserError(f"depends_on must list positive job ids, got {dep!r}")

    def row(self, default_retries: int) -> dict[str, Any]:
        """The insert parameters (see agent.store.jobs.insert)."""
        return {"type": self.type, "payload": self.payload, "priority": int(self.priority),
                "max_retries": default_retries if self.max_retries is None else self.max_retries,
                "dedupe_key": self.dedupe_key, "lock_key": self.lock_key, "depends_on": list(self.depends_on),
                "delay": float(self.delay), "chain": self.chain, "origin": self.origin}


@dataclass(frozen=True)
class Outcome:
    """What happened to one run of a job, decided before it is written."""

    job_id: int
    status: Status
    result: Any = None
    error: str | None = None
    run_after: float | None = None  # set when the job goes back to pending for a retry

    @property
    def will_retry(self) -> bool:
        """Whether the job goes back to pending."""
        return self.status == Status.PENDING


def backoff_delay(attempts: int, rng: random.Random | None = None) -> float:
    """Capped exponential backoff with jitter: base * 2^(n-1), capped, scaled by 0.5..1.0."""
    raw = min(BACKOFF_CAP, BACKOFF_BASE * (2 ** max(0, attempts - 1)))
    return raw * (0.5 + (rng or random).random() / 2)


def decide(job: Job, exc: BaseException | None, result: Any, now: float,
           rng: random.Random | None = None) -> Outcome:
    """The retry decision: a pure function of the job, what the handler did, and the time."""
    if exc is None:
        return Outcome(job.id, Status.COMPLETED, result=result)
    if isinstance(exc, JobCancelled):
        return Outcome(job.id, Status.CANCELLED, error="cancelled while running")
    message = describe(exc)
    if isinstance(exc, PermanentFailure) or job.attempts > job.max_retries:
        return Outcome(job.id, Status.FAILED, error=message)
    if isinstance(exc, RetryLater) and exc.delay is not None:
        delay = max(0.0, float(exc.delay))
    else:
        delay = backoff_delay(job.attempts, rng)
    return Outcome(job.id, Status.PENDING, error=message, run_after=now + delay)


def describe(exc: BaseException) -> str:
    """A one-line error message for the job row (never a traceback)."""
    if isinstance(exc, TimeoutError):
        return (str(exc).strip() or "timed out")[:2000]
    text = str(exc).strip() or exc.__class__.__name__
    if not hasattr(exc, "status"):  # not one of ours: say what kind of error it was
        text = f"{exc.__class__.__name__}: {text}"
    return text[:2000]
