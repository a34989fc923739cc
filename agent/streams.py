"""Stream details of media files (Kodi's fileinfo/streamdetails), from ffprobe, cached by file signature.

A file is opened once (a regular file inside the libraries only, never through a link leading out), its
signature (size, mtime_ns, inode) read from the open descriptor, and the answer looked up in the probe
cache: an unchanged file never runs ffprobe again, a replaced one (an upgrade) is probed afresh. ffprobe
reads that same descriptor, at most PROBE_CONCURRENCY at a time, one run per file even when several
episodes of one file ask together. A broken or partial file is a logged reason, never an error for the
item; without ffprobe nothing is probed and the NFO's tags are left as they are. `replaced` tells the
enricher a file changed since its last probe, so stream details held from another tool's NFO give way.
"""

from __future__ import annotations

import asyncio
import logging
import os
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from agent.clock import Clock
from agent.errors import UnsafeUserFile
from agent.probe import ProbeError, kodi_streamdetails, run_ffprobe
from agent.store import Database, probes
from agent.store.probes import FileSignature
from agent.userfiles import open_user_file

log = logging.getLogger("agent.streams")
PROBE_CONCURRENCY: Final = 2  # ffprobe reads the head of each file: a few at once, not a NAS-wide stampede


@dataclass(frozen=True)
class StreamInfo:
    """What is known of one file's streams: Kodi's streamdetails, or why there are none, and where it came from."""

    details: dict[str, Any] | None
    error: str | None = None
    source: str = "cache"  # "cache" (an earlier run on the same bytes), "ffprobe" (run now) or "none"
    replaced: bool = False  # probed now because the file changed since its last probe (an upgrade)

    def summary(self) -> str:
        """One word or a reason, for the enrich job's result."""
        return f"{self.source}: {self.error}" if self.error else self.source


async def _open(file: str, roots: Sequence[Path]) -> int:
    """open_user_file off the event loop; a descriptor opened after the caller was cancelled is closed, not leaked."""
    opening = asyncio.ensure_future(asyncio.to_thread(open_user_file, file, roots))
    try:
        return await asyncio.shield(opening)
    except asyncio.CancelledError:
        opening.add_done_callback(_close_opened)
        raise


def _close_opened(done: asyncio.Future[int]) -> None:
    """Close the descriptor an abandoned open returned (nothing when it failed)."""
    if not done.cancelled() and done.exception() is None:
        os.close(done.result())


class StreamProber:
    """Stream details of the agent's media files; `ffprobe` None means no probing (not installed or turned off)."""

    def __init__(self, db: Database, clock: Clock, ffprobe: str | None, timeout: float,
                 roots: Sequence[Path]) -> None:
        self.db = db
        self.clock = clock
        self.ffprobe = ffprobe
        self.timeout = timeout
        self.roots = list(roots)
        self._slots = asyncio.Semaphore(PROBE_CONCURRENCY)
        self._files: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()

    @property
    def available(self) -> bool:
        """Whether stream details are probed at all."""
        return self.ffprobe is not None

    async def details(self, file: str) -> StreamInfo:
        """The stream details of `file` now: cached for its current signature, else from ffprobe."""
        if self.ffprobe is None:
            return StreamInfo(None, "ffprobe is not available", "none")
        name = os.path.basename(file)
        try:
            fd = await _open(file, self.roots)
        except UnsafeUserFile as exc:
            return self._failed(file, exc.message)
        except OSError as exc:
            return self._failed(file, f"cannot open {name}: {exc.strerror or exc}")
        try:
            st = os.fstat(fd)
            sig = FileSignature(st.st_size, st.st_mtime_ns, st.st_ino)
            lock = self._files.setdefault(file, asyncio.Lock())
            async with lock:  # a second episode of the same file waits, then finds the first one's answer
                hit = await self.db.read(probes.cached, file, sig)
                if hit is not None:
                    return StreamInfo(hit.streamdetails, hit.error, "cache")
                replaced = await self.db.read(probes.probed_before, file)
                return await self._probe(file, fd, sig, name, replaced)
        finally:
            os.close(fd)

    async def _probe(self, file: str, fd: int, sig: FileSignature, name: str, replaced: bool) -> StreamInfo:
        """Run ffprobe on the open file and remember its answer (a timeout is not remembered)."""
        assert self.ffprobe is not None
        async with self._slots:
            try:
                data = await run_ffprobe(self.ffprobe, fd, self.timeout, name)
            except ProbeError as exc:
                if not exc.transient:  # the same bytes would fail the same way: remember it
                    await self.db.write(probes.save, file, sig, None, exc.reason, self.clock.now())
                return self._failed(file, exc.reason, "ffprobe")
        details = kodi_streamdetails(data)
        error = None if details else f"ffprobe found no video, audio or subtitle stream in {name}"
        await self.db.write(probes.save, file, sig, details, error, self.clock.now())
        if error:
            return self._failed(file, error, "ffprobe")
        return StreamInfo(details, None, "ffprobe", replaced)

    @staticmethod
    def _failed(file: str, reason: str, source: str = "none") -> StreamInfo:
        """Log why a file has no stream details (its NFO's tags stay as they are) and say so."""
        log.warning("no stream details for %s: %s", file, reason)
        return StreamInfo(None, reason, source)

    async def prune(self) -> int:
        """Forget probes of files no item holds any more."""
        return int(await self.db.write(probes.prune))
