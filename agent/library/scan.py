"""The scan: discovered movies and shows become rows, written in batches, unchanged folders skipped."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
import sqlite3
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from agent.jobs.model import Priority
from agent.library.discover import MovieCandidate, SeriesCandidate, discover_movies, discover_series
from agent.nfo import NfoResult, parse_nfo
from agent.nfo.ids import scalar_ids
from agent.nfo.model import MAX_NFO_BYTES
from agent.store import jobs as jobs_sql
from agent.store import media

if TYPE_CHECKING:
    from agent.service import Agent

log = logging.getLogger(__name__)

BATCH: Final = 250  # items per database write
PARTIAL_BYTES: Final = 64 * 1024  # a movie's partial hash covers its first and last 64 KiB
PROGRESS_EVERY: Final = 0.1  # seconds between scan:progress events
NFO_IDENTITY: Final = frozenset({"season", "episode", "episode_end"})  # an episode's file name decides these

Progress = Callable[[int, int | None], Awaitable[None]]


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


def read_nfo(path: Path | None, kind: str, own: dict[str, str], known: str | None) -> NfoRead | None:
    """Read and parse an NFO unless it is the agent's own or the one already imported; never writes it."""
    if path is None:
        return None
    text = str(path)
    try:
        if os.stat(path).st_size > MAX_NFO_BYTES:
            return NfoRead(text, None, error=f"{path.name} is larger than {MAX_NFO_BYTES // 1048576} MiB")
        data = path.read_bytes()
    except OSError as exc:
        return NfoRead(text, None, error=f"cannot read {path.name}: {exc.strerror or exc}")
    sha = hashlib.sha256(data).hexdigest()
    if own.get(text) == sha:
        return NfoRead(text, sha, skipped="own")
    if known == sha:
        return NfoRead(text, sha, skipped="same")
    result = parse_nfo(data, kind)
    return NfoRead(text, sha, result, error=result.error)


def partial_hash(path: Path) -> str | None:
    """sha256 of a file's first and last 64 KiB: recognises a moved file without reading all of it."""
    try:
        with open(path, "rb") as fh:
            digest = hashlib.sha256(fh.read(PARTIAL_BYTES))
            size = os.fstat(fh.fileno()).st_size
            if size > PARTIAL_BYTES:
                fh.seek(max(PARTIAL_BYTES, size - PARTIAL_BYTES))
                digest.update(fh.read(PARTIAL_BYTES))
    except OSError:
        return None
    return digest.hexdigest()


def hint_ids(hints: dict[str, Any] | None) -> dict[str, Any]:
    """tmdb_id / imdb_id / tvdb_id from webhook hints, normalised like NFO ids."""
    ids = (hints or {}).get("ids") or {}
    if not isinstance(ids, dict):
        return {}
    raw = {
        k.removesuffix("_id"): str(v) for k, v in ids.items() if v not in (None, "", 0) and isinstance(k, str)
    }
    return scalar_ids(raw)


def split_fields(entity: str, fields: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Editable fields split into table columns and the `details` JSON."""
    columns = set(media.COLUMNS) | (set(media.EPISODE_COLUMNS) if entity == "episode" else set())
    allowed = set(media.editable_fields(entity))
    cols: dict[str, Any] = {}
    details: dict[str, Any] = {}
    for name, value in fields.items():
        if name not in allowed or value in (None, "", [], {}):
            continue
        (cols if name in columns else details)[name] = value
    return cols, details


def insert_item(
    conn: sqlite3.Connection, entity: str, fields: dict[str, Any], extra: dict[str, Any], now: float
) -> int:
    """Insert a new movie, series or episode row from field-model values; returns its id."""
    cols, details = split_fields(entity, fields)
    row = {
        **cols,
        **extra,
        "details": json.dumps(details, sort_keys=True),
        "status": media.identification(fields),
        "created_at": now,
        "updated_at": now,
    }
    names = ", ".join(row)
    marks = ", ".join("?" * len(row))
    cur = conn.execute(f"INSERT INTO {media.TABLES[entity]} ({names}) VALUES ({marks})", list(row.values()))
    return int(cur.lastrowid or 0)


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
    """A row is in a scan's scope when its folder is inside the scanned folder or holds it."""
    return scope is None or inside(path, scope) or inside(scope, path)


def enrich_spec(
    entity: str,
    item_id: int,
    priority: int,
    hints: dict[str, Any] | None,
    update: str,
    max_retries: int,
    depends_on: list[int] | None = None,
) -> dict[str, Any]:
    """A queue spec for an `enrich` job, the same payload and dedupe key as enqueue_enrich builds."""
    payload: dict[str, Any] = {"entity": entity, "id": item_id, "priority": priority, "update": update}
    if hints:
        payload["hints"] = hints
    return {
        "type": "enrich",
        "payload": payload,
        "priority": priority,
        "max_retries": max_retries,
        "dedupe_key": f"enrich:{entity}:{item_id}",
        "lock_key": None,
        "depends_on": depends_on or [],
        "delay": 0.0,
    }


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
        self.index: dict[tuple[Any, ...], set[int]] = {}
        self.seen: set[int] = set()

    def load(self, conn: sqlite3.Connection) -> int | None:
        """Read the library's rows into memory; returns how many items a full walk is expected to see."""
        raise TypeError(f"{type(self).__name__} must implement load")

    def prepare(self, cand: Any) -> Any:
        """Decide in the walk thread whether a candidate changed, reading its NFOs when it did."""
        raise TypeError(f"{type(self).__name__} must implement prepare")

    def read(self, path: Path | None, kind: str, known: str | None) -> NfoRead | None:
        """Read one NFO (see read_nfo) and report a broken one in the scan's errors."""
        nfo = read_nfo(path, kind, self.own, known)
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
        spec = enrich_spec(
            entity, item_id, self.req.priority, self.req.hints if hints else None, update, self.max_retries
        )
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
        """Insert this batch's enrich jobs in the same transaction as its rows; returns new job ids."""
        specs, self.specs = self.specs, []
        created: list[int] = []
        placed: list[int] = []
        for spec in specs:
            after = spec.pop("after", None)
            if after is not None:
                spec["depends_on"] = [placed[after]]
            job, new = jobs_sql.insert(conn, spec, self.now)
            placed.append(job.id)
            if new:
                created.append(job.id)
        self.report.jobs.extend(created)
        return created

    def store_signature(self, conn: sqlite3.Connection, key: str, signature: str) -> None:
        """Remember a folder's signature so the next scan can skip it."""
        self.seen_keys.add(key)
        if self.signatures.get(key) == signature:
            return
        self.signatures[key] = signature
        conn.execute(
            "INSERT INTO folder_signatures (path, library_id, signature, scanned_at) VALUES (?, ?, ?, ?)"
            " ON CONFLICT(path) DO UPDATE SET library_id = excluded.library_id,"
            " signature = excluded.signature, scanned_at = excluded.scanned_at",
            (key, self.req.library_id, signature, self.now),
        )

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
        setattr(self.report, counted, getattr(self.report, counted) + 1)
        if counted != "unchanged" or self.req.source == "webhook" or self.req.upgrade:
            {"movie": self.report.movies, "series": self.report.series, "episode": self.report.episodes}[
                entity
            ].append(item_id)


def walk_batches(
    candidates: Iterator[Any], prepare: Callable[[Any], Any], size: int, weight: Callable[[Any], int]
) -> list[Any]:
    """Take candidates until a batch of `size` items is full, preparing each (runs in a worker thread)."""
    batch: list[Any] = []
    total = 0
    for cand in candidates:
        batch.append(prepare(cand))
        total += weight(cand)
        if total >= size:
            break
    return batch


async def run_scan(
    agent: Agent, req: ScanRequest, job_id: int | None = None, progress: Progress | None = None
) -> ScanReport:
    """Scan one library (or one folder of it): walk in a thread, write rows and enrich jobs in batches."""
    now = agent.clock.now()
    grace = agent.cfg.watcher.missing_grace_days * 86400
    req.library_id = await agent.db.write(_library_id, req)
    scanner: Scanner
    if req.kind == "movies":
        scanner = MovieScanner(req, now, grace, agent.queue.max_retries)
        candidates: Iterator[Any] = discover_movies(req.root, req.folder)
    else:
        scanner = SeriesScanner(req, now, grace, agent.queue.max_retries)
        candidates = discover_series(req.root, req.folder)
    total = await agent.db.read(scanner.load)
    last = 0.0
    while True:
        batch = await asyncio.to_thread(walk_batches, candidates, scanner.prepare, BATCH, scanner.weight)
        if not batch:
            break
        created = await agent.db.write(scanner.apply, batch)
        _announce(agent, created)
        scanner.report.seen += len(batch)
        if time.monotonic() - last >= PROGRESS_EVERY:
            last = time.monotonic()
            await _progress(agent, req, scanner.report.seen, total, progress)
    created = await agent.db.write(scanner.finish, job_id)
    _announce(agent, created)
    report = scanner.report
    report.errors.extend(scanner.check_file())
    await _progress(agent, req, report.seen, max(total or 0, report.seen), progress)
    if req.folder is not None or report.added + report.updated < 50:
        for entity, ids in (
            ("movie", report.movies),
            ("series", report.series),
            ("episode", report.episodes),
        ):
            for item_id in ids:
                agent.emit(f"{entity}:updated", {"id": item_id})
    return report


async def _progress(
    agent: Agent, req: ScanRequest, seen: int, total: int | None, progress: Progress | None
) -> None:
    """Emit scan:progress and pass the figures to the job's progress reporter."""
    data: dict[str, Any] = {"library": req.library, "seen": seen}
    if total and total >= seen:
        data["total"] = total
    agent.emit("scan:progress", data)
    if progress is not None:
        await progress(seen, data.get("total"))


def _announce(agent: Agent, job_ids: list[int]) -> None:
    """Tell /ws about enrich jobs a batch queued."""
    for job_id in job_ids:
        agent.queue.emit("job:queued", {"job_id": job_id, "type": "enrich"})


def _library_id(conn: sqlite3.Connection, req: ScanRequest) -> int:
    """The library's row id (created when the config sync has not run, e.g. a fresh CLI database)."""
    row = conn.execute("SELECT id FROM libraries WHERE name = ?", (req.library,)).fetchone()
    if row is not None:
        return int(row[0])
    cur = conn.execute(
        "INSERT INTO libraries (name, kind, path, created_at) VALUES (?, ?, ?, ?)",
        (req.library, req.kind, str(req.root), time.time()),
    )
    return int(cur.lastrowid or 0)


def finish_library(conn: sqlite3.Connection, library_id: int, now: float, job_id: int | None) -> None:
    """Record when the library was last scanned and by which job."""
    conn.execute(
        "UPDATE libraries SET last_scan_at = ?, last_scan_job_id = COALESCE(?, last_scan_job_id)"
        " WHERE id = ?",
        (now, job_id, library_id),
    )


def movie_candidate_key(cand: MovieCandidate) -> str:
    """A movie's signature key: its folder, or its file when the folder holds several movies."""
    return str(cand.file if cand.shared_folder else cand.folder)


def series_candidate_key(cand: SeriesCandidate) -> str:
    """A show's signature key: its folder."""
    return str(cand.folder)


# ---------------------------------------------------------------- movies


@dataclass
class MoviePrep:
    """A movie candidate after the walk thread looked at it."""

    cand: MovieCandidate
    key: str
    unchanged: bool
    nfo: NfoRead | None = None
    file_hash: str | None = None


_MOVIE_STATE = (
    "id, path, file, tmdb_id, imdb_id, file_size, file_hash, nfo_hash, nfo_error, missing_since,"
    " artwork_found"
)


class MovieScanner(Scanner):
    """Movie candidates -> movie rows, keeping a row through upgrades and moves."""

    entity = "movie"

    def load(self, conn: sqlite3.Connection) -> int | None:
        """Read the library's movie rows and their lookup keys."""
        self.load_common(conn)
        self.rows: dict[int, dict[str, Any]] = {}
        self.by_file: dict[str, int] = {}
        for r in conn.execute(
            f"SELECT {_MOVIE_STATE} FROM movies WHERE library_id = ?", (self.req.library_id,)
        ):
            self._remember(dict(r))
        present = [
            r for r in self.rows.values() if r["missing_since"] is None and in_scope(r["path"], self.scope)
        ]
        return len(present) or None

    def _keys(self, row: dict[str, Any]) -> list[tuple[Any, ...]]:
        """The lookup keys of a movie row."""
        size = row.get("file_size") or 0
        return [
            ("path", row["path"]),
            ("tmdb", row.get("tmdb_id")),
            ("imdb", row.get("imdb_id")),
            ("hash", size, row.get("file_hash") if size > 0 else None),
        ]

    def _remember(self, row: dict[str, Any]) -> None:
        """Add a row to the in-memory state."""
        self.rows[row["id"]] = row
        self.by_file[row["file"]] = row["id"]
        for key in self._keys(row):
            self.index_add(key, row["id"])

    def _forget(self, row: dict[str, Any]) -> None:
        """Remove a row's lookup keys before they change."""
        if self.by_file.get(row["file"]) == row["id"]:
            del self.by_file[row["file"]]
        for key in self._keys(row):
            self.index_drop(key, row["id"])

    def prepare(self, cand: MovieCandidate) -> MoviePrep:
        """Unchanged folder: nothing read. Otherwise read the NFO and hash the file if it is new."""
        key = movie_candidate_key(cand)
        row = self.rows.get(self.by_file.get(str(cand.file), 0))
        if row is not None and row["missing_since"] is None and self.signatures.get(key) == cand.signature:
            return MoviePrep(cand, key, True)
        nfo = self.read(cand.nfo, "movie", row["nfo_hash"] if row else None)
        if row is not None and row["file_size"] == cand.size and row["file_hash"]:
            file_hash = row["file_hash"]
        else:
            file_hash = partial_hash(cand.file)
        return MoviePrep(cand, key, False, nfo, file_hash)

    def _hinted(self, cand: MovieCandidate) -> bool:
        """Webhook hints describe this movie: the folder's only movie, or the one holding the named file."""
        if not self.req.hints or self.scope is None:
            return False
        if self.req.file is not None:
            return self.req.file in cand.parts or self.req.file == cand.file
        return not cand.shared_folder

    def _gone(self, item_id: int) -> bool:
        """A row this scan has not seen whose file is no longer on disk."""
        return item_id not in self.seen and not os.path.exists(self.rows[item_id]["file"])

    def _reuse(self, cand: MovieCandidate, prep: MoviePrep, ids: dict[str, Any]) -> int | None:
        """The existing row a new file continues: an upgrade in the same folder, or a moved movie."""
        keys: list[tuple[Any, ...]] = []
        if not cand.shared_folder:
            keys.append(("path", str(cand.folder)))
        keys += [("tmdb", ids.get("tmdb_id")), ("imdb", ids.get("imdb_id"))]
        if cand.size > 0 and prep.file_hash:
            keys.append(("hash", cand.size, prep.file_hash))
        for key in keys:
            for item_id in sorted(self.index.get(key, ())):
                if self._gone(item_id):
                    return item_id
        return None

    def apply(self, conn: sqlite3.Connection, batch: list[MoviePrep]) -> list[int]:
        """Write one batch of movies and their enrich jobs."""
        for prep in batch:
            self._apply_one(conn, prep)
        return self.flush_jobs(conn)

    def _apply_one(self, conn: sqlite3.Connection, prep: MoviePrep) -> None:
        """Insert, update, upgrade or move one movie row."""
        cand = prep.cand
        file = str(cand.file)
        self.seen_files.update(str(p) for p in cand.parts)
        hinted = self._hinted(cand)
        item_id = self.by_file.get(file)
        if prep.unchanged and item_id is not None:
            self.seen.add(item_id)
            self.store_signature(conn, prep.key, cand.signature)
            self.note("movie", item_id, "unchanged")
            self.follow("movie", item_id, False, False, hints=hinted)
            return
        ids = scalar_ids(cand.ids)
        if hinted:
            ids.update(hint_ids(self.req.hints))
        nfo_fields = dict(prep.nfo.imported) if prep.nfo else {}
        if item_id is None:
            item_id = self._reuse(cand, prep, {**ids, **scalar_ids(nfo_fields.get("uniqueids") or {})})
        art: dict[str, Any] = {k: str(v) for k, v in cand.artwork.items()}
        if cand.extrafanart:
            art["extrafanart"] = [str(p) for p in cand.extrafanart]
        row = self.rows.get(item_id) if item_id is not None else None
        extra = {
            "path": str(cand.folder),
            "file": file,
            "file_size": cand.size,
            "file_hash": prep.file_hash,
            "artwork_found": json.dumps(art, sort_keys=True),
            "missing_since": None,
            **self.nfo_columns(prep.nfo, row),
        }
        if row is None:
            fields = {"title": cand.title, "year": cand.year, **ids, **nfo_fields}
            item_id = insert_item(
                conn, "movie", fields, {"library_id": self.req.library_id, **extra}, self.now
            )
            self._remember(
                {
                    "id": item_id,
                    **extra,
                    **split_fields("movie", fields)[0],
                    "nfo_hash": extra.get("nfo_hash"),
                    "nfo_error": extra.get("nfo_error"),
                }
            )
            self.seen.add(item_id)
            self.note("movie", item_id, "added")
            self.follow("movie", item_id, True, True, hints=hinted)
        else:
            item = media.load(conn, "movie", row["id"])
            changed, _ = self.update_row(conn, item, nfo_fields, ids, extra)
            old_art = user_art(json.loads(row["artwork_found"] or "{}"), self.own)
            meaningful = (
                changed
                or row["file"] != file
                or row["file_size"] != cand.size
                or self.nfo_news(prep.nfo, row)
                or old_art != user_art(art, self.own)
            )
            self._forget(row)
            fresh = media.load(conn, "movie", row["id"]).row
            self._remember({k: fresh[k] for k in _MOVIE_STATE.split(", ")})
            self.seen.add(row["id"])
            self.note("movie", row["id"], "updated" if meaningful else "unchanged")
            self.follow("movie", row["id"], False, meaningful, hints=hinted)
        self.store_signature(conn, prep.key, cand.signature)

    def finish(self, conn: sqlite3.Connection, job_id: int | None) -> list[int]:
        """Rows in scope the walk did not see become missing; long-missing ones are deleted."""
        expired: list[int] = []
        for row in list(self.rows.values()):
            if row["id"] in self.seen or not in_scope(row["path"], self.scope):
                continue
            if self.mark_missing(conn, "movies", row):
                expired.append(row["id"])
            else:
                self.report.missing += 1
        self.expire(conn, "movies", "movie", expired)
        self.forget_signatures(conn)
        finish_library(conn, self.req.library_id, self.now, job_id)
        return self.flush_jobs(conn)


# ---------------------------------------------------------------- series


@dataclass
class SeriesPrep:
    """A show candidate after the walk thread looked at it."""

    cand: SeriesCandidate
    key: str
    unchanged: bool
    nfo: NfoRead | None = None
    episode_nfos: dict[str, NfoRead | None] = field(default_factory=dict)


_SERIES_STATE = "id, path, tmdb_id, imdb_id, tvdb_id, nfo_hash, nfo_error, missing_since, artwork_found"
_EPISODE_STATE = (
    "e.id, e.series_id, e.file, e.season, e.episode, e.nfo_hash, e.nfo_error, e.file_size,"
    " e.missing_since, e.artwork_found"
)


def episode_fields(
    nfo: NfoRead | None, season: int | None, number: int | None, position: int, count: int
) -> dict[str, Any]:
    """The NFO fields for one episode of a (possibly multi-episode) file."""
    if nfo is None or nfo.result is None or nfo.error:
        return {}
    roots = nfo.result.episodes or [nfo.result.fields]
    for fields in roots:
        if number is not None and fields.get("episode") == number and fields.get("season", season) == season:
            return fields
    if any(fields.get("episode") is not None for fields in roots) and count > 1:
        return {}  # numbered roots that do not name this episode belong to other episodes
    if len(roots) == count:
        return roots[position]
    return roots[0] if count == 1 else {}


class SeriesScanner(Scanner):
    """Show candidates -> series, season and episode rows (one row per episode of a multi-episode file)."""

    entity = "episode"

    def load(self, conn: sqlite3.Connection) -> int | None:
        """Read the library's series and episode rows and their lookup keys."""
        self.load_common(conn)
        self.shows: dict[int, dict[str, Any]] = {}
        self.by_path: dict[str, int] = {}
        self.eps: dict[int, dict[str, Any]] = {}
        self.ep_keys: dict[tuple[str, int | None, int | None], int] = {}
        self.eps_of: dict[int, set[int]] = {}
        self.file_nfo: dict[str, str] = {}
        self.seen_eps: set[int] = set()
        lib = self.req.library_id
        for r in conn.execute(f"SELECT {_SERIES_STATE} FROM series WHERE library_id = ?", (lib,)):
            self._remember_show(dict(r))
        for r in conn.execute(
            f"SELECT {_EPISODE_STATE} FROM episodes e JOIN series s ON s.id = e.series_id"
            " WHERE s.library_id = ?",
            (lib,),
        ):
            self._remember_ep(dict(r))
        present = [
            r for r in self.shows.values() if r["missing_since"] is None and in_scope(r["path"], self.scope)
        ]
        return len(present) or None

    def weight(self, cand: SeriesCandidate) -> int:
        """A show weighs one plus its episodes."""
        return 1 + len(cand.episodes)

    def _remember_show(self, row: dict[str, Any]) -> None:
        """Add a series row to the in-memory state."""
        self.shows[row["id"]] = row
        self.by_path[row["path"]] = row["id"]
        for kind in ("tmdb", "imdb", "tvdb"):
            self.index_add((kind, row.get(f"{kind}_id")), row["id"])

    def _remember_ep(self, row: dict[str, Any]) -> None:
        """Add an episode row to the in-memory state."""
        self.eps[row["id"]] = row
        self.ep_keys[(row["file"], row["season"], row["episode"])] = row["id"]
        self.eps_of.setdefault(row["series_id"], set()).add(row["id"])
        self.index_add(("num", row["series_id"], row["season"], row["episode"]), row["id"])
        if row.get("nfo_hash"):
            self.file_nfo[row["file"]] = row["nfo_hash"]

    def _forget_ep(self, row: dict[str, Any]) -> None:
        """Remove an episode row's keys before its file changes."""
        if self.ep_keys.get((row["file"], row["season"], row["episode"])) == row["id"]:
            del self.ep_keys[(row["file"], row["season"], row["episode"])]

    def prepare(self, cand: SeriesCandidate) -> SeriesPrep:
        """Unchanged show folder: nothing read. Otherwise read tvshow.nfo and changed episode NFOs."""
        key = series_candidate_key(cand)
        row = self.shows.get(self.by_path.get(key, 0))
        if row is not None and row["missing_since"] is None and self.signatures.get(key) == cand.signature:
            return SeriesPrep(cand, key, True)
        prep = SeriesPrep(cand, key, False, self.read(cand.nfo, "tvshow", row["nfo_hash"] if row else None))
        for ep in cand.episodes:
            file = str(ep.file)
            if file not in prep.episode_nfos:
                prep.episode_nfos[file] = self.read(ep.nfo, "episodedetails", self.file_nfo.get(file))
        return prep

    def _hinted(self) -> bool:
        """Webhook hints describe the show of a folder scan."""
        return bool(self.req.hints) and self.scope is not None

    def _episode_forced(self, file: str) -> bool:
        """A webhook re-enriches the episodes of its file (or of its whole folder when it named none)."""
        return self.forced and (self.req.file is None or str(self.req.file) == file)

    def apply(self, conn: sqlite3.Connection, batch: list[SeriesPrep]) -> list[int]:
        """Write one batch of shows with their seasons, episodes and enrich jobs."""
        for prep in batch:
            self._apply_show(conn, prep)
        return self.flush_jobs(conn)

    def _apply_show(self, conn: sqlite3.Connection, prep: SeriesPrep) -> None:
        """One show: the series row, then seasons and episodes."""
        cand = prep.cand
        self.seen_files.update(str(ep.file) for ep in cand.episodes)
        sid = self.by_path.get(prep.key)
        if prep.unchanged and sid is not None:
            self.seen.add(sid)
            self.store_signature(conn, prep.key, cand.signature)
            self.note("series", sid, "unchanged")
            self.follow("series", sid, False, False, hints=self._hinted())
            for eid in sorted(self.eps_of.get(sid, ())):
                ep_row = self.eps[eid]
                if ep_row["missing_since"] is None:
                    self.seen_eps.add(eid)
                    self.note("episode", eid, "unchanged")
                    self.follow("episode", eid, False, False, forced=self._episode_forced(ep_row["file"]))
            return
        sid, job = self._apply_series(conn, prep)
        seasons = self._apply_seasons(conn, sid, cand)
        for ep in cand.episodes:
            nfo = prep.episode_nfos.get(str(ep.file))
            numbers: list[int | None] = list(ep.episodes) or [None]
            for position, number in enumerate(numbers):
                self._apply_episode(conn, sid, seasons, ep, nfo, number, position, len(numbers), job)
        self.store_signature(conn, prep.key, cand.signature)

    def _apply_series(self, conn: sqlite3.Connection, prep: SeriesPrep) -> tuple[int, int | None]:
        """Insert, update or move the series row; returns (id, place of its enrich job in the batch)."""
        cand = prep.cand
        hinted = self._hinted()
        ids = scalar_ids(cand.ids)
        if hinted:
            ids.update(hint_ids(self.req.hints))
        nfo_fields = dict(prep.nfo.imported) if prep.nfo else {}
        sid = self.by_path.get(prep.key)
        if sid is None:
            wanted = {**ids, **scalar_ids(nfo_fields.get("uniqueids") or {})}
            for kind in ("tvdb", "tmdb", "imdb"):
                for other in sorted(self.index.get((kind, wanted.get(f"{kind}_id")), ())):
                    if other not in self.seen and not os.path.isdir(self.shows[other]["path"]):
                        sid = other
                        break
                if sid is not None:
                    break
        row = self.shows.get(sid) if sid is not None else None
        art = {k: str(v) for k, v in cand.artwork.items()}
        extra = {
            "path": prep.key,
            "artwork_found": json.dumps(art, sort_keys=True),
            "missing_since": None,
            **self.nfo_columns(prep.nfo, row),
        }
        if row is None:
            fields = {"title": cand.title, "year": cand.year, **ids, **nfo_fields}
            sid = insert_item(conn, "series", fields, {"library_id": self.req.library_id, **extra}, self.now)
            self.note("series", sid, "added")
            job = self.follow("series", sid, True, True, hints=hinted)
        else:
            item = media.load(conn, "series", row["id"])
            changed, _ = self.update_row(conn, item, nfo_fields, ids, extra)
            old_art = user_art(json.loads(row["artwork_found"] or "{}"), self.own)
            meaningful = (
                changed
                or row["path"] != prep.key
                or self.nfo_news(prep.nfo, row)
                or old_art != user_art(art, self.own)
            )
            self.by_path.pop(row["path"], None)
            self.note("series", row["id"], "updated" if meaningful else "unchanged")
            job = self.follow("series", row["id"], False, meaningful, hints=hinted)
        fresh = media.load(conn, "series", sid).row
        self._remember_show({k: fresh[k] for k in _SERIES_STATE.split(", ")})
        self.seen.add(sid)
        return sid, job

    def _apply_seasons(self, conn: sqlite3.Connection, sid: int, cand: SeriesCandidate) -> dict[int, int]:
        """Upsert a seasons row per season the show has; returns {season: row id}."""
        numbers = set(cand.seasons) | {k for k in cand.season_artwork if isinstance(k, int)}
        numbers |= {ep.season for ep in cand.episodes if ep.season is not None}
        out: dict[int, int] = {}
        for number in sorted(numbers):
            path = cand.seasons.get(number)
            art = {k: str(v) for k, v in cand.season_artwork.get(number, {}).items()}
            row = conn.execute(
                "INSERT INTO seasons (series_id, season, path, artwork_found) VALUES (?, ?, ?, ?)"
                " ON CONFLICT(series_id, season) DO UPDATE SET path = excluded.path,"
                " artwork_found = excluded.artwork_found RETURNING id",
                (sid, number, str(path) if path else None, json.dumps(art, sort_keys=True)),
            ).fetchone()
            out[number] = int(row[0])
        return out

    def _reuse_episode(self, sid: int, season: int | None, number: int | None) -> int | None:
        """An episode row of the same show and number whose file is gone: an upgrade or a rename."""
        for eid in sorted(self.index.get(("num", sid, season, number), ())):
            if eid not in self.seen_eps and not os.path.exists(self.eps[eid]["file"]):
                return eid
        return None

    def _apply_episode(
        self,
        conn: sqlite3.Connection,
        sid: int,
        seasons: dict[int, int],
        ep: Any,
        nfo: NfoRead | None,
        number: int | None,
        position: int,
        count: int,
        job: int | None,
    ) -> None:
        """Insert or update one episode row of a file."""
        file = str(ep.file)
        eid = self.ep_keys.get((file, ep.season, number))
        if eid is not None and self.eps[eid]["series_id"] != sid:
            eid = None
        if eid is None:
            eid = self._reuse_episode(sid, ep.season, number)
        row = self.eps.get(eid) if eid is not None else None
        nfo_fields = {
            k: v
            for k, v in episode_fields(nfo, ep.season, number, position, count).items()
            if k not in NFO_IDENTITY
        }
        art = {"thumb": str(ep.thumb)} if ep.thumb else {}
        extra = {
            "file": file,
            "file_size": ep.size,
            "season_id": seasons.get(ep.season) if ep.season is not None else None,
            "artwork_found": json.dumps(art, sort_keys=True),
            "missing_since": None,
            **self.nfo_columns(nfo, row),
        }
        forced = self._episode_forced(file)
        if row is None:
            fields = {
                "title": ep.title,
                "aired": ep.aired,
                **nfo_fields,
                "season": ep.season,
                "episode": number,
            }
            eid = insert_item(conn, "episode", fields, {"series_id": sid, **extra}, self.now)
            self.note("episode", eid, "added")
            self.follow("episode", eid, True, True, forced=forced, after=job)
        else:
            item = media.load(conn, "episode", row["id"])
            gaps = {"title": ep.title, "aired": ep.aired}
            changed, _ = self.update_row(conn, item, nfo_fields, gaps, extra)
            old_art = user_art(json.loads(row["artwork_found"] or "{}"), self.own)
            meaningful = (
                changed
                or row["file"] != file
                or row["file_size"] != ep.size
                or self.nfo_news(nfo, row)
                or old_art != user_art(art, self.own)
            )
            self._forget_ep(row)
            self.note("episode", row["id"], "updated" if meaningful else "unchanged")
            self.follow("episode", row["id"], False, meaningful, forced=forced, after=job)
        state = {"id": eid, "series_id": sid, "season": ep.season, "episode": number, **extra}
        if row is not None:
            state["nfo_error"] = extra.get("nfo_error", row["nfo_error"])
        self._remember_ep(state)
        self.seen_eps.add(eid)

    def finish(self, conn: sqlite3.Connection, job_id: int | None) -> list[int]:
        """Shows and episodes in scope the walk did not see become missing; long-missing ones are deleted."""
        gone_shows: list[int] = []
        gone_eps: list[int] = []
        for row in list(self.shows.values()):
            if not in_scope(row["path"], self.scope):
                continue
            if row["id"] not in self.seen:
                if self.mark_missing(conn, "series", row):
                    gone_shows.append(row["id"])
                    gone_eps.extend(self.eps_of.get(row["id"], ()))
                else:
                    self.report.missing += 1
                continue
            for eid in sorted(self.eps_of.get(row["id"], ())):
                if eid in self.seen_eps:
                    continue
                if self.mark_missing(conn, "episodes", self.eps[eid]):
                    gone_eps.append(eid)
                else:
                    self.report.missing += 1
        self.expire(conn, "episodes", "episode", gone_eps)
        self.expire(conn, "series", "series", gone_shows)
        self.forget_signatures(conn)
        finish_library(conn, self.req.library_id, self.now, job_id)
        return self.flush_jobs(conn)
