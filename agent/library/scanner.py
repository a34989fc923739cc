"""What a scan is asked and what it did, and the state and row writes its movie and series scans share."""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agent.library.scan_items import NfoRead, enrich_spec, in_scope, insert_jobs, read_nfo
from agent.queue.model import Priority
from agent.store import media


@dataclass
class ScanRequest:
    """A validated scan: which library, optionally one folder or file, and what the caller knows."""

    library: str
    kind: str
    root: Path
    folder: Path | None = None
    file: Path | None = None
    hints: dict[str, Any] | None = None
    source: str = "user"
    priority: int = Priority.NORMAL
    upgrade: bool = False
    library_id: int = 0
    chain: int | None = None  # the queue chain its enrich jobs join (the scan job's), None outside a job


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
        lib = self.req.library_id
        self.signatures = {
            r[0]: r[1]
            for r in conn.execute(
                "SELECT path, signature FROM folder_signatures WHERE library_id = ?", (lib,)
            )
        }
        root = str(self.req.root).rstrip(os.sep) + os.sep
        self.own = {
            r[0]: r[1]
            for r in conn.execute(
                "SELECT path, sha256 FROM published_files WHERE path >= ? AND path < ?",
                (root, root[:-1] + chr(ord(os.sep) + 1)),
            )
        }

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
        spec = enrich_spec(entity, item_id, self.req.priority, hinted, update, self.max_retries, self.req.chain)
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
            conn.execute(f"UPDATE {table} SET missing_since = ? WHERE id = ?", (self.now, row["id"]))
            return False
        return row["missing_since"] <= self.now - self.grace

    def flush_jobs(self, conn: sqlite3.Connection) -> list[int]:
        """Write this batch's signatures and enrich jobs in the same transaction as its rows; new job ids."""
        rows, self.signature_rows = self.signature_rows, []
        conn.executemany(
            "INSERT INTO folder_signatures (path, library_id, signature, scanned_at) VALUES (?, ?, ?, ?)"
            " ON CONFLICT(path) DO UPDATE SET library_id = excluded.library_id,"
            " signature = excluded.signature, scanned_at = excluded.scanned_at",
            rows,
        )
        specs, self.specs = self.specs, []
        created = [job_id for job_id, new in insert_jobs(conn, specs, self.now) if new]
        self.report.jobs.extend(created)
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
        stale = [k for k in self.signatures if k not in self.seen_keys and in_scope(k, self.scope)]
        conn.executemany("DELETE FROM folder_signatures WHERE path = ?", [(k,) for k in stale])

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
            shas = [
                r[0]
                for r in conn.execute(
                    "SELECT sha256 FROM asset_references WHERE entity_type = ? AND entity_id = ?",
                    (entity, item_id),
                )
            ]
            conn.execute(
                "DELETE FROM asset_references WHERE entity_type = ? AND entity_id = ?", (entity, item_id)
            )
            conn.execute(
                "DELETE FROM published_files WHERE entity_type = ? AND entity_id = ?", (entity, item_id)
            )
            conn.executemany(
                "UPDATE cache_assets SET unreferenced_since = ? WHERE sha256 = ?"
                " AND unreferenced_since IS NULL"
                " AND NOT EXISTS (SELECT 1 FROM asset_references r WHERE r.sha256 = cache_assets.sha256)",
                [(self.now, sha) for sha in shas],
            )
            conn.execute(f"DELETE FROM {table} WHERE id = ?", (item_id,))
            self.report.deleted += 1

    def note(self, entity: str, item_id: int, counted: str) -> None:
        """Count one item and remember its id when it was added or updated."""
        report = self.report
        setattr(report, counted, getattr(report, counted) + 1)
        if counted != "unchanged" or self.forced:
            (report.movies if entity == "movie" else report.series if entity == "series" else report.episodes).append(
                item_id
            )


def dict_rows(conn: sqlite3.Connection, sql: str, params: tuple[Any, ...]) -> Iterator[dict[str, Any]]:
    """Rows of a query as plain dicts (cheaper than dict(sqlite3.Row) when loading a whole library)."""
    cur = conn.cursor()
    cur.row_factory = None
    cur.execute(sql, params)
    names = [d[0] for d in cur.description]
    for row in cur:
        yield dict(zip(names, row, strict=True))


def finish_library(conn: sqlite3.Connection, library_id: int, now: float, job_id: int | None) -> None:
    """Record when the library was last scanned and by which job."""
    conn.execute(
        "UPDATE libraries SET last_scan_at = ?, last_scan_job_id = COALESCE(?, last_scan_job_id)"
        " WHERE id = ?",
        (now, job_id, library_id),
    )
