"""Copies of the NFOs the agent last wrote (data_dir/published/ab/<sha256 of the path>.nfo), to tell hand edits
from its own: the publish keeps one per NFO it writes, the cache's GC drops those no longer published."""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

from agent.fsutil import atomic_write

log = logging.getLogger("agent.publish")


def baseline_name(nfo_path: str | Path) -> str:
    """The file name of the copy kept for `nfo_path` (under data_dir/published/<first two>/)."""
    return hashlib.sha256(str(nfo_path).encode("utf-8", "surrogateescape")).hexdigest() + ".nfo"


def baseline_path(folder: Path, nfo_path: Path) -> Path:
    """Where the copy of the NFO last written at `nfo_path` is kept under `folder` (data_dir/published)."""
    name = baseline_name(nfo_path)
    return folder / name[:2] / name


def save_baseline(folder: Path, nfo_path: Path, data: bytes) -> None:
    """Keep the bytes just published at `nfo_path` (blocking; run in a thread); a failure only costs precision."""
    path = baseline_path(folder, nfo_path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, data)
    except OSError as exc:  # hand edits then fall back to comparing with the current fields
        log.warning("cannot keep a copy of %s in %s: %s", nfo_path, path, exc.strerror or exc)


def load_baseline(folder: Path, nfo_path: Path, sha256: str) -> bytes | None:
    """The copy of what the agent last wrote at `nfo_path`, if it is intact (hashes to `sha256`); blocking."""
    try:
        data = baseline_path(folder, nfo_path).read_bytes()
    except OSError:
        return None
    return data if hashlib.sha256(data).hexdigest() == sha256 else None
