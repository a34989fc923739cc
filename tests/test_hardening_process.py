"""The process under stress (issue 11 items 10-12, 16): a damaged database, two agents, a full disk, slow clients."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from conftest import API_KEY, HEADERS, free_port, make_config, subprocess_env, wait_for, write_config
from test_serve import REPO, Served, get, wait_ready

from agent.clock import FakeClock
from agent.queue import JobContext, Queue
from agent.queue import worker as queue_mod
from agent.store import Database, migrate_file
from agent.store import db as dbmod
from agent.store import jobs as sql
from agent.web.app import BODY_TIMEOUT, HEADER_TIMEOUT, create_app, server_options

REFUSAL_DEADLINE = 15.0  # a refused start must end well within this (the old code hung forever)


def run_serve(config: Path) -> subprocess.CompletedProcess[str]:
    """Run `serve` to completion with a deadline; a start that hangs fails the test instead of the suite."""
    try:
        return subprocess.run([sys.executable, "-m", "agent", "serve", "--config", str(config)], cwd=REPO,
                              env=subprocess_env(), capture_output=True, text=True, timeout=REFUSAL_DEADLINE)
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"serve did not exit within {REFUSAL_DEADLINE} s; stderr so far:\n{exc.stderr!r}")


def one_error_line(result: subprocess.CompletedProcess[str]) -> str:
    """The single line a refused start prints (fails if it printed more, or a traceback)."""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("metarr-agent: error: "), result.stderr
    return lines[0]


def full_error() -> sqlite3.OperationalError:
    """The error SQLite raises when the disk holding the database is full (SQLITE_FULL)."""
    exc = sqlite3.OperationalError("database or disk is full")
    exc.sqlite_errorcode = 13  # type: ignore[attr-defined]
    exc.sqlite_errorname = "SQLITE_FULL"  # type: ignore[attr-defined]
    return exc


@pytest.fixture
def chattr_immutable() -> Iterator[Callable[[Path], None]]:
    """Mark files immutable (chattr +i); skips when the file system or the user cannot; undone afterwards."""
    marked: list[Path] = []

    def mark(path: Path) -> None:
        try:
            done = subprocess.run(["chattr", "+i", str(path)], capture_output=True, text=True, timeout=10)
        except FileNotFoundError:
            pytest.skip("chattr is not installed")
        if done.returncode != 0:
            pytest.skip(f"cannot make a file immutable here: {done.stderr.strip()}")
        marked.append(path)
        try:
            os.close(os.open(path, os.O_WRONLY | os.O_APPEND))
        except PermissionError:
            return
        pytest.skip("chattr +i does not stop writes here")

    yield mark
    for path in marked:
        subprocess.run(["chattr", "-i", str(path)], capture_output=True, timeout=10)


# ---------------------------------------------------------------- item 10: a damaged or read-only database


def test_garbage_database_exits_1_naming_the_file(tmp_path: Path) -> None:
    """A database file that is not SQLite stops `serve` at once: exit 1, one line naming the file and the way out."""
    config = write_config(tmp_path, extra={"server": {"port": free_port(), "api_key": ""}})
    db_path = tmp_path / "data" / "metarr.sqlite"
    db_path.parent.mkdir()
    db_path.write_bytes(b"this is not a database\n" * 500)
    result = run_serve(config)
    assert result.returncode == 1, result.stderr
    line = one_error_line(result)
    assert str(db_path) in line and "damaged" in line and "backup" in line
    assert not (tmp_path / "data" / "api_key").exists()


def test_damaged_page_exits_1(tmp_path: Path) -> None:
    """A database whose header is fine but one table's page is garbage is refused before serving, not served from."""
    config = write_config(tmp_path, extra={"server": {"port": free_port()}})
    db_path = tmp_path / "data" / "metarr.sqlite"
    migrate_file(db_path)
    conn = sqlite3.connect(db_path)
    root = conn.execute("SELECT rootpage FROM sqlite_master WHERE name = 'job_queue'").fetchone()[0]
    page = conn.execute("PRAGMA page_size").fetchone()[0]
    conn.close()
    data = bytearray(db_path.read_bytes())
    data[(root - 1) * page:root * page] = b"Z" * page
    db_path.write_bytes(bytes(data))
    result = run_serve(config)
    assert result.returncode == 1, result.stderr
    line = one_error_line(result)
    assert str(db_path) in line and "damaged" in line


def test_immutable_database_exits_1(tmp_path: Path, chattr_immutable: Callable[[Path], None]) -> None:
    """A database that cannot be written (chattr +i; root ignores modes) is refused at start: exit 1, no hang."""
    config = write_config(tmp_path, extra={"server": {"port": free_port()}})
    db_path = tmp_path / "data" / "metarr.sqlite"
    migrate_file(db_path)
    chattr_immutable(db_path)
    started = time.monotonic()
    result = run_serve(config)
    assert result.returncode == 1, result.stderr
    line = one_error_line(result)
    assert str(db_path) in line and "cannot be written" in line
    assert time.monotonic() - started < 10


# ---------------------------------------------------------------- item 11: one agent per data_dir, bind first


def test_second_agent_on_one_data_dir_exits_1_naming_the_first(tmp_path: Path) -> None:
    """The second agent on a data_dir exits 1 naming the first's PID; the first keeps serving."""
    port = free_port()
    config = write_config(tmp_path, extra={"server": {"port": port}})
    first = Served(config, tmp_path / "first.log")
    try:
        wait_ready(first, port)
        other = tmp_path / "other"
        other.mkdir()
        second_config = write_config(other, extra={"server": {"port": free_port()},
                                                   "data_dir": str(tmp_path / "data")})
        result = run_serve(second_config)
        assert result.returncode == 1, result.stderr
        line = one_error_line(result)
        assert f"PID {first.proc.pid}" in line and str(tmp_path / "data") in line
        assert get(port, "/api/health")[0] == 200
        assert first.stop() == 0, first.text()
    finally:
        first.close()


def test_locked_data_dir_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    """With data_dir locked, `serve` writes nothing there (no database, no key): the lock is taken first."""
    config = write_config(tmp_path, extra={"server": {"port": free_port(), "api_key": ""}})
    data = tmp_path / "data"
    data.mkdir()
    fd = os.open(data / "agent.lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        os.write(fd, f"{os.getpid()}\n".encode())
        result = run_serve(config)
    finally:
        os.close(fd)
    assert result.returncode == 1, result.stderr
    line = one_error_line(result)
    assert f"PID {os.getpid()}" in line
    assert sorted(p.name for p in data.iterdir()) == ["agent.lock"]


@pytest.mark.parametrize(("argv", "names"), [
    (["migrate"], "migrate"),
    (["scan", "--wait"], "without --wait"),
    (["cache", "gc"], "cache gc"),
    (["cache", "verify"], "cache verify"),
])
def test_cli_commands_that_change_data_dir_wait_for_no_agent(tmp_path: Path, argv: list[str], names: str) -> None:
    """migrate, scan --wait and cache refuse while an agent holds data_dir (naming its PID), and change nothing."""
    config = write_config(tmp_path, extra={"server": {"port": free_port()}})
    data = tmp_path / "data"
    data.mkdir(exist_ok=True)
    migrate_file(data / "metarr.sqlite")
    before = sorted(p.name for p in data.iterdir())
    fd = os.open(data / "agent.lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        os.write(fd, f"{os.getpid()}\n".encode())
        result = subprocess.run([sys.executable, "-m", "agent", *argv, "--config", str(config)], cwd=REPO,
                                env=subprocess_env(), capture_output=True, text=True, timeout=REFUSAL_DEADLINE)
    finally:
        os.close(fd)
    assert result.returncode == 1, result.stderr
    line = one_error_line(result)
    assert f"PID {os.getpid()}" in line and names in line
    assert sorted(p.name for p in data.iterdir()) == sorted({*before, "agent.lock"})


def test_port_in_use_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    """A taken port is found before migrations and key generation: one line, nothing written, nothing printed."""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        config = write_config(tmp_path, extra={"server": {"port": port, "api_key": ""}})
        result = run_serve(config)
    assert result.returncode == 1, result.stderr
    line = one_error_line(result)
    assert line.startswith(f"metarr-agent: error: cannot listen on 127.0.0.1:{port}: ")
    data = tmp_path / "data"
    assert not (data / "metarr.sqlite").exists() and not (data / "api_key").exists()


# ---------------------------------------------------------------- item 12: a full disk


async def test_full_disk_answers_503_and_health_warns(make_client: Callable[..., Any], tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """While writes fail for a full disk: 503 naming the cause, a database_disk_full warning; both clear after."""
    client = await make_client(make_config(tmp_path))
    db_path = str(tmp_path / "data" / "metarr.sqlite")
    real = dbmod._in_transaction
    full = True

    def maybe_full(conn: sqlite3.Connection, fn: Callable[..., Any], args: tuple) -> Any:
        """The write seam: refuse like a full disk while `full` is set."""
        if full:
            raise full_error()
        return real(conn, fn, args)

    monkeypatch.setattr(dbmod, "_in_transaction", maybe_full)
    resp = await client.post("/api/libraries/Movies/scan", headers=HEADERS)
    assert resp.status == 503
    body = await resp.json()
    assert "disk" in body["error"] and "full" in body["error"] and db_path in body["error"]
    health = await (await client.get("/api/health")).json()
    warning = [w for w in health["warnings"] if w["code"] == "database_disk_full"]
    assert len(warning) == 1 and warning[0]["subject"] == db_path and "full" in warning[0]["message"]

    full = False
    assert (await client.post("/api/libraries/Movies/scan", headers=HEADERS)).status == 202
    health = await (await client.get("/api/health")).json()
    assert [w for w in health["warnings"] if w["code"] == "database_disk_full"] == []


class FullDisk:
    """Makes outcome writes fail like a full disk, recording when each was tried (loop time)."""

    def __init__(self, db: Database) -> None:
        self.real = db.write
        self.full = True
        self.attempts: list[float] = []

    async def write(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Fail writes that carry outcomes while full; everything else goes through."""
        if fn is sql.flush_and_claim and args[0] and self.full:
            self.attempts.append(asyncio.get_running_loop().time())
            raise dbmod.DatabaseFull("database or disk is full")
        return await self.real(fn, *args)


async def test_outcome_writes_back_off_on_a_full_disk(db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    """Failed outcome writes are retried after doubling pauses up to a cap (not every poll); then written."""
    monkeypatch.setattr(queue_mod, "POLL_SECONDS", 0.005)
    monkeypatch.setattr(queue_mod, "RETRY_FIRST", 0.02)
    monkeypatch.setattr(queue_mod, "RETRY_CAP", 0.08)
    disk = FullDisk(db)
    monkeypatch.setattr(db, "write", disk.write)
    q = Queue(db, FakeClock(), workers=1, grace=0.1)

    async def quick(ctx: JobContext) -> str:
        """Finish at once."""
        return "done"

    q.register("quick", quick)
    job = await q.enqueue("quick")
    await q.start()
    try:
        await wait_for(lambda: len(disk.attempts) >= 6, timeout=5)
        gaps = [b - a for a, b in zip(disk.attempts, disk.attempts[1:], strict=False)]
        for i, gap in enumerate(gaps[:5]):
            assert gap >= 0.8 * min(0.02 * 2 ** i, 0.08), gaps
        assert max(gaps[:5]) < 0.5, gaps  # capped: it keeps trying
        disk.full = False
        await wait_for(lambda: status(db, job.id), timeout=5)
    finally:
        disk.full = False  # a failed assertion must not leave the queue unable to stop
        await q.stop()
    assert await status(db, job.id) == "completed"


async def status(db: Database, job_id: int) -> str | None:
    """The stored status of a job when it has ended, else None."""
    row = await db.fetchone("SELECT status FROM job_queue WHERE id = ?", (job_id,))
    return row["status"] if row["status"] in ("completed", "failed") else None


async def test_stop_on_a_full_disk_ends_within_the_grace(db: Database, monkeypatch: pytest.MonkeyPatch,
                                                         caplog: pytest.LogCaptureFixture) -> None:
    """SIGTERM's queue stop does not wait for the disk: it ends within the grace, the job is re-run next start."""
    monkeypatch.setattr(queue_mod, "RETRY_FIRST", 30.0)
    disk = FullDisk(db)
    monkeypatch.setattr(db, "write", disk.write)
    q = Queue(db, FakeClock(), workers=1, grace=0.2)

    async def quick(ctx: JobContext) -> str:
        """Finish at once."""
        return "done"

    q.register("quick", quick)
    job = await q.enqueue("quick")
    await q.start()
    await wait_for(lambda: disk.attempts, timeout=5)
    started = time.monotonic()
    with caplog.at_level(logging.ERROR, logger="agent.queue"):
        try:
            await asyncio.wait_for(q.stop(), timeout=3)
        except TimeoutError:
            disk.full = False
            await q.stop()
            pytest.fail("the queue did not stop within 3 s while the disk was full")
    assert time.monotonic() - started < 1.5
    row = await db.fetchone("SELECT status FROM job_queue WHERE id = ?", (job.id,))
    assert row["status"] == "running"  # recover() re-queues it at the next start
    assert "re-run after the next start" in caplog.text


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    """A 3 MiB tmpfs (skips where mounting is not allowed); unmounted afterwards."""
    mount = tmp_path / "tiny"
    mount.mkdir()
    try:
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(mount)],
                              capture_output=True, text=True, timeout=10)
    except FileNotFoundError:
        pytest.skip("mount is not available")
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], capture_output=True, timeout=10)


def fill(disk: Path) -> None:
    """Write a file until the disk has no space left."""
    fd = os.open(disk / "filler", os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        for size in (65536, 512):  # big blocks, then the last few bytes
            with contextlib.suppress(OSError):
                while True:
                    os.write(fd, b"\0" * size)
    finally:
        os.close(fd)


def post(port: int, path: str) -> int:
    """POST with the key; the status."""
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method="POST", headers=HEADERS)
    try:
        with urllib.request.urlopen(request, timeout=5) as resp:
            return resp.status
    except urllib.error.HTTPError as exc:
        return exc.code


def test_start_on_a_full_disk_exits_1(tmp_path: Path, tiny_disk: Path) -> None:
    """An agent started with its data_dir disk already full says so in one line and exits 1."""
    config = write_config(tmp_path, extra={"server": {"port": free_port()}, "data_dir": str(tiny_disk / "data")})
    db_path = tiny_disk / "data" / "metarr.sqlite"
    migrate_file(db_path)
    fill(tiny_disk)
    result = run_serve(config)
    assert result.returncode == 1, result.stderr
    line = one_error_line(result)
    assert str(db_path) in line and "the disk is full" in line


def test_serve_on_a_full_disk_warns_and_stops_within_the_grace(tmp_path: Path, tiny_disk: Path) -> None:
    """A real full disk: writes fail, /api/health says so, and SIGTERM ends the agent within the grace period."""
    grace = 2.0
    port = free_port()
    config = write_config(tmp_path, extra={"server": {"port": port}, "data_dir": str(tiny_disk / "data"),
                                           "jobs": {"grace_seconds": grace}})
    for i in range(150):
        folder = tmp_path / "media" / "movies" / f"Movie {i} (2001)"
        folder.mkdir(parents=True)
        (folder / f"Movie {i} (2001).mkv").write_bytes(b"x")
    served = Served(config, tmp_path / "serve.log")
    try:
        wait_ready(served, port)
        assert post(port, "/api/libraries/Movies/scan") == 202
        fill(tiny_disk)  # usually while the scan writes its 150 movies: its writes, then its outcome, fail
        assert post(port, "/api/libraries/TV/scan") in (202, 503)

        def warned() -> bool:
            """True once /api/health reports the full disk."""
            body = get(port, "/api/health")[1]
            return any(w["code"] == "database_disk_full" for w in body.get("warnings", []))

        deadline = time.monotonic() + 10
        while not warned():
            assert time.monotonic() < deadline, served.text()
            if served.proc.poll() is not None:
                pytest.fail(served.text())
            time.sleep(0.05)
        started = time.monotonic()
        served.proc.send_signal(signal.SIGTERM)
        try:
            code = served.proc.wait(timeout=grace + 8)
        except subprocess.TimeoutExpired:
            pytest.fail(f"SIGTERM ignored for {grace + 8} s:\n{served.text()[-3000:]}")
        assert time.monotonic() - started < grace + 3, served.text()[-3000:]
        assert code == 0, served.text()[-3000:]
    finally:
        served.close()


# ---------------------------------------------------------------- item 16: slow clients are timed out


def test_production_timeouts_are_bounded() -> None:
    """The served app closes a connection that has not sent its headers / body within these many seconds."""
    assert 0 < HEADER_TIMEOUT <= 30 and 0 < BODY_TIMEOUT <= 120
    assert server_options()["keepalive_timeout"] == HEADER_TIMEOUT


def closed_within(port: int, data: bytes, limit: float) -> float:
    """Send `data` and then nothing; seconds until the server closed the connection (fails after `limit`)."""
    with socket.create_connection(("127.0.0.1", port), timeout=limit) as sock:
        sock.sendall(data)
        started = time.monotonic()
        try:
            while sock.recv(65536):
                pass
        except TimeoutError:
            pytest.fail(f"the server kept a stalled connection open for over {limit} s")
        except ConnectionResetError:
            pass
        return time.monotonic() - started


async def test_half_a_request_line_is_closed_within_the_header_timeout(aiohttp_server: Any, tmp_path: Path) -> None:
    """A client that sends half a request line and stops is disconnected after the header timeout."""
    server = await aiohttp_server(create_app(make_config(tmp_path), api_key=API_KEY, start_workers=False),
                                  **server_options(header_timeout=0.3))
    took = await asyncio.to_thread(closed_within, server.port, b"GET /api/hea", 3.0)
    assert 0.25 <= took < 2.0


async def test_a_stalled_body_is_closed_within_the_body_timeout(aiohttp_server: Any, tmp_path: Path) -> None:
    """Headers promising 100 bytes, 10 sent, then silence: the connection is closed after the body timeout."""
    server = await aiohttp_server(create_app(make_config(tmp_path), api_key=API_KEY, start_workers=False,
                                             body_timeout=0.3),
                                  **server_options(header_timeout=5.0))
    head = (f"POST /api/webhooks/radarr HTTP/1.1\r\nHost: x\r\nX-Api-Key: {API_KEY}\r\n"
            "Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"eventType")
    took = await asyncio.to_thread(closed_within, server.port, head.encode(), 3.0)
    assert 0.25 <= took < 2.0


async def test_ordinary_clients_are_unaffected(aiohttp_server: Any, tmp_path: Path) -> None:
    """Requests that arrive whole, two on one kept-alive connection, are answered as before."""
    server = await aiohttp_server(create_app(make_config(tmp_path), api_key=API_KEY, start_workers=False,
                                             body_timeout=0.5),
                                  **server_options(header_timeout=0.5))
    async with aiohttp.ClientSession() as session:
        for _ in range(2):
            async with session.get(f"http://127.0.0.1:{server.port}/api/health") as resp:
                assert resp.status == 200
        async with session.post(f"http://127.0.0.1:{server.port}/api/webhooks/radarr", headers=HEADERS,
                                json={"eventType": "Test"}) as resp:
            assert resp.status == 200
