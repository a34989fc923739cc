"""Helpers for player tests: configs pointing at fake Kodi/Jellyfin, and movie/episode rows."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from agent.services import Services as Agent
from fakes.jellyfin import FakeJellyfin
from fakes.kodi import FakeKodi

NAS_MOVIES = "smb://nas/movies/"
NAS_TV = "smb://nas/tv/"


def kodi_player(
    name: str, fake: FakeKodi | None, group: str = "", port: int = 0, **extra: Any
) -> dict[str, Any]:
    """A kodi player entry for the config; `fake=None` points at a closed port (`port`)."""
    url = fake.url if fake is not None else f"http://127.0.0.1:{port}/jsonrpc"
    ws_port = int(fake.ws_url.rsplit(":", 1)[1].split("/")[0]) if fake is not None and fake.ws_url else port
    entry = {"name": name, "type": "kodi", "url": url, "ws_port": ws_port, **extra}
    if group:
        entry["group"] = group
    return entry


def jellyfin_player(name: str, fake: FakeJellyfin, **extra: Any) -> dict[str, Any]:
    """A jellyfin player entry for the config."""
    return {"name": name, "type": "jellyfin", "url": fake.url, "api_key": fake.api_key, **extra}


def nas_mappings(tmp_path: Path) -> list[dict[str, str]]:
    """Map the test libraries to how a NAS-backed Kodi sees them."""
    return [
        {"remote": NAS_MOVIES, "local": str(tmp_path / "media" / "movies")},
        {"remote": NAS_TV, "local": str(tmp_path / "media" / "tv")},
    ]


def _insert_movie(conn: sqlite3.Connection, folder: str, file: str, title: str, year: int) -> int:
    """Insert a movie row in the Movies library."""
    lib = conn.execute("SELECT id FROM libraries WHERE name = 'Movies'").fetchone()["id"]
    return conn.execute(
        "INSERT INTO movies (library_id, path, file, title, year, created_at, updated_at)"
        " VALUES (?, ?, ?, ?, ?, 0, 0)",
        (lib, folder, file, title, year),
    ).lastrowid


async def add_movie(
    agent: Agent, tmp_path: Path, title: str, year: int, file_name: str | None = None
) -> tuple[int, str, str]:
    """Create a movie folder + file under the Movies library and its row; returns (id, folder, file)."""
    folder = tmp_path / "media" / "movies" / f"{title} ({year})"
    folder.mkdir(parents=True, exist_ok=True)
    file = folder / (file_name or f"{title} ({year}).mkv")
    file.write_bytes(b"video")
    movie_id = await agent.db.write(_insert_movie, str(folder), str(file), title, year)
    return movie_id, str(folder), str(file)


def _insert_episode(conn: sqlite3.Connection, show: str, file: str, season: int, episode: int) -> int:
    """Insert (or reuse) a series row and insert an episode row."""
    lib = conn.execute("SELECT id FROM libraries WHERE name = 'TV'").fetchone()["id"]
    row = conn.execute("SELECT id FROM series WHERE path = ?", (show,)).fetchone()
    series_id = (
        row["id"]
        if row
        else conn.execute(
            "INSERT INTO series (library_id, path, title, created_at, updated_at)"
            " VALUES (?, ?, 'Show', 0, 0)",
            (lib, show),
        ).lastrowid
    )
    return conn.execute(
        "INSERT INTO episodes (series_id, season, episode, file, title, created_at, updated_at)"
        " VALUES (?, ?, ?, ?, 'Ep', 0, 0)",
        (series_id, season, episode, file),
    ).lastrowid


async def add_episode(agent: Agent, tmp_path: Path, show: str, season: int, episode: int) -> tuple[int, str]:
    """Create an episode file under the TV library and its rows; returns (episode id, file)."""
    folder = tmp_path / "media" / "tv" / show / f"Season {season:02d}"
    folder.mkdir(parents=True, exist_ok=True)
    file = folder / f"{show} S{season:02d}E{episode:02d}.mkv"
    file.write_bytes(b"video")
    episode_id = await agent.db.write(
        _insert_episode, str(tmp_path / "media" / "tv" / show), str(file), season, episode
    )
    return episode_id, str(file)
