"""media_probes: what ffprobe said about a media file, valid while the file's signature is unchanged."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class FileSignature:
    """What tells one version of a file from the next: a replaced or rewritten file changes one of these."""

    size: int
    mtime_ns: int
    inode: int


@dataclass(frozen=True)
class CachedProbe:
    """One cached answer: Kodi's streamdetails, or why there are none."""

    streamdetails: dict[str, Any] | None
    error: str | None


def cached(conn: sqlite3.Connection, file: str, sig: FileSignature) -> CachedProbe | None:
    """The cached answer for `file` when it was probed with this very signature, else None."""
    row = conn.execute(
        "SELECT streamdetails, error FROM media_probes WHERE file = ? AND size = ? AND mtime_ns = ? AND inode = ?",
        (file, sig.size, sig.mtime_ns, sig.inode),
    ).fetchone()
    if row is None:
        return None
    details = json.loads(row["streamdetails"]) if row["streamdetails"] else None
    return CachedProbe(details, row["error"])


def probed_before(conn: sqlite3.Connection, file: str) -> bool:
    """Whether some version of `file` was probed before (asked when its current one has no answer)."""
    return conn.execute("SELECT 1 FROM media_probes WHERE file = ?", (file,)).fetchone() is not None


def save(conn: sqlite3.Connection, file: str, sig: FileSignature, streamdetails: dict[str, Any] | None,
         error: str | None, now: float) -> None:
    """Remember what ffprobe said about this version of `file` (replacing what it said about an older one)."""
    conn.execute(
        "INSERT INTO media_probes (file, size, mtime_ns, inode, streamdetails, error, probed_at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT(file) DO UPDATE SET size = excluded.size, "
        "mtime_ns = excluded.mtime_ns, inode = excluded.inode, streamdetails = excluded.streamdetails, "
        "error = excluded.error, probed_at = excluded.probed_at",
        (file, sig.size, sig.mtime_ns, sig.inode,
         json.dumps(streamdetails, sort_keys=True) if streamdetails else None, error, now),
    )


def prune(conn: sqlite3.Connection) -> int:
    """Forget probes of files no movie or episode holds any more; returns how many."""
    cur = conn.execute(
        "DELETE FROM media_probes WHERE file NOT IN (SELECT file FROM movies) "
        "AND file NOT IN (SELECT file FROM episodes)"
    )
    return cur.rowcount
