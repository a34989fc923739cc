"""What a scan is asked and what it did, and what its movie and series scans share: state, NFO reads, row writes."""

from __future__ import annotations

import hashlib
import os
import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from agent.artwork import artwork_spec
from agent.errors import UnsafeUserFile
from agent.hints import Hints
from agent.nfo import NfoResult, parse_nfo
from agent.nfo.ids import scalar_ids
from agent.nfo.model import MAX_NFO_BYTES
from agent.queue.model import Priority
from agent.store import jobs as job_rows
from agent.store import libraries, media
from agent.userfiles import open_user_file, read_user_file

PARTIAL_BYTES: Final = 64 * 1024  # a movie's partial hash covers its first and last 64 KiB


@dataclass
class NfoRead:
    """One NFO file as the scan saw it: its hash and, when it had to be read, the parse result."""

    path: str
    sha256: str | None
    result: NfoResult | None = None
    skipped: str | None = None  # "own" (the agent wrote it) or "same" (already imported)
    error: str | None = None

    @property
    def imported(self) -> dict[str, Any]:
        """Fields to import: empty when skipped or broken."""
        if self.result is None or self.error:
            return {}
        return self.result.fields


def read_nfo(
    path: str | Path | None, kind: str, own: dict[str, str], known: str | None, roots: Sequence[Path] | None = None
) -> NfoRead | None:
    """Read and parse an NFO unless it is the agent's own or the one already imported; never writes it.

    Only a regular file of at most MAX_NFO_BYTES is read, never through a link leaving `roots`.
    """
    if path is None:
        return None
    text = str(path)
    name = os.path.basename(text)
    try:
        data = read_user_file(text, roots, MAX_NFO_BYTES)
    except UnsafeUserFile as exc:
        return NfoRead(text, None, error=f"{name} {exc.detail['reason']}; not read")
    except OSError as exc:
        return NfoRead(text, None, error=f"cannot read {name}: {exc.strerror or exc}")
    sha = hashlib.sha256(data).hexdigest()
    if own.get(text) == sha:
        return NfoRead(text, sha, skipped="own")
    if known == sha:
        return NfoRead(text, sha, skipped="same")
    result = parse_nfo(data, kind)
    return NfoRead(text, sha, result, error=result.error)


def partial_hash(path: str | Path) -> str | None:
    """sha256 of a file's first and last 64 KiB: recognises a moved file without reading all of it."""
    try:
        fd = open_user_file(path)  # a FIFO or device named like a video is never opened to wait on
    except (OSError, UnsafeUserFile):
        return None
    try:
        digest = hashlib.sha256(_read(fd, PARTIAL_BYTES))
        size = os.fstat(fd).st_size
        if size > PARTIAL_BYTES:
            os.lseek(fd, max(PARTIAL_BYTES, size - PARTIAL_BYTES), os.SEEK_SET)
            digest.update(_read(fd, PARTIAL_BYTES))
    except OSError:
        return None
    finally:
        os.close(fd)
    return digest.hexdigest()


def _read(fd: int, count: int) -> bytes:
    """Up to `count` bytes from a descriptor (fewer only at the end of the file)."""
    chunks: list[bytes] = []
    while count > 0:
        chunk = os.read(fd, count)
        if not chunk:
            break
        chunks.append(chunk)
        count -= len(chunk)
    return b"".join(chunks)


def user_art(art: dict[str, Any], own: dict[str, str]) -> dict[str, Any]:
    """Artwork found beside media that the agent did not write itself."""
    out: dict[str, Any] = {}
    for kind, value in art.items():
        if isinstance(value, list):
            value = [v for v in value if v not in own]
        elif value in own:
            continue
        if value:
            out[kind] = value
    return out


def inside(path: str, scope: str) -> bool:
    """True when `path` is `scope` or lies under it."""
    return path == scope or path.startswith(scope.rstrip(os.sep) + os.sep)


def in_scope(path: str, scope: str | None) -> bool:
    """A row is in a scan's scope when its folder is inside the scanned folder (or the scan is whole).

    A folder that holds the scanned one (the library root of a loose movie file, a movie folder
    above its `Subs`) was not walked, so a folder scan never judges what it holds.
    """
    return scope is None or inside(path, scope)


def enrich_spec(
    entity: str,
    item_id: int,
    priority: int,
    hints: Hints | None,
    update: str,
    max_retries: int,
    origin: int | None = None,
) -> dict[str, Any]:
    """A queue spec for an `enrich` job, the same payload, dedupe key and chain as enqueue_enrich builds: each
    enrich job starts its item's chain, so the item's publish runs before the next item's lookup; `origin` is
    the job of the scan that found the item (the dashboard lists the scan with everything it caused)."""
    payload: dict[str, Any] = {"entity": entity, "id": item_id, "priority": priority, "update": update}
    if hints:
        payload["hints"] = hints.to_payload()
    return {
        "type": "enrich",
        "payload": payload,
        "priority": priority,
        "max_retries": max_retries,
        "dedupe_key": f"enrich:{entity}:{item_id}",
        "lock_key": None,
        "depends_on": [],
        "delay": 0.0,
        "chain": None,
        "origin": origin,
    }


@dataclass
class ScanRequest:
    """A validated scan: which library, optionally one folder or file, and what the caller knows."""

    library: str
    kind: str
    root: Path
    folder: Path | None = None
    file: Path | None = None
    hints: Hints | None = None
    source: str = "user"
    priority: int = Priority.NORMAL
    upgrade: bool = False
    library_id: int = 0
    origin: int | None = None  # the job this scan's work counts towards (the scan's own, or its webhook's)


@dataclass
class ScanReport:
    """What a scan did: ids it touched and counts of added, updated, unchanged and missing items."""

    movies: list[int] = field(default_factory=list)
    series: list[int] = field(default_factory=list)
    episodes: list[int] = field(default_factory=list)
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    missing: int = 0
    deleted: int = 0
    errors: list[str] = field(default_factory=list)
    seen: int = 0
    jobs: list[int] = field(default_factory=list)
    artwork_jobs: int = 0  # items whose missing artwork this scan asked for again

    def to_dict(self) -> dict[str, Any]:
        """The job result shape (contracts: scan)."""
        return {
            "movies": self.movies,
            "series": self.series,
            "episodes": self.episodes,
            "added": self.added,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "missing": self.missing,
            "deleted": self.deleted,
            "errors": self.errors,
            "enrich_jobs": len(self.jobs),
            "artwork_jobs": self.artwork_jobs,
        }


Fetch = Callable[[Callable[[sqlite3.Connection], Any]], Any]


def _no_fetch(read: Callable[[sqlite3.Connection], Any]) -> Any:
    """The walk thread's reader before run_scan sets one."""
    raise RuntimeError("this scanner has no database reader for its walk thread")


class Scanner:
    """State shared by the movie and series scans: request, clock, own files, follow-ups and the report."""

    entity = "movie"

    def __init__(self, req: ScanRequest, now: float, grace: float, max_retries: int) -> None:
        self.req = req
        self.now = now
        self.grace = grace
        self.max_retries = max_retries
        self.scope = os.path.abspath(req.folder) if req.folder else None
        self.report = ScanReport()
        self.own: dict[str, str] = {}
        self.signatures: dict[str, str] = {}
        self.seen_keys: set[str] = set()
        self.seen_files: set[str] = set()
        self.specs: list[dict[str, Any]] = []
        self.signature_rows: list[tuple[str, int, str, float]] = []
        self.index: dict[tuple[Any, ...], set[int]] = {}
        self.seen: set[int] = set()
        self.fetch: Fetch = _no_fetch  # runs a read from the walk thread (set by run_scan)

    def load(self, conn: sqlite3.Connection) -> int | None:
        """Read the library's rows into memory; returns how many items a full walk is expected to see."""
        raise TypeError(f"{type(self).__name__} must implement load")

    def prepare(self, cand: Any) -> Any:
        """Decide in the walk thread whether a candidate changed, reading its NFOs when it did."""
        raise TypeError(f"{type(self).__name__} must implement prepare")

    def read(self, path: str | Path | None, kind: str, known: str | None) -> NfoRead | None:
        """Read one NFO (see read_nfo; never through a link leaving the library) and report a broken one."""
        nfo = read_nfo(path, kind, self.own, known, (self.req.root,))
        if nfo is not None and nfo.error:
            self.report.errors.append(f"{nfo.path}: {nfo.error}")
        return nfo

    def weight(self, cand: Any) -> int:
        """How many items a candidate stands for in a batch."""
        return 1

    def apply(self, conn: sqlite3.Connection, batch: list[Any]) -> list[int]:
        """Write one batch of prepared candidates; returns the ids of enrich jobs it queued."""
        raise TypeError(f"{type(self).__name__} must implement apply")

    def finish(self, conn: sqlite3.Connection, job_id: int | None) -> list[int]:
        """Mark what the walk did not find as missing, delete what stayed missing too long."""
        raise TypeError(f"{type(self).__name__} must implement finish")

    def check_file(self) -> list[str]:
        """An error when the payload named a file the walk did not pick up."""
        if self.req.file is not None and str(self.req.file) not in self.seen_files:
            return [
                f"{self.req.file} was not recognised as a {self.entity} (extra, sample or unparsable name?)"
            ]
        return []

    def index_add(self, key: tuple[Any, ...], item_id: int) -> None:
        """Remember an item under a lookup key (folder, provider id, size + partial hash)."""
        if key[-1] not in (None, "", 0):
            self.index.setdefault(key, set()).add(item_id)

    def index_drop(self, key: tuple[Any, ...], item_id: int) -> None:
        """Forget an item under a lookup key."""
        ids = self.index.get(key)
        if ids is not None:
            ids.discard(item_id)

    def load_common(self, conn: sqlite3.Connection) -> None:
        """Signatures of the library and the files the agent wrote under its root."""
        self.signatures = libraries.signatures(conn, self.req.library_id)
        self.own = libraries.published_under(conn, str(self.req.root))

    def hint_ids(self) -> dict[str, Any]:
        """tmdb_id / imdb_id / tvdb_id from the webhook's hints, normalised like NFO ids."""
        ids = self.req.hints.ids if self.req.hints else {}
        return scalar_ids({k.removesuffix("_id"): str(v) for k, v in ids.items() if v not in ("", 0)})

    @property
    def forced(self) -> bool:
        """A webhook or an upgrade re-enriches every item of its folder, changed or not."""
        return self.req.upgrade or self.req.source == "webhook"

    def follow(
        self,
        entity: str,
        item_id: int,
        created: bool,
        changed: bool,
        hints: bool = False,
        forced: bool | None = None,
        after: int | None = None,
    ) -> int | None:
        """Queue enrichment for a new or changed item; returns its place in this batch's job list."""
        if not (created or changed or (self.forced if forced is None else forced)):
            return None
        update = "Created" if created and not self.req.upgrade else "Modified"
        hinted = self.req.hints if hints else None
        spec = enrich_spec(entity, item_id, self.req.priority, hinted, update, self.max_retries,
                           self.req.origin)
        if after is not None:
            spec["after"] = after
        self.specs.append(spec)
        return len(self.specs) - 1

    def nfo_columns(self, nfo: NfoRead | None, row: dict[str, Any] | None) -> dict[str, Any]:
        """nfo_path / nfo_error / nfo_hash for a row from what the scan read."""
        if nfo is None:
            return {"nfo_path": None, "nfo_error": None, "nfo_hash": None}
        if nfo.skipped == "same" and row is not None:
            return {"nfo_path": nfo.path, "nfo_hash": nfo.sha256}
        return {"nfo_path": nfo.path, "nfo_error": nfo.error, "nfo_hash": nfo.sha256}

    @staticmethod
    def nfo_news(nfo: NfoRead | None, row: dict[str, Any] | None) -> bool:
        """True when an NFO was read afresh (new or edited by someone else) or its error changed."""
        if nfo is None:
            return bool(row and row.get("nfo_hash"))
        if nfo.skipped:
            return False
        return not nfo.error or (row or {}).get("nfo_error") != nfo.error

    def mark_missing(self, conn: sqlite3.Connection, table: str, row: dict[str, Any]) -> bool:
        """Mark a row missing (first time) and say whether it stayed missing past the grace period."""
        if row["missing_since"] is None:
            row["missing_since"] = self.now
            libraries.set_missing_since(conn, table, row["id"], self.now)
            return False
        return row["missing_since"] <= self.now - self.grace

    def flush_jobs(self, conn: sqlite3.Connection) -> list[int]:
        """Write this batch's signatures and enrich jobs in the same transaction as its rows; new job ids."""
        rows, self.signature_rows = self.signature_rows, []
        libraries.save_signatures(conn, rows)
        specs, self.specs = self.specs, []
        created = [job_id for job_id, new in job_rows.insert_batch(conn, specs, self.now) if new]
        self.report.jobs.extend(created)
        return created

    def retry_artwork(self, conn: sqlite3.Connection) -> list[int]:
        """Queue the artwork step again for items in scope whose artwork is missing after its retries (the
        artwork of an unchanged item is otherwise never looked at again by a scan); new job ids."""
        found = [(entity, item_id) for entity, item_id, path in media.artwork_errors_in(conn, self.req.library_id)
                 if in_scope(path, self.scope)]
        specs = [artwork_spec(entity, item_id, self.req.priority, self.max_retries, self.req.origin)
                 for entity, item_id in found]
        created = [job_id for job_id, new in job_rows.insert_batch(conn, specs, self.now) if new]
        self.report.artwork_jobs += len(created)
        return created

    def store_signature(self, conn: sqlite3.Connection, key: str, signature: str) -> None:
        """Remember a folder's signature so the next scan can skip it (written with the batch)."""
        self.seen_keys.add(key)
        if self.signatures.get(key) == signature:
            return
        self.signatures[key] = signature
        self.signature_rows.append((key, self.req.library_id, signature, self.now))

    def forget_signatures(self, conn: sqlite3.Connection) -> None:
        """Drop signatures of folders in scope that the walk did not find."""
        libraries.forget_signatures(
            conn, [k for k in self.signatures if k not in self.seen_keys and in_scope(k, self.scope)]
        )

    def update_row(
        self,
        conn: sqlite3.Connection,
        item: media.Item,
        incoming: dict[str, Any],
        gaps: dict[str, Any],
        extra: dict[str, Any],
    ) -> tuple[bool, dict[str, Any]]:
        """Merge NFO fields (unlocked only) and id gaps into an existing row; (fields changed, changes)."""
        for name, value in gaps.items():
            if not item.fields.get(name) and name not in item.locked:
                incoming.setdefault(name, value)
        changes = media.merge(item, incoming)
        status = media.identification({**item.fields, **changes}, item.row["status"])
        extra = {k: v for k, v in extra.items() if item.row.get(k) != v}
        if changes or extra or status != item.row["status"]:
            media.save(conn, item, changes, self.now, status=status, extra_columns=extra)
        return bool(changes), changes

    def expire(self, conn: sqlite3.Connection, table: str, entity: str, ids: list[int]) -> None:
        """Delete rows missing past the grace period, with their artwork references and published files."""
        for item_id in ids:
            libraries.expire(conn, table, entity, item_id, self.now)
            self.report.deleted += 1

    def note(self, entity: str, item_id: int, counted: str) -> None:
        """Count one item and remember its id when it was added or updated."""
        report = self.report
        setattr(report, counted, getattr(report, counted) + 1)
        if counted != "unchanged" or self.forced:
            (report.movies if entity == "movie" else report.series if entity == "series" else report.episodes).append(
                item_id
            )

