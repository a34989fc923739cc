"""Helpers for the browser tests: the real agent as a restartable subprocess, a movie library, Chromium's launch."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from aiohttp import web
from conftest import API_KEY, subprocess_env

REPO = Path(__file__).resolve().parent.parent
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]
SCREENSHOTS = REPO / "artifacts" / "screenshots"
START_TIMEOUT = 20.0


class AgentProcess:
    """`python -m agent serve --config ...` on a fixed port; stop and start it again with the same data."""

    def __init__(self, config: Path, port: int, log: Path) -> None:
        self.config = config
        self.port = port
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None
        self.base = f"http://127.0.0.1:{port}"

    def start(self) -> None:
        """Start the process (appending to the log) and wait until /api/health answers."""
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "agent", "serve", "--config", str(self.config)],
                cwd=REPO, env=subprocess_env(), stdout=out, stderr=out)
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if self.proc.poll() is not None:
                raise AssertionError(f"agent exited with {self.proc.returncode}:\n{self.text()}")
            try:
                if self.request("GET", "/api/health")[0] == 200:
                    return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            if time.monotonic() > deadline:
                self.proc.kill()
                self.proc.wait(timeout=5)
                raise AssertionError(f"agent did not answer /api/health within {START_TIMEOUT} s:\n{self.text()}")
            time.sleep(0.05)

    def stop(self) -> None:
        """SIGTERM and wait for the exit (kill after 10 s)."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=5)

    def text(self) -> str:
        """What the agent logged so far."""
        return self.log.read_text(encoding="utf-8", errors="replace") if self.log.exists() else ""

    def request(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        """Call the agent's API with the key; (status, JSON body)."""
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.base + path, data=data, method=method,
                                     headers={"X-Api-Key": API_KEY, "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=5) as resp:
                return resp.status, json.loads(resp.read() or b"null")
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read() or b"null")

    def wait_job(self, job_id: int, timeout: float = 15.0) -> dict[str, Any]:
        """Poll a job until it is completed (fails on failed/cancelled or at the deadline)."""
        deadline = time.monotonic() + timeout
        while True:
            status, job = self.request("GET", f"/api/jobs/{job_id}")
            assert status == 200, job
            if job["status"] == "completed":
                return job
            assert job["status"] not in ("failed", "cancelled"), job
            if time.monotonic() > deadline:
                raise AssertionError(f"job {job_id} still {job['status']} after {timeout} s")
            time.sleep(0.05)

    def wait_idle(self, timeout: float = 15.0) -> None:
        """Poll /api/health until no job is pending or running."""
        deadline = time.monotonic() + timeout
        while True:
            queue = self.request("GET", "/api/health")[1]["queue"]
            if queue["pending"] == 0 and queue["running"] == 0:
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"queue not idle after {timeout} s: {queue}")
            time.sleep(0.05)

    def scan(self, library: str = "Movies") -> dict[str, Any]:
        """Enqueue a scan through the API and wait for it and its follow-up jobs."""
        status, reply = self.request("POST", f"/api/libraries/{library}/scan")
        assert status == 202, reply
        job = self.wait_job(reply["job_id"])
        self.wait_idle()
        return job


def add_movie(library: Path, title: str, year: int, tmdb_id: int) -> Path:
    """A movie folder with a video file and a Kodi NFO; returns the video path."""
    folder = library / f"{title} ({year})"
    folder.mkdir(parents=True, exist_ok=True)
    video = folder / f"{title} ({year}).mkv"
    video.write_bytes(b"\x1a\x45\xdf\xa3" + b"\0" * 1024)
    (folder / f"{title} ({year}).nfo").write_text(
        f'<?xml version="1.0" encoding="UTF-8"?>\n<movie><title>{title}</title><year>{year}</year>'
        f'<plot>A test film.</plot><uniqueid type="tmdb" default="true">{tmdb_id}</uniqueid></movie>\n',
        encoding="utf-8")
    return video


def screenshot_path(test_name: str) -> Path:
    """artifacts/screenshots/<test>.png (the folder is created)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in test_name)
    return SCREENSHOTS / f"{safe}.png"


class ThreadedApp:
    """An aiohttp app (a fake TMDB or Kodi) served on 127.0.0.1:`port` from its own thread and event loop,
    for the sync browser tests; `stop()` closes it."""

    def __init__(self, app: web.Application, port: int) -> None:
        self.app = app
        self.port = port
        self.base = f"http://127.0.0.1:{port}"
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.runner: web.AppRunner | None = None

    def start(self) -> ThreadedApp:
        """Listen (returns once the port accepts connections)."""
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self.loop).result(timeout=10)
        return self

    async def _start(self) -> None:
        self.runner = web.AppRunner(self.app)
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", self.port).start()

    def stop(self) -> None:
        """Close the server and its loop."""
        if self.runner is not None:
            asyncio.run_coroutine_threadsafe(self.runner.cleanup(), self.loop).result(timeout=10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)
        self.loop.close()
