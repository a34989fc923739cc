"""The series scan: show candidates become series, season and episode rows; unchanged shows cost a lookup."""

from __future__ import annotations

import json
import os
import sqlite3
from dataclasses import dataclass, field
from typing import Any, Final

from agent.library.scanner import NfoRead, Scanner, in_scope, user_art
from agent.library.walk_series import SeriesCandidate, SeriesStub, series_at
from agent.nfo.ids import scalar_ids
from agent.store import libraries, media

NFO_IDENTITY: Final = frozenset({"season", "episode", "episode_end"})  # an episode's file name decides these


@dataclass
class SeriesPrep:
    """A show candidate after the walk thread looked at it."""

    cand: SeriesCandidate | SeriesStub
    key: str
    unchanged: bool
    nfo: NfoRead | None = None
    episode_nfos: dict[str, NfoRead | None] = field(default_factory=dict)


_SERIES_KEYS = libraries.SERIES_STATE


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
        """Read the library's series rows; of its episodes only counts per show, missing ones and NFO hashes.

        An episode's full state is read when its show changed (`_episodes_of`): every lookup that
        keeps an episode's row through an upgrade or a rename stays within its show, so an unchanged
        rescan never builds 20,000 episode rows it would not look at.
        """
        self.load_common(conn)
        self.shows: dict[int, dict[str, Any]] = {}
        self.by_path: dict[str, int] = {}
        self.eps: dict[int, dict[str, Any]] = {}  # full state, for shows in self.loaded
        self.loaded: set[int] = set()
        self.ep_missing: dict[int, float | None] = {}  # missing_since of the loaded episodes
        self.ep_keys: dict[tuple[str, int | None, int | None], int] = {}
        self.eps_of: dict[int, set[int]] = {}  # episode ids of the loaded shows
        self.file_nfo: dict[str, str] = {}
        self.seen_eps: set[int] = set()
        self.whole: set[int] = set()  # unchanged shows: every present episode seen, none loaded
        self.new_eps = media.NewRows("episode")
        lib = self.req.library_id
        for row in libraries.series_states(conn, lib):
            self._remember_show(row)
        self.present_eps: dict[int, int] = libraries.present_episode_counts(conn, lib)
        self.missing_eps: dict[int, list[tuple[int, float]]] = {}
        for eid, series_id, missing_since in libraries.missing_episodes(conn, lib):
            self.missing_eps.setdefault(series_id, []).append((eid, missing_since))
        self.file_nfo = libraries.episode_nfo_hashes(conn, lib)
        present = [
            r for r in self.shows.values() if r["missing_since"] is None and in_scope(r["path"], self.scope)
        ]
        return len(present) or None

    def _episodes_of(self, conn: sqlite3.Connection, sid: int) -> None:
        """Read the full state of a show's episodes the first time the scan needs it."""
        if sid in self.loaded:
            return
        self.loaded.add(sid)
        if sid not in self.present_eps and sid not in self.missing_eps:
            return  # a new show, or one without episodes
        self.new_eps.flush(conn)
        for row in libraries.episode_states(conn, sid):
            if row["id"] not in self.eps:  # this scan's own state of an episode is newer
                self._remember_ep(row)

    def weight(self, cand: SeriesCandidate | SeriesStub) -> int:
        """A show weighs one plus its episodes (an unchanged one: plus its files and folders)."""
        return 1 + (cand.entries if isinstance(cand, SeriesStub) else len(cand.episodes))

    def _remember_show(self, row: dict[str, Any]) -> None:
        """Add a series row to the in-memory state."""
        self.shows[row["id"]] = row
        self.by_path[row["path"]] = row["id"]
        for kind in ("tmdb", "imdb", "tvdb"):
            self.index_add((kind, row.get(f"{kind}_id")), row["id"])

    def _remember_ep(self, row: dict[str, Any]) -> None:
        """Add an episode row to the in-memory state."""
        self.eps[row["id"]] = row
        self.ep_missing[row["id"]] = row["missing_since"]
        self.ep_keys[(row["file"], row["season"], row["episode"])] = row["id"]
        self.eps_of.setdefault(row["series_id"], set()).add(row["id"])
        self.index_add(("num", row["series_id"], row["season"], row["episode"]), row["id"])
        if row.get("nfo_hash"):
            self.file_nfo[row["file"]] = row["nfo_hash"]

    def _forget_ep(self, row: dict[str, Any]) -> None:
        """Remove an episode row's keys before its file changes."""
        if self.ep_keys.get((row["file"], row["season"], row["episode"])) == row["id"]:
            del self.ep_keys[(row["file"], row["season"], row["episode"])]

    def known(self, key: str, signature: str) -> bool:
        """True when the store holds this show, present, with this signature: the walk may skip it."""
        row = self.shows.get(self.by_path.get(key, 0))
        return row is not None and row["missing_since"] is None and self.signatures.get(key) == signature

    def prepare(self, cand: SeriesCandidate | SeriesStub) -> SeriesPrep | None:
        """Unchanged show folder: nothing read. Otherwise read tvshow.nfo and changed episode NFOs."""
        if isinstance(cand, SeriesStub):  # an ordinary scan counts it here (see MovieScanner.prepare)
            sid = self.by_path.get(cand.folder)
            if sid is not None and not self.forced:
                self.seen.add(sid)
                self.seen_keys.add(cand.folder)
                self.whole.add(sid)  # finish() looks only at its episodes that were missing already
                self.report.unchanged += 1 + self.present_eps.get(sid, 0)
                return None
            return SeriesPrep(cand, cand.folder, True)
        key = str(cand.folder)
        if self.known(key, cand.signature):
            return SeriesPrep(cand, key, True)
        return self._prepare_full(cand, key)

    def _prepare_full(self, cand: SeriesCandidate, key: str) -> SeriesPrep:
        """Read a changed show's tvshow.nfo and the episode NFOs the store does not hold already."""
        row = self.shows.get(self.by_path.get(key, 0))
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
        self.new_eps.flush(conn)
        return self.flush_jobs(conn)

    def _apply_show(self, conn: sqlite3.Connection, prep: SeriesPrep) -> None:
        """One show: the series row, then seasons and episodes."""
        cand = prep.cand
        if isinstance(cand, SeriesCandidate):
            self.seen_files.update(str(ep.file) for ep in cand.episodes)
        sid = self.by_path.get(prep.key)
        if prep.unchanged and sid is not None:
            self.seen.add(sid)
            self.store_signature(conn, prep.key, cand.signature)
            self.note("series", sid, "unchanged")  # a webhook or upgrade scan: re-enrich it anyway
            self.follow("series", sid, False, False, hints=self._hinted())
            self._episodes_of(conn, sid)
            for eid in sorted(self.eps_of.get(sid, ())):
                ep_row = self.eps[eid]
                if ep_row["missing_since"] is None:
                    self.seen_eps.add(eid)
                    self.note("episode", eid, "unchanged")
                    self.follow("episode", eid, False, False, forced=self._episode_forced(ep_row["file"]))
            return
        if isinstance(cand, SeriesStub):  # its row went away after the walk looked: read it in full
            self._apply_show(conn, self._prepare_full(series_at(cand.folder), prep.key))
            return
        sid, job = self._apply_series(conn, prep)
        self._episodes_of(conn, sid)
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
            ids.update(self.hint_ids())
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
            "artwork_found": media.sorted_json(art),
            "missing_since": None,
            **self.nfo_columns(prep.nfo, row),
        }
        if row is None:
            fields = {"title": cand.title, "year": cand.year, **ids, **nfo_fields}
            values = media.item_row("series", fields, {"library_id": self.req.library_id, **extra}, self.now)
            sid = media.insert_row(conn, "series", values)
            self.note("series", sid, "added")
            job = self.follow("series", sid, True, True, hints=hinted)
            self._remember_show({"id": sid, **{k: values.get(k) for k in _SERIES_KEYS[1:]}})
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
            self._remember_show({k: fresh[k] for k in _SERIES_KEYS})
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
            folder = str(path) if path else None
            out[number] = libraries.upsert_season(conn, sid, number, folder, media.sorted_json(art))
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
        if eid is None and sid in self.eps_of:  # a new show has no rows to reuse
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
            "artwork_found": media.sorted_json(art),
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
            eid = self.new_eps.add(conn, media.item_row("episode", fields, {"series_id": sid, **extra}, self.now))
            self.note("episode", eid, "added")
            self.follow("episode", eid, True, True, forced=forced, after=job)
            self.seen_eps.add(eid)  # seen rows are never matched again, so a new one needs no lookup keys
            return
        else:
            self.new_eps.flush(conn)  # media.load reads the table
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
        state["nfo_error"] = extra.get("nfo_error", row["nfo_error"])
        self._remember_ep(state)
        self.seen_eps.add(eid)

    def finish(self, conn: sqlite3.Connection, job_id: int | None) -> list[int]:
        """Shows and episodes in scope the walk did not see become missing; long-missing ones are deleted."""
        gone_shows: list[int] = []
        gone_eps: list[int] = []
        for row in list(self.shows.values()):
            sid = row["id"]
            if sid not in self.seen and not in_scope(row["path"], self.scope):
                continue  # a show this scan walked is judged whole (a season folder's scan walks its show)
            if sid not in self.seen:
                if self.mark_missing(conn, "series", row):
                    gone_shows.append(sid)
                    gone_eps.extend(libraries.episode_ids(conn, sid))
                else:
                    self.report.missing += 1
                continue
            if sid in self.whole:
                unseen = self.missing_eps.get(sid, [])
            else:
                ids = sorted(self.eps_of.get(sid, ()))
                unseen = [(eid, self.ep_missing[eid]) for eid in ids if eid not in self.seen_eps]
            for eid, missing_since in unseen:
                state = {"id": eid, "missing_since": missing_since}
                if self.mark_missing(conn, "episodes", state):
                    gone_eps.append(eid)
                else:
                    self.report.missing += 1
        self.expire(conn, "episodes", "episode", gone_eps)
        self.expire(conn, "series", "series", gone_shows)
        self.forget_signatures(conn)
        libraries.finish_scan(conn, self.req.library_id, self.now, job_id)
        return self.flush_jobs(conn)
