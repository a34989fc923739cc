"""The movie scan: candidates become movie rows, kept through upgrades and moves; unchanged ones cost a lookup."""

from __future__ import annotations

import json
import os
import sqlite3
from dataclasses import dataclass
from typing import Any

from agent.library.scanner import NfoRead, Scanner, in_scope, partial_hash, user_art
from agent.library.walk_movies import FolderStub, MovieCandidate, MovieStub, movie_at, movie_key
from agent.nfo.ids import scalar_ids
from agent.store import libraries, media


@dataclass
class MoviePrep:
    """A movie candidate after the walk thread looked at it."""

    cand: MovieCandidate | MovieStub
    key: str
    unchanged: bool
    nfo: NfoRead | None = None
    file_hash: str | None = None


_STATE_KEYS = libraries.MOVIE_STATE


class MovieScanner(Scanner):
    """Movie candidates -> movie rows, keeping a row through upgrades and moves."""

    entity = "movie"

    def load(self, conn: sqlite3.Connection) -> int | None:
        """Read each movie's id, folder, file and missing mark; the rest of a row is read when needed.

        An unchanged rescan only asks whether a file's row is present (`known`) and which rows it did
        not see (`finish`): building 10,000 full row dicts cost it more than those lookups.
        """
        self.load_common(conn)
        self.rows: dict[int, dict[str, Any]] | None = None  # full state, see state()
        self.slim: dict[int, list[Any]] = {}  # id -> [folder, missing_since]
        self.by_file: dict[str, int] = {}
        self.new_rows = media.NewRows("movie")
        self.indexed = False
        self.by_folder: dict[str, int] = {}  # folder -> its only present movie (see stored)
        slim, by_file, by_folder = self.slim, self.by_file, self.by_folder
        shared: set[str] = set()
        for item_id, path, file, missing_since in libraries.movie_places(conn, self.req.library_id):
            slim[item_id] = [path, missing_since]
            by_file[file] = item_id
            if missing_since is None:
                if path in by_folder:
                    shared.add(path)
                by_folder[path] = item_id
        for path in shared:
            del by_folder[path]
        scope = self.scope
        present = sum(
            1 for path, missing in slim.values() if missing is None and (scope is None or in_scope(path, scope))
        )
        return present or None

    def state(self, conn: sqlite3.Connection | None = None) -> dict[int, dict[str, Any]]:
        """Every movie row's full scan state, read on first use: by the writer (`conn`) or the walk thread.

        Earlier batches are committed before the walk goes on, so the rows read are the scan's own.
        """
        if self.rows is None:
            lib = self.req.library_id
            found = (
                libraries.movie_states(conn, lib)
                if conn is not None
                else self.fetch(lambda c: libraries.movie_states(c, lib))
            )
            self.rows = {row["id"]: row for row in found}
        return self.rows

    def _keys(self, row: dict[str, Any]) -> list[tuple[Any, ...]]:
        """The lookup keys of a movie row."""
        size = row.get("file_size") or 0
        return [
            ("path", row["path"]),
            ("tmdb", row.get("tmdb_id")),
            ("imdb", row.get("imdb_id")),
            ("hash", size, row.get("file_hash") if size > 0 else None),
        ]

    def _remember(self, conn: sqlite3.Connection, row: dict[str, Any]) -> None:
        """Add a row to the in-memory state."""
        self.state(conn)[row["id"]] = row
        self.slim[row["id"]] = [row["path"], row["missing_since"]]
        self.by_file[row["file"]] = row["id"]

    def _forget(self, row: dict[str, Any]) -> None:
        """Remove a row's file key before it changes."""
        if self.by_file.get(row["file"]) == row["id"]:
            del self.by_file[row["file"]]

    def _ensure_index(self, conn: sqlite3.Connection) -> None:
        """Index rows by folder, ids and size + hash the first time a new file needs it (rescans rarely do).

        Only rows this scan has not seen can be reused, and every row the scan writes is seen, so
        the index never needs the scan's own changes.
        """
        if not self.indexed:
            self.indexed = True
            for row in self.state(conn).values():
                for key in self._keys(row):
                    self.index_add(key, row["id"])

    def known(self, key: str, file: str, signature: str) -> bool:
        """True when the store holds this movie, present, with this signature: the walk may skip it."""
        row = self.slim.get(self.by_file.get(file, 0))
        return row is not None and row[1] is None and self.signatures.get(key) == signature

    def stored(self, folder: str) -> str | None:
        """The stored signature of a folder that holds one present movie, for the walk's quick check.

        A signature stored under a folder is that of a folder holding one movie (a folder of several
        keys its movies by file), so a listing that hashes the same is that movie, unchanged.
        """
        if folder not in self.by_folder:
            return None
        return self.signatures.get(folder)

    def prepare(self, cand: MovieCandidate | MovieStub | FolderStub) -> MoviePrep | None:
        """Unchanged folder: nothing read. Otherwise read the NFO and hash the file if it is new.

        An unchanged movie of an ordinary scan is only counted, here in the walk thread (walk and
        writes take turns, so the state is never shared), and returns None: it produces neither a
        row change nor a job, so the writer never sees it.
        """
        if isinstance(cand, FolderStub):  # only offered to an ordinary scan (see run_scan)
            self.seen.add(self.by_folder[cand.folder])
            self.seen_keys.add(cand.folder)
            self.report.unchanged += 1
            return None
        if isinstance(cand, MovieStub):
            key = cand.file if cand.shared_folder else cand.folder  # movie_key, inlined: once per movie
            item_id = self.by_file.get(cand.file)
            if item_id is not None and not self.forced:
                self.seen.add(item_id)
                self.seen_keys.add(key)  # its signature is the stored one: nothing to write
                self.report.unchanged += 1
                return None
            return MoviePrep(cand, key, True)
        key = movie_key(str(cand.folder), str(cand.file), cand.shared_folder)
        if self.known(key, str(cand.file), cand.signature):
            return MoviePrep(cand, key, True)
        return self._prepare_full(cand, key)

    def _prepare_full(self, cand: MovieCandidate, key: str) -> MoviePrep:
        """Read a changed movie's NFO and hash its file unless the row already has the hash."""
        item_id = self.by_file.get(str(cand.file))
        row = self.state().get(item_id) if item_id is not None else None  # none for a new file: no read
        nfo = self.read(cand.nfo, "movie", row["nfo_hash"] if row else None)
        if row is not None and row["file_size"] == cand.size and row["file_hash"]:
            file_hash = row["file_hash"]
        else:
            file_hash = partial_hash(cand.file)
        return MoviePrep(cand, key, False, nfo, file_hash)

    def _hinted(self, cand: MovieCandidate | MovieStub) -> bool:
        """Webhook hints describe this movie: the folder's only movie, or the one holding the named file."""
        if not self.req.hints or self.scope is None:
            return False
        if self.req.file is not None:
            named = str(self.req.file)
            return named == str(cand.file) or any(named == str(p) for p in cand.parts)
        return not cand.shared_folder

    def _gone(self, rows: dict[int, dict[str, Any]], item_id: int) -> bool:
        """A row this scan has not seen whose file is no longer on disk."""
        return item_id not in self.seen and not os.path.exists(rows[item_id]["file"])

    def _reuse(
        self, conn: sqlite3.Connection, cand: MovieCandidate, prep: MoviePrep, ids: dict[str, Any]
    ) -> int | None:
        """The existing row a new file continues: an upgrade in the same folder, or a moved movie."""
        if not self.slim:
            return None  # a library without rows (a first scan): nothing to continue
        self._ensure_index(conn)
        rows = self.state(conn)
        keys: list[tuple[Any, ...]] = []
        if not cand.shared_folder:
            keys.append(("path", str(cand.folder)))
        keys += [("tmdb", ids.get("tmdb_id")), ("imdb", ids.get("imdb_id"))]
        if cand.size > 0 and prep.file_hash:
            keys.append(("hash", cand.size, prep.file_hash))
        for key in keys:
            for item_id in sorted(self.index.get(key, ())):
                if self._gone(rows, item_id):
                    return item_id
        return None

    def apply(self, conn: sqlite3.Connection, batch: list[MoviePrep]) -> list[int]:
        """Write one batch of movies and their enrich jobs."""
        for prep in batch:
            self._apply_one(conn, prep)
        self.new_rows.flush(conn)
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
            self.note("movie", item_id, "unchanged")  # a webhook or upgrade scan: re-enrich it anyway
            self.follow("movie", item_id, False, False, hints=hinted)
            return
        if isinstance(cand, MovieStub):  # its row went away after the walk looked: read it in full
            full = movie_at(cand)
            if full is not None:
                key = movie_key(str(full.folder), str(full.file), full.shared_folder)
                self._apply_one(conn, self._prepare_full(full, key))
            return
        ids = scalar_ids(cand.ids)
        if hinted:
            ids.update(self.hint_ids())
        nfo_fields = dict(prep.nfo.imported) if prep.nfo else {}
        if item_id is None:
            item_id = self._reuse(conn, cand, prep, {**ids, **scalar_ids(nfo_fields.get("uniqueids") or {})})
        art: dict[str, Any] = {k: str(v) for k, v in cand.artwork.items()}
        if cand.extrafanart:
            art["extrafanart"] = [str(p) for p in cand.extrafanart]
        row = self.state(conn).get(item_id) if item_id is not None else None
        extra = {
            "path": str(cand.folder),
            "file": file,
            "file_size": cand.size,
            "file_hash": prep.file_hash,
            "artwork_found": media.sorted_json(art),
            "missing_since": None,
            **self.nfo_columns(prep.nfo, row),
        }
        if row is None:
            fields = {"title": cand.title, "year": cand.year, **ids, **nfo_fields}
            values = media.item_row("movie", fields, {"library_id": self.req.library_id, **extra}, self.now)
            item_id = self.new_rows.add(conn, values)
            self.seen.add(item_id)  # seen rows are never matched again, so a new one needs no lookup keys
            self.note("movie", item_id, "added")
            self.follow("movie", item_id, True, True, hints=hinted)
        else:
            self.new_rows.flush(conn)  # media.load reads the table
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
            self._remember(conn, {k: fresh[k] for k in _STATE_KEYS})
            self.seen.add(row["id"])
            self.note("movie", row["id"], "updated" if meaningful else "unchanged")
            self.follow("movie", row["id"], False, meaningful, hints=hinted)
        self.store_signature(conn, prep.key, cand.signature)

    def finish(self, conn: sqlite3.Connection, job_id: int | None) -> list[int]:
        """Rows in scope the walk did not see become missing; long-missing ones are deleted."""
        expired: list[int] = []
        for item_id, (path, missing_since) in self.slim.items():
            if item_id in self.seen or not in_scope(path, self.scope):
                continue
            if self.mark_missing(conn, "movies", {"id": item_id, "missing_since": missing_since}):
                expired.append(item_id)
            else:
                self.report.missing += 1
        self.expire(conn, "movies", "movie", expired)
        self.forget_signatures(conn)
        libraries.finish_scan(conn, self.req.library_id, self.now, job_id)
        return self.flush_jobs(conn)
