"""Where a webhook's paths are for us: remote -> local through the source's mappings, then the library."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from agent.config import Config, LibraryConfig
from agent.errors import PathError, PermanentFailure
from agent.hints import HintEpisode, HintImage, Hints
from agent.paths import PathMapper, resolve_inside
from agent.webhooks.model import WebhookEvent


class OutsideLibraries(PermanentFailure):
    """A sender's path maps to no library of this agent (on a shared store another agent may hold it)."""


@dataclass(frozen=True)
class Place:
    """A local path (normalised, not symlink-resolved) and the library that holds it."""

    library: LibraryConfig
    path: str


class Locator:
    """Maps a sender's paths to ours and finds the library holding them (the longest root wins)."""

    def __init__(self, cfg: Config, source: str) -> None:
        source_cfg = cfg.sources.get(source)
        mappings = source_cfg.path_mappings if source_cfg else ()
        self.source = source
        self.mapper = PathMapper([{"remote": m.remote, "local": m.local} for m in mappings], name=source)
        self.libraries = cfg.libraries
        self.roots = [lib.path for lib in cfg.libraries]

    def tried(self) -> str:
        """The mappings as a message fragment."""
        shown = ", ".join(str(m) for m in self.mapper.mappings)
        return shown or "none (paths taken as-is)"

    def locate(self, remote: str) -> Place:
        """Map a sender path and find its library; PermanentFailure naming the path and mappings otherwise."""
        try:
            local = os.path.normpath(self.mapper.to_local(remote))
        except PathError as exc:
            raise PermanentFailure(
                exc.message,
                detail={"path": remote, "mappings": self.tried()},
            ) from None
        best: tuple[int, LibraryConfig] | None = None
        for lib in self.libraries:
            try:
                resolve_inside(local, [lib.path])
            except PathError:
                continue
            depth = len(Path(os.path.realpath(lib.path)).parts)
            if best is None or depth > best[0]:
                best = (depth, lib)
        if best is None:
            libs = ", ".join(f"{lib.name}: {lib.path}" for lib in self.libraries) or "none configured"
            raise OutsideLibraries(
                f"{self.source} path '{remote}' maps to '{local}', which is outside every library ({libs}); "
                f"{self.source} path mappings tried: {self.tried()}",
                detail={"path": remote, "local": local, "mappings": self.tried()},
            )
        return Place(best[1], local)


def hints_of(event: WebhookEvent, locator: Locator | None = None) -> Hints:
    """What a scan or enrich gets from the sender: title, year, overview, genres, ids, images, episodes.

    Episode files are mapped to our paths through `locator`; without one they are left unknown.
    """
    episodes: tuple[HintEpisode, ...] = ()
    if event.source == "sonarr":
        episodes = tuple(
            HintEpisode(
                season=ep.season,
                episode=ep.episode,
                title=ep.title,
                aired=ep.aired,
                overview=ep.overview,
                tvdb_id=ep.tvdb_id,
                file=locator.locate(ep.file).path if ep.file and locator is not None else None,
            )
            for ep in event.episodes
        )
    return Hints(
        title=event.series_title or event.title,
        year=event.year,
        overview=event.overview if event.media_kind != "episode" else None,
        genres=tuple(event.genres),
        ids={f"{k}_id": v for k, v in event.ids.items()},
        images=tuple(HintImage(i.type, i.url) for i in event.images),
        episodes=episodes,
    )
