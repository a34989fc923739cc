"""The content-addressed artwork cache: `cache/assets/ab/cd/<sha256>.<ext>`, references, GC and verify."""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import hashlib
import logging
import os
import re
import secrets
import sqlite3
import time
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import aiohttp
from yarl import URL

from agent.cache_types import AssetReference, CachedAsset, GcReport, VerifyProblem, VerifyReport
from agent.clock import Clock
from agent.errors import RetryLater, UnsafeUserFile, UserError
from agent.fsutil import CHUNK, fsync_dir, sha256_file
from agent.imageinfo import AssetError, sniff_path
from agent.nfo.baseline import baseline_name
from agent.store import assets
from agent.store.base import Database
from agent.userfiles import open_user_file

log = logging.getLogger(__name__)

MAX_BYTES = 25 * 1024 * 1024
SPOOL_BYTES = 1024 * 1024  # a download's bytes held in memory before a worker thread writes them
GRACE_SECONDS = 7 * 86400.0
TEMP_MAX_AGE = 3600.0  # a download temp file older than this was left by a crash
FETCH_TIMEOUT = aiohttp.ClientTimeout(total=120, sock_connect=15, sock_read=30)
MIMES = {"jpg": "image/jpeg", "png": "image/png", "webp": "image/webp"}
ENTITY_TYPES = ("movie", "series", "season", "episode")
_SHA_RE = re.compile(r"^[0-9a-f]{64}$")


class _Sink:
    """A temp file that hashes and counts while it is written, and refuses to grow past a cap.

    Every method touches the disk (open, write, fsync): call them from a worker thread, never the loop.
    """

    def __init__(self, path: Path, max_bytes: int, what: str) -> None:
        self.path, self.max_bytes, self.what = path, max_bytes, what
        self.size = 0
        self._hash = hashlib.sha256()
        path.parent.mkdir(parents=True, exist_ok=True)
        self._handle = open(path, "xb")  # noqa: SIM115 - closed in close()

    def write_all(self, chunks: list[bytes]) -> None:
        """Append several chunks (one thread hop for a spooled batch of a download)."""
        for chunk in chunks:
            self.write(chunk)

    def write(self, chunk: bytes) -> None:
        """Append a chunk, or raise AssetError past the size cap."""
        self.size += len(chunk)
        if self.size > self.max_bytes:
            raise AssetError(f"{self.what}: image is larger than the {self.max_bytes}-byte limit")
        self._hash.update(chunk)
        self._handle.write(chunk)

    def close(self) -> None:
        """Flush and close the file."""
        if not self._handle.closed:
            self._handle.flush()
            os.fsync(self._handle.fileno())
            self._handle.close()

    @property
    def sha256(self) -> str:
        """Hex digest of everything written."""
        return self._hash.hexdigest()


class _Placing:
    """Who may move files in the cache: one placement per hash at a time, any number of hashes at once, and
    GC or verify alone (a placement waits while they run; they wait for running placements to end).

    One lock for every placement made each image's move and row write wait for every other image's: the
    first-run bench's artwork steps queued behind it.
    """

    def __init__(self) -> None:
        self._per_hash: dict[str, tuple[asyncio.Lock, int]] = {}  # hash -> (its lock, placements waiting or in)
        self._gate = asyncio.Lock()  # held by GC/verify for their whole run; a placement passes through it
        self._running = 0
        self._none_running = asyncio.Event()
        self._none_running.set()

    @contextlib.asynccontextmanager
    async def one(self, sha: str) -> AsyncIterator[None]:
        """Hold `sha` for a placement (or a check of its file)."""
        async with self._gate:  # not held across the placement: only waits out a running GC
            self._running += 1
            self._none_running.clear()
        lock, users = self._per_hash.get(sha, (asyncio.Lock(), 0))
        self._per_hash[sha] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._per_hash[sha]
            if users == 1:
                del self._per_hash[sha]
            else:
                self._per_hash[sha] = (lock, users - 1)
            self._running -= 1
            if not self._running:
                self._none_running.set()

    @contextlib.asynccontextmanager
    async def alone(self) -> AsyncIterator[None]:
        """Hold the whole cache: no placement starts, and those running have ended."""
        async with self._gate:
            await self._none_running.wait()
            yield


def _retry_after(value: str | None) -> float | None:
    """Parse a Retry-After header (seconds or an HTTP date) into seconds."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time()) if when else None


def _unlink(path: Path) -> int:
    """Delete a file; return the bytes freed (0 if it was already gone)."""
    try:
        size = os.lstat(path).st_size
        os.unlink(path)
    except FileNotFoundError:
        return 0
    return size


def _sweep_folder(folder: Path, keep: set[str], limit: float, counter: str, report: GcReport) -> None:
    """Delete files under `folder` not named in `keep` and last changed before `limit`; empty sub-folders go."""
    if not folder.is_dir():
        return
    for dirpath, _dirs, filenames in os.walk(folder, topdown=False):
        for name in filenames:
            if name in keep:
                continue
            path = Path(dirpath) / name
            try:
                if os.lstat(path).st_mtime > limit:
                    continue
            except FileNotFoundError:
                continue
            report.bytes_freed += _unlink(path)
            setattr(report, counter, getattr(report, counter) + 1)
        if Path(dirpath) != folder and not os.listdir(dirpath):
            with contextlib.suppress(OSError):
                os.rmdir(dirpath)


def _intact(path: Path, size: int) -> bool:
    """True when a cached file is there with the size its row records."""
    try:
        return path.is_file() and path.stat().st_size == size
    except OSError:
        return False


def _row_to_asset(row: sqlite3.Row, path: Path) -> CachedAsset:
    """Build a CachedAsset from a cache_assets row."""
    return CachedAsset(row["sha256"], row["ext"], row["size"], row["mime"], row["width"], row["height"],
                       row["source_url"], row["created_at"], path, bool(row["quarantined"]))


def _hash_local(path: Path, roots: Sequence[Path] | None, cap: int) -> tuple[str | None, int]:
    """(sha256, size) of a regular local file opened once (no hash when it is over `cap`); worker thread."""
    with os.fdopen(open_user_file(path, roots), "rb") as handle:
        size = os.fstat(handle.fileno()).st_size
        if size > cap:
            return None, size
        digest = hashlib.sha256()
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
        return digest.hexdigest(), size


class AssetCache:
    """Downloads, stores and references artwork by content hash; deletes only what nothing uses."""

    def __init__(self, db: Database, root: Path, session: aiohttp.ClientSession | None = None,
                 clock: Clock | None = None, max_bytes: int = MAX_BYTES,
                 grace_seconds: float = GRACE_SECONDS, baselines: Path | None = None) -> None:
        self.db = db
        self.root = Path(root)
        self.baselines = baselines  # data_dir/published: GC drops copies of NFOs no longer published
        self.clock = clock or Clock()
        self.max_bytes = max_bytes
        self.grace_seconds = grace_seconds
        self._session = session
        self._own_session = False
        self._placing = _Placing()  # a file and its row placed together per hash; GC/verify moves alone

    @property
    def assets_dir(self) -> Path:
        """Folder holding the assets."""
        return self.root / "assets"

    async def close(self) -> None:
        """Close the HTTP session if the cache created it."""
        if self._own_session and self._session is not None:
            await self._session.close()
        self._session = None

    def path_for(self, sha256: str, ext: str) -> Path:
        """Where an asset lives: root/assets/ab/cd/<sha256>.<ext>."""
        if not isinstance(sha256, str) or not _SHA_RE.match(sha256):
            raise UserError(f"'{sha256}' is not a sha256 (64 lowercase hex digits)")
        if ext not in MIMES:
            raise UserError(f"'{ext}' is not a cached image extension (jpg, png, webp)")
        return self.assets_dir / sha256[:2] / sha256[2:4] / f"{sha256}.{ext}"

    async def get(self, sha256: str) -> CachedAsset | None:
        """The asset with this hash, or None."""
        row = await self.db.read(assets.asset, sha256)
        return _row_to_asset(row, self.path_for(row["sha256"], row["ext"])) if row else None

    # ------------------------------------------------------------ adding images

    def _new_temp(self) -> Path:
        """A fresh temp file name under root/tmp/ (the _Sink that opens it makes the folder)."""
        return self.root / "tmp" / f"{secrets.token_hex(8)}.part"

    async def fetch(self, url: str) -> CachedAsset:
        """Download an image into the cache (streamed, hashed, size-capped, type-checked, deduplicated)."""
        try:
            parsed = URL(url)
        except (TypeError, ValueError) as exc:
            raise AssetError(f"'{url}' is not a valid URL") from exc
        if parsed.scheme not in ("http", "https") or not parsed.host:
            raise AssetError(f"'{url}' is not an http(s) URL")
        if self._session is None:
            self._session = aiohttp.ClientSession()
            self._own_session = True
        tmp = self._new_temp()
        try:
            # The body is spooled in memory up to SPOOL_BYTES, then handed to a worker thread that writes,
            # hashes and at the end fsyncs it: the loop never waits on the disk (an fsync there held up
            # every other job's network and database work, measured in bench/first_run_bench.py).
            sink = await asyncio.to_thread(_Sink, tmp, self.max_bytes, url)
            try:
                async with self._session.get(parsed, timeout=FETCH_TIMEOUT) as resp:
                    self._check_response(url, resp)
                    spooled: list[bytes] = []
                    held = 0
                    async for chunk in resp.content.iter_chunked(CHUNK):
                        spooled.append(chunk)
                        held += len(chunk)
                        if held >= SPOOL_BYTES:
                            await asyncio.to_thread(sink.write_all, spooled)
                            spooled, held = [], 0
                    if spooled:
                        await asyncio.to_thread(sink.write_all, spooled)
            finally:
                await asyncio.to_thread(sink.close)
            return await self._finish(tmp, sink.sha256, sink.size, url)
        except (aiohttp.ClientError, TimeoutError) as exc:
            if isinstance(exc, aiohttp.InvalidURL):
                raise AssetError(f"'{url}' is not a valid URL") from exc
            raise RetryLater(f"downloading {url} failed: {exc.__class__.__name__}: {exc}") from exc
        finally:
            await asyncio.to_thread(tmp.unlink, missing_ok=True)

    def _check_response(self, url: str, resp: aiohttp.ClientResponse) -> None:
        """Turn an HTTP status or an announced size into RetryLater or AssetError."""
        if resp.status == 429 or resp.status >= 500:
            delay = _retry_after(resp.headers.get("Retry-After"))
            raise RetryLater(f"{url} answered HTTP {resp.status}; retry later", delay=delay)
        if resp.status == 404 or resp.status == 410:
            raise AssetError(f"{url} answered HTTP {resp.status}: the image does not exist")
        if resp.status >= 400:
            raise AssetError(f"{url} answered HTTP {resp.status} {resp.reason or ''}".rstrip())
        length = resp.content_length
        if length is not None and length > self.max_bytes:
            raise AssetError(f"{url}: image is {length} bytes, over the {self.max_bytes}-byte limit")

    async def store_bytes(self, data: bytes, source_url: str | None = None) -> CachedAsset:
        """Add an image held in memory to the cache (bytes it already holds are not written again)."""
        if len(data) <= self.max_bytes:
            sha = await asyncio.to_thread(lambda: hashlib.sha256(data).hexdigest())
            if (known := await self._known(sha, len(data), source_url)) is not None:
                return known
        tmp = self._new_temp()
        try:
            sha, size = await asyncio.to_thread(self._copy_in, [data], tmp, source_url or "image data")
            return await self._finish(tmp, sha, size, source_url)
        finally:
            await asyncio.to_thread(tmp.unlink, missing_ok=True)

    async def store_file(self, path: Path, source_url: str | None = None,
                         roots: Sequence[Path] | None = None) -> CachedAsset:
        """Add a local image (artwork found beside media) to the cache, so it is never lost.

        Only a regular file is read, and with `roots` never through a link leading outside them.
        """
        path = Path(path)
        try:  # one open, of a regular file only: the same image found again (every rescan) is not copied
            sha, size = await asyncio.to_thread(_hash_local, path, roots, self.max_bytes)
        except (FileNotFoundError, UnsafeUserFile) as exc:
            reason = exc.message if isinstance(exc, UnsafeUserFile) else f"'{path}' does not exist"
            raise AssetError(f"local artwork {reason}") from exc
        except OSError as exc:
            raise AssetError(f"cannot read local artwork '{path}': {exc.strerror or exc}") from exc
        if sha is not None and (known := await self._known(sha, size, source_url)) is not None:
            return known
        tmp = self._new_temp()
        try:
            sha, size = await asyncio.to_thread(self._copy_file_in, path, tmp, roots)
            return await self._finish(tmp, sha, size, source_url)
        finally:
            await asyncio.to_thread(tmp.unlink, missing_ok=True)

    def _copy_in(self, chunks: list[bytes], tmp: Path, what: str) -> tuple[str, int]:
        """Write chunks through a hashing, size-capped sink (worker thread)."""
        sink = _Sink(tmp, self.max_bytes, what)
        try:
            for chunk in chunks:
                sink.write(chunk)
        finally:
            sink.close()
        return sink.sha256, sink.size

    def _copy_file_in(self, path: Path, tmp: Path, roots: Sequence[Path] | None = None) -> tuple[str, int]:
        """Stream a local file (regular, inside `roots`) through a hashing, size-capped sink (worker thread)."""
        sink = _Sink(tmp, self.max_bytes, str(path))
        try:
            with os.fdopen(open_user_file(path, roots), "rb") as source:
                while chunk := source.read(CHUNK):
                    sink.write(chunk)
        finally:
            sink.close()
        return sink.sha256, sink.size

    async def _finish(self, tmp: Path, sha: str, size: int, source_url: str | None) -> CachedAsset:
        """Check the type, move the temp file into place (or drop it as a duplicate) and upsert the row."""
        try:
            ext, width, height = await asyncio.to_thread(sniff_path, tmp)
        except AssetError as exc:
            where = f"{source_url}: " if source_url else ""
            raise AssetError(f"{where}{exc.message}") from exc
        dest = self.path_for(sha, ext)
        now = self.clock.now()
        async with self._placing.one(sha):
            row = await self.db.read(assets.asset, sha)
            keep_existing = row is not None and not row["quarantined"]
            await asyncio.to_thread(self._place, tmp, dest, size, keep_existing)
            saved = await self.db.write(assets.upsert_asset, sha, ext, size, MIMES[ext], width, height, source_url,
                                        now)
        return _row_to_asset(saved, dest)

    async def _known(self, sha: str, size: int, source_url: str | None) -> CachedAsset | None:
        """The asset for bytes the cache already holds intact, its row refreshed as storing them would."""
        row = await self.db.read(assets.asset, sha)
        if row is None or row["quarantined"] or row["size"] != size:
            return None
        dest = self.path_for(sha, row["ext"])
        async with self._placing.one(sha):
            if not await asyncio.to_thread(_intact, dest, size):
                return None  # gone or damaged on disk: store it again through the temp file
            saved = await self.db.write(assets.upsert_asset, sha, row["ext"], size, row["mime"], row["width"],
                                        row["height"], source_url, self.clock.now())
        return _row_to_asset(saved, dest)

    @staticmethod
    def _place(tmp: Path, dest: Path, size: int, keep_existing: bool) -> None:
        """Move the temp file to its content address unless an intact copy is already there."""
        if keep_existing and dest.is_file() and dest.stat().st_size == size:
            return
        dest.parent.mkdir(parents=True, exist_ok=True)
        os.chmod(tmp, 0o644)
        os.replace(tmp, dest)
        fsync_dir(dest.parent)

    # ------------------------------------------------------------ references

    async def add_reference(self, sha256: str, entity_type: str, entity_id: int, art_type: str,
                            position: int = 0, source: str = "provider") -> None:
        """Point an entity's artwork slot at an asset (replacing whatever was there)."""
        await self.add_references(entity_type, entity_id, [(sha256, art_type, position, source)])

    async def add_references(self, entity_type: str, entity_id: int, refs: Sequence[tuple[str, str, int, str]]
                             ) -> None:
        """add_reference for each (sha256, art_type, position, source), in one transaction."""
        _check_entity(entity_type)
        if any(not art_type for _, art_type, _, _ in refs):
            raise UserError("art_type must not be empty")
        if refs:
            now = self.clock.now()
            await self.db.write(assets.add_references, [(sha, entity_type, entity_id, art_type, position, source, now)
                                                       for sha, art_type, position, source in refs])

    async def set_library_path(self, entity_type: str, entity_id: int, art_type: str, position: int,
                               path: str | os.PathLike[str] | None) -> None:
        """Record the file written beside media for one reference."""
        _check_entity(entity_type)
        await self.db.write(assets.set_library_path, entity_type, entity_id, art_type, position,
                            os.fspath(path) if path is not None else None)

    async def references(self, entity_type: str, entity_id: int) -> list[AssetReference]:
        """Every reference of one entity, by art type and position."""
        _check_entity(entity_type)
        rows = await self.db.read(assets.references, entity_type, entity_id)
        return [AssetReference(r["id"], r["sha256"], r["ext"], r["entity_type"], r["entity_id"],
                               r["art_type"], r["position"], r["source"], r["library_path"],
                               r["created_at"], bool(r["quarantined"])) for r in rows]

    async def remove_references(self, entity_type: str, entity_id: int, art_type: str | None = None) -> int:
        """Drop an entity's references (all, or one art type); returns how many went."""
        _check_entity(entity_type)
        return await self.db.write(assets.remove_references, (entity_type, entity_id, art_type, self.clock.now()))

    # ------------------------------------------------------------ maintenance

    async def gc(self, now: float | None = None) -> GcReport:
        """Delete unreferenced assets past the grace period, orphan files, stale temps and old quarantine."""
        now = self.clock.now() if now is None else now
        cutoff = now - self.grace_seconds
        report = GcReport()
        async with self._placing.alone():
            gone = await self.db.write(assets.delete_expired, cutoff)
            for row in gone:
                if not row["quarantined"]:
                    report.bytes_freed += await asyncio.to_thread(
                        _unlink, self.path_for(row["sha256"], row["ext"]))
                report.assets_deleted += 1
            rows = await self.db.read(assets.asset_files)
            known = {f"{r['sha256']}.{r['ext']}" for r in rows}
            await asyncio.to_thread(self._sweep, known, cutoff, now - TEMP_MAX_AGE, report)
            if self.baselines is not None:
                kept = {baseline_name(path) for path in await self.db.read(assets.published_paths)}
                await asyncio.to_thread(_sweep_folder, self.baselines, kept, cutoff, "baselines_deleted", report)
        log.info("cache gc: %s", report)
        return report

    def _sweep(self, known: set[str], cutoff: float, temp_cutoff: float, report: GcReport) -> None:
        """Delete files on disk that no row knows, temps and quarantined files (worker thread)."""
        _sweep_folder(self.assets_dir, known, cutoff, "orphans_deleted", report)
        _sweep_folder(self.root / "tmp", set(), temp_cutoff, "temps_deleted", report)
        _sweep_folder(self.root / "quarantine", set(), cutoff, "quarantine_deleted", report)

    async def verify(self) -> VerifyReport:
        """Re-hash every cached asset; quarantine files whose hash does not match and mark missing ones."""
        report = VerifyReport()
        rows = await self.db.read(assets.asset_files, False)
        for row in rows:
            sha, path = row["sha256"], self.path_for(row["sha256"], row["ext"])
            report.checked += 1
            try:
                actual = await asyncio.to_thread(sha256_file, path)
            except FileNotFoundError:
                if self.db.dialect == "postgresql":
                    # a shared store lists every agent's assets; each agent's cache holds only what its own
                    # items needed (a missing one is fetched again when an item here needs it)
                    report.checked -= 1
                    continue
                report.missing.append(VerifyProblem(sha, str(path)))
                await self.db.write(assets.quarantine, sha)
                continue
            if actual == sha:
                continue
            async with self._placing.alone():
                moved = await asyncio.to_thread(self._quarantine, path)
                await self.db.write(assets.quarantine, sha)
            report.mismatched.append(VerifyProblem(sha, str(path), actual, str(moved)))
            log.warning("cache asset %s is corrupt (hashes to %s); quarantined at %s", path, actual, moved)
        return report

    def _quarantine(self, path: Path) -> Path:
        """Move a corrupt file to root/quarantine/ under a name that cannot collide."""
        target_dir = self.root / "quarantine"
        target_dir.mkdir(parents=True, exist_ok=True)
        target = target_dir / f"{path.name}.{secrets.token_hex(4)}"
        os.replace(path, target)
        os.utime(target, (self.clock.now(), self.clock.now()))
        return target


def _check_entity(entity_type: str) -> None:
    """Refuse an unknown entity type with a clear message."""
    if entity_type not in ENTITY_TYPES:
        raise UserError(f"entity type '{entity_type}' is not one of {', '.join(ENTITY_TYPES)}")
