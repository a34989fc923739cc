"""Warnings `GET /api/health` reports, as Radarr's System > Health: conditions the user can fix.

DESIGN.md section 10: `warnings: [{"code": ..., "message": ..., "subject": ...}]`. Two sources:
- raised warnings (`HealthWarnings`): parts of the agent raise and clear them as conditions come and go
  (the database writer thread notices a full disk, a scan a vanished library root). One warning per
  (code, subject): raising it again replaces its message, clearing it removes it. Any thread may call these.
- checked warnings (`check_system`): looked at on every health request, blocking (stat, scandir,
  statvfs), so the caller runs them off the event loop: no provider key, a library root missing or
  empty, a player unreachable, ffprobe missing, a disk nearly full.
Each message says what the user gets because of it and where to fix it.
"""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from agent.config_checks import mask_values
from agent.config_model import Config

LIBRARY_ROOT_MISSING: Final = "library_root_missing"
LIBRARY_ROOT_EMPTY: Final = "library_root_empty"
PROVIDER_KEY_MISSING: Final = "provider_key_missing"
PLAYER_UNREACHABLE: Final = "player_unreachable"
FFPROBE_MISSING: Final = "ffprobe_missing"
DISK_LOW: Final = "disk_low"
# A disk is "nearly full" below either figure (whichever is reached first).
DISK_LOW_FRACTION: Final = 0.05
DISK_LOW_BYTES: Final = 1 << 30


class HealthWarnings:
    """The agent's current raised warnings, in the order they were first raised."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._items: dict[tuple[str, str | None], dict[str, Any]] = {}

    def raise_warning(self, code: str, message: str, subject: str | None = None) -> None:
        """Add a warning, or replace the message of the one with this code and subject."""
        with self._lock:
            self._items[(code, subject)] = {"code": code, "message": message, "subject": subject}

    def clear(self, code: str, subject: str | None = None) -> None:
        """Remove the warning with this code and subject (nothing happens when there is none)."""
        with self._lock:
            self._items.pop((code, subject), None)

    def items(self) -> list[dict[str, Any]]:
        """Copies of the current warnings, for /api/health."""
        with self._lock:
            return [dict(w) for w in self._items.values()]


@dataclass(frozen=True)
class Probes:
    """How the checks look at the machine (tests swap them for fakes)."""

    which: Callable[[str], str | None] = shutil.which
    disk_usage: Callable[[str], Any] = shutil.disk_usage  # -> (total, used, free)
    device: Callable[[str], int] = field(default=lambda path: os.stat(path).st_dev)
    # Which names are OS litter, not content (the web layer passes agent.library.naming.is_junk).
    junk: Callable[[str], bool] = field(default=lambda name: name.startswith("."))


def _warning(code: str, message: str, subject: str | None) -> dict[str, Any]:
    return {"code": code, "message": message, "subject": subject}


def _where(cfg: Config) -> str:
    """The config file as messages name it."""
    return str(cfg.path) if cfg.path else "the config file"


def provider_warnings(cfg: Config) -> list[dict[str, Any]]:
    """No TMDB key: what the user gets without one and where to set it."""
    if cfg.providers.tmdb.api_key:
        return []
    return [_warning(
        PROVIDER_KEY_MISSING,
        "No TMDB API key: movies and shows are named only from their folders, NFO files and Radarr/Sonarr "
        "webhooks; no plot, cast or artwork is downloaded and items without an NFO stay unidentified. "
        f"Set providers.tmdb.api_key in {_where(cfg)} (a free key from themoviedb.org > Settings > API), "
        "restart the agent, then press Scan.",
        "tmdb")]


def _has_content(path: Path, junk: Callable[[str], bool]) -> bool:
    """Whether a folder holds anything but OS litter (stops at the first such entry)."""
    with os.scandir(path) as entries:
        return any(not junk(e.name) for e in entries)


def library_warnings(cfg: Config, probes: Probes) -> list[dict[str, Any]]:
    """A library root that is missing, not a folder, unreadable or empty."""
    out = []
    for lib in cfg.libraries:
        where = f"Check libraries: {lib.name} path in {_where(cfg)}, or mount the disk"
        try:
            if not lib.path.is_dir():
                what = "is not a folder" if lib.path.exists() else "does not exist"
                out.append(_warning(LIBRARY_ROOT_MISSING,
                                    f"Library {lib.name}: {lib.path} {what}; scans find nothing and its items "
                                    f"are not updated. {where}.", lib.name))
            elif not _has_content(lib.path, probes.junk):
                out.append(_warning(LIBRARY_ROOT_EMPTY,
                                    f"Library {lib.name}: {lib.path} is empty. If the disk is not mounted, "
                                    f"mount it; else add media there and press Scan. {where}.", lib.name))
        except OSError as exc:
            out.append(_warning(LIBRARY_ROOT_MISSING,
                                f"Library {lib.name}: {lib.path} cannot be read ({exc.strerror or exc}). "
                                f"Give the agent's user read access. {where}.", lib.name))
    return out


def player_warnings(players: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """A player the agent could not reach on its last try, with that error."""
    out = []
    for row in players:
        if row.get("state") != "unreachable":
            continue
        error = mask_values(str(row.get("last_error") or "no error recorded"))
        error = error.removeprefix(f"player '{row['name']}': ")
        out.append(_warning(PLAYER_UNREACHABLE,
                            f"Player {row['name']} is unreachable: {error}. It is not told to rescan after "
                            "changes until it answers. Check that it is running and that its url, user and "
                            "password under players: are right, then press Test.", row["name"]))
    return out


def ffprobe_warnings(probes: Probes, configured: str = "auto") -> list[dict[str, Any]]:
    """ffprobe not on PATH (or not at probe.ffprobe): NFOs carry no stream details; none when turned off."""
    if configured == "off" or probes.which("ffprobe" if configured == "auto" else configured):
        return []
    return [_warning(FFPROBE_MISSING,
                     "ffprobe is not installed: NFOs get no stream details (codec, resolution, audio "
                     "languages), so players show less about each file. Install ffmpeg (Debian: apt install "
                     "ffmpeg; Docker images include it) and restart the agent.", "ffprobe")]


def _gib(n: float) -> str:
    return f"{n / (1 << 30):.1f} GiB"


def disk_warnings(cfg: Config, probes: Probes) -> list[dict[str, Any]]:
    """data_dir or a library root on a disk with less than 5 % or 1 GiB free (one warning per disk)."""
    out = []
    seen: set[int] = set()
    places = [("data_dir", cfg.data_dir)] + [(f"library {lib.name}", lib.path) for lib in cfg.libraries]
    for label, path in places:
        try:
            dev = probes.device(str(path))
            if dev in seen:
                continue
            seen.add(dev)
            total, _used, free = probes.disk_usage(str(path))
        except OSError:
            continue  # a missing library root has its own warning
        if total <= 0 or (free >= DISK_LOW_BYTES and free / total >= DISK_LOW_FRACTION):
            continue
        out.append(_warning(DISK_LOW,
                            f"The disk holding {label} ({path}) is nearly full: {_gib(free)} free of "
                            f"{_gib(total)} ({free / total:.0%}). Writing NFOs, artwork and the database fails "
                            "when it fills up: free some space.", str(path)))
    return out


def check_system(cfg: Config, players: Iterable[Mapping[str, Any]], probes: Probes | None = None
                 ) -> list[dict[str, Any]]:
    """Every checked warning, now (blocking: run it in a thread)."""
    probes = probes or Probes()
    return (provider_warnings(cfg) + library_warnings(cfg, probes) + player_warnings(players)
            + ffprobe_warnings(probes, cfg.probe.ffprobe) + disk_warnings(cfg, probes))


def merge_warnings(raised: list[dict[str, Any]], checked: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The raised warnings, then the checked ones they do not already cover.

    A raised warning knows more (a scan that found a root empty while the store holds its items says
    so), so it wins over a check with the same code and subject, and a raised library_root_missing
    covers the check's library_root_empty of that library.
    """
    keys = {(w["code"], w["subject"]) for w in raised}
    keys |= {(LIBRARY_ROOT_EMPTY, subject) for code, subject in list(keys) if code == LIBRARY_ROOT_MISSING}
    return raised + [w for w in checked if (w["code"], w["subject"]) not in keys]
