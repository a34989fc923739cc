"""`scan` jobs: validate the payload, run the library scan, report progress."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from agent.config import Config
from agent.errors import PathError, PermanentFailure, UserError
from agent.hints import Hints
from agent.library.scan import ScanParts, ScanRequest, enqueue_scan, run_scan, scan_keys
from agent.paths import resolve_inside
from agent.queue import JobContext
from agent.queue.model import Priority

__all__ = ["SOURCES", "build_request", "enqueue_scan", "register", "scan_keys", "scan_parts"]

if TYPE_CHECKING:
    from agent.services import Services

SOURCES: Final = ("user", "watcher", "webhook", "cli", "schedule")
SCAN_TIMEOUT: Final = 6 * 3600.0  # a first scan of a large NAS library can take a while
JOB_PROGRESS_EVERY: Final = 0.5  # seconds between job progress writes


def _local_path(value: Any, name: str, root: Path, library: str) -> Path:
    """An absolute path inside the library root (symlinks resolved for the check), else PermanentFailure."""
    if not isinstance(value, str) or not value:
        raise PermanentFailure(f"scan payload: {name} must be an absolute path string, got {value!r}")
    try:
        resolve_inside(value, [root])
    except PathError as exc:
        raise PermanentFailure(
            f"scan payload: {name} is not inside library {library!r}: {exc.message}"
        ) from None
    return Path(os.path.abspath(value))


def build_request(cfg: Config, payload: dict[str, Any]) -> ScanRequest:
    """Check a scan payload against the config; any problem is a PermanentFailure naming it."""
    if not isinstance(payload, dict):
        raise PermanentFailure("scan payload must be an object")
    name = payload.get("library")
    lib = cfg.library(name) if isinstance(name, str) else None
    if lib is None:
        known = ", ".join(lb.name for lb in cfg.libraries) or "none configured"
        raise PermanentFailure(f"scan payload: no library named {name!r} (libraries: {known})")
    root = Path(os.path.abspath(lib.path))
    folder = _local_path(payload["folder"], "folder", root, lib.name) if payload.get("folder") else None
    file = _local_path(payload["file"], "file", root, lib.name) if payload.get("file") else None
    if file is not None and folder is None:
        folder = file.parent
    source = payload.get("source") or "user"
    if source not in SOURCES:
        raise PermanentFailure(f"scan payload: source must be one of {', '.join(SOURCES)}, got {source!r}")
    try:
        hints = Hints.from_payload(payload.get("hints")) if payload.get("hints") is not None else None
    except UserError as exc:
        raise PermanentFailure(f"scan payload: {exc.message}") from None
    priority = payload.get("priority", Priority.NORMAL)
    if isinstance(priority, bool) or not isinstance(priority, int) or not 1 <= priority <= 100:
        raise PermanentFailure(f"scan payload: priority must be an integer 1..100, got {priority!r}")
    return ScanRequest(
        library=lib.name,
        kind=lib.kind,
        root=root,
        folder=folder,
        file=file,
        hints=hints,
        source=source,
        priority=priority,
        upgrade=bool(payload.get("upgrade")),
    )


def scan_parts(services: Services) -> ScanParts:
    """The parts of the agent a scan works with."""
    return ScanParts(
        db=services.db,
        queue=services.queue,
        clock=services.clock,
        warnings=services.warnings,
        emit=services.emit,
        missing_grace_days=services.cfg.watcher.missing_grace_days,
    )


def register(services: Services) -> None:
    """Register the scan handler."""
    parts = scan_parts(services)

    async def handle(ctx: JobContext) -> dict[str, Any]:
        req = build_request(services.cfg, ctx.payload)
        req.origin = ctx.job.origin or ctx.job.id
        last = 0.0

        async def progress(seen: int, total: int | None) -> None:
            nonlocal last
            if time.monotonic() - last < JOB_PROGRESS_EVERY:
                ctx.check_cancelled()
                return
            last = time.monotonic()
            fraction = min(0.99, seen / total) if total else 0.0
            await ctx.progress(fraction, f"{req.library}: {seen} seen" + (f" of {total}" if total else ""))

        await ctx.progress(0.0, f"scanning {req.library}" + (f" ({req.folder})" if req.folder else ""))
        try:
            report = await run_scan(parts, req, job_id=ctx.job.id, progress=progress)
        except PathError as exc:
            raise PermanentFailure(exc.message, detail=exc.detail) from None
        return report.to_dict()

    services.queue.register("scan", handle, timeout=SCAN_TIMEOUT)
