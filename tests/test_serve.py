"""`python -m agent serve` as a real subprocess: key generation, readiness, auth, SIGTERM, bad config."""

from __future__ import annotations

import json
import signal
import socket
import sqlite3
import stat
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import free_port, subprocess_env, write_config

from agent.store import migrate_file, schema_version

REPO = Path(__file__).resolve().parent.parent
START_TIMEOUT = 20.0


class Served:
    """A running agent subprocess with its stderr captured in a file."""

    def __init__(self, config: Path, log: Path) -> None:
        self.log = log
        self.stderr = log.open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "agent", "serve", "--config", str(config)],
            cwd=REPO, env=subprocess_env(), stdout=subprocess.DEVNULL, stderr=self.stderr)

    def text(self) -> str:
        """Everything the process wrote to stderr so far."""
        return self.log.read_text(encoding="utf-8", errors="replace")

    def stop(self) -> int:
        """SIGTERM, then the exit code (fails if it takes over 5 s)."""
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=5)
        finally:
            self.close()

    def close(self) -> None:
        """Kill the process if it is still running and close the log."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=5)
        self.stderr.close()


def get(port: int, path: str, key: str | None = None) -> tuple[int, dict]:
    """GET a JSON route on the served agent; (status, body)."""
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}")
    if key is not None:
        request.add_header("X-Api-Key", key)
    try:
        with urllib.request.urlopen(request, timeout=5) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def wait_ready(served: Served, port: int) -> None:
    """Poll /api/health until it answers, failing early if the process exits."""
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        if served.proc.poll() is not None:
            pytest.fail(f"agent exited with {served.proc.returncode}:\n{served.text()}")
        try:
            status, body = get(port, "/api/health")
            if status == 200 and body["status"] == "ok":
                return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        if time.monotonic() > deadline:
            pytest.fail(f"agent did not answer /api/health within {START_TIMEOUT} s:\n{served.text()}")
        time.sleep(0.05)


@pytest.fixture
def served(tmp_path: Path) -> Iterator[list[Served]]:
    """Processes started by a test; any still running at the end are killed."""
    started: list[Served] = []
    yield started
    for s in started:
        s.close()


def test_serve_generates_key_once_and_stops_on_sigterm(tmp_path: Path, served: list[Served]) -> None:
    """First start generates, saves (0600) and prints the key with the dashboard URL; SIGTERM exits 0."""
    port = free_port()
    config = write_config(tmp_path, extra={"server": {"port": port, "api_key": ""}})
    first = Served(config, tmp_path / "first.log")
    served.append(first)
    wait_ready(first, port)

    key_file = tmp_path / "data" / "api_key"
    assert key_file.exists()
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    key = key_file.read_text(encoding="utf-8").strip()
    assert len(key) >= 32
    log = first.text()
    assert f"http://127.0.0.1:{port}/?apikey={key}" in log
    assert f"API key:   {key}" in log
    assert "Traceback" not in log

    status, body = get(port, "/api/libraries", key)
    assert status == 200 and [lib["name"] for lib in body["items"]] == ["Movies", "TV"]
    status, body = get(port, "/api/libraries")
    assert status == 401 and "error" in body
    status, _ = get(port, "/api/libraries", "not-the-key")
    assert status == 401

    started = time.monotonic()
    assert first.stop() == 0, first.text()
    assert time.monotonic() - started < 5
    assert (tmp_path / "data" / "metarr.sqlite").exists()

    second = Served(config, tmp_path / "second.log")
    served.append(second)
    wait_ready(second, port)
    status, _ = get(port, "/api/libraries", key)
    assert status == 200
    assert second.stop() == 0, second.text()
    log = second.text()
    assert key not in log
    assert f"Dashboard: http://127.0.0.1:{port}/ (API key from {key_file})" in log
    assert key_file.read_text(encoding="utf-8").strip() == key


def test_serve_with_configured_key_never_prints_it(tmp_path: Path, served: list[Served]) -> None:
    """A key from the config works, is not written to data_dir and never appears in the output."""
    port = free_port()
    secret = "configured-key-abcdef"
    config = write_config(tmp_path, extra={"server": {"port": port, "api_key": secret}})
    proc = Served(config, tmp_path / "serve.log")
    served.append(proc)
    wait_ready(proc, port)
    assert get(port, "/api/libraries", secret)[0] == 200
    assert proc.stop() == 0
    assert secret not in proc.text()
    assert "API key from the config" in proc.text()
    assert not (tmp_path / "data" / "api_key").exists()


def test_serve_bad_config_exits_1_with_one_line(tmp_path: Path) -> None:
    """A bad config stops `serve` before it listens: exit 1, one line naming the key and line."""
    config = write_config(tmp_path, extra={"server": {"port": 70000}})
    result = run_serve(config)
    assert result.returncode == 1, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("metarr-agent: error: server.port: must be between 1 and 65535, got 70000")
    assert "(line 3)" in lines[0]
    assert result.stdout == ""


def run_serve(config: Path) -> subprocess.CompletedProcess[str]:
    """Run `serve` to completion (for starts that must fail)."""
    return subprocess.run([sys.executable, "-m", "agent", "serve", "--config", str(config)], cwd=REPO,
                          env=subprocess_env(), capture_output=True, text=True, timeout=30)


def test_serve_port_in_use_exits_1(tmp_path: Path) -> None:
    """A port another process listens on is a user error naming the address, not an internal error."""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        config = write_config(tmp_path, extra={"server": {"port": port}})
        result = run_serve(config)
    assert result.returncode == 1, result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith(f"metarr-agent: error: cannot listen on 127.0.0.1:{port}: ")
    assert "Traceback" not in result.stderr


def test_serve_refuses_newer_database(tmp_path: Path) -> None:
    """A database from a newer agent stops `serve` with exit 1 and the reason as the last line."""
    config = write_config(tmp_path, extra={"server": {"port": free_port(), "api_key": ""}})
    db_path = tmp_path / "data" / "metarr.sqlite"
    migrate_file(db_path)
    conn = sqlite3.connect(db_path)
    conn.execute(f"PRAGMA user_version = {schema_version() + 1}")
    conn.commit()
    conn.close()
    result = run_serve(config)
    assert result.returncode == 1, result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith(f"metarr-agent: error: the database is at schema version {schema_version() + 1}")
    assert "Traceback" not in result.stderr
    # refused before a key was generated: nothing printed but the reason, no key file
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert not (tmp_path / "data" / "api_key").exists()
