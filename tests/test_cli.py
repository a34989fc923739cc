"""The `metarr-agent` command line: exit codes, filters, whole jobs, a stopped agent, progress only on a TTY.

In-process through `main(argv)` where the behaviour is the CLI's own; as a subprocess where the
process boundary is the point (the real exit status, a real terminal, a real running agent).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import select
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import API_KEY, free_port, make_config, subprocess_env, write_config

from agent.cli import main
from agent.errors import PermanentFailure
from agent.process import DataDirLock, lock_holder
from agent.queue import JobContext, Queue
from agent.store import SqliteDatabase

REPO = Path(__file__).resolve().parent.parent
DEADLINE = 30.0
LONG_ERROR = ("TMDB answered 404 for /movie/603692 while enriching 'John Wick: Chapter 4 (2023)' "
              "after 3 tries; the id was taken from the NFO beside the file.\n"
              "second line: check the <uniqueid type=\"tmdb\"> in that NFO")


def cli(*argv: str) -> subprocess.CompletedProcess[str]:
    """Run `python -m agent ARGV` from the repository; stdout and stderr captured as text."""
    return subprocess.run([sys.executable, "-m", "agent", *argv], cwd=REPO, env=subprocess_env(),
                          capture_output=True, text=True, timeout=DEADLINE)


# ---------------------------------------------------------------- exit codes


@pytest.mark.parametrize("argv", [
    [],                                   # no command
    ["bogus"],                            # unknown command
    ["jobs", "--bogus"],                  # unknown option
    ["jobs", "--limit", "many"],          # wrong type
    ["cache", "shrink"],                  # not one of the choices
])
def test_usage_errors_exit_1_not_argparse_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    """A usage error is a user error: exit 1 (the README's 2 means an internal error), usage on stderr."""
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert err.startswith("usage: metarr-agent") and "error:" in err and "--help" in err


def test_usage_error_exit_status_of_the_real_process() -> None:
    """The installed entry point's process exits 1 on a usage error, 0 on --help and --version."""
    bad = cli("jobs", "--type")
    assert bad.returncode == 1, bad.stderr
    assert "argument --type: expected one argument" in bad.stderr
    assert cli("--help").returncode == 0
    version = cli("--version")
    assert version.returncode == 0 and version.stdout.startswith("metarr-agent ")


# ---------------------------------------------------------------- check-config


def test_check_config_lists_every_error_in_one_run(tmp_path: Path) -> None:
    """Five mistakes in one file: one run, exit 1, one line each naming key and line; nothing else."""
    movies = tmp_path / "movies"
    movies.mkdir()
    config = tmp_path / "agent.yaml"
    config.write_text(
        "server: {port: 99999}\n"
        f"data_dir: {tmp_path / 'data'}\n"
        "log_level: loud\n"
        "libraries:\n"
        f"  - {{name: Movies, kind: film, path: {movies}}}\n"
        "sources:\n"
        "  radarr:\n"
        f"    path_mappings: [{{remote: /movies, local: {tmp_path / 'not-mounted'}}}]\n",
        encoding="utf-8")
    done = cli("check-config", "--config", str(config))
    assert done.returncode == 1 and done.stdout == ""
    lines = done.stderr.strip().splitlines()
    assert [line.split(": ")[2] for line in lines] == [
        "server.port", "log_level", "libraries[0].kind", "sources.radarr.path_mappings[0]"]
    assert all(line.startswith("metarr-agent: error: ") and re.search(r"\(line \d+\)$", line) for line in lines)
    assert not (tmp_path / "data").exists()


def test_a_mapping_to_a_missing_local_folder_is_refused_naming_it(tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    """Source and player mappings: the local side must be a folder here; the error names the mapping."""
    shared = tmp_path / "shared"
    shared.mkdir()
    a_file = tmp_path / "a-file"
    a_file.write_text("x", encoding="utf-8")
    path = write_config(tmp_path, {
        "sources": {"sonarr": {"path_mappings": [{"remote": "/tv", "local": str(tmp_path / "nas-tv")},
                                                  {"remote": "/ok", "local": str(shared)}]}},
        "players": [{"name": "lr", "type": "kodi", "url": "http://127.0.0.1:8080/jsonrpc",
                     "path_mappings": [{"remote": "smb://nas/movies/", "local": str(a_file)}]}],
    })
    assert main(["check-config", "--config", str(path)]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 2, err
    assert lines[0].startswith("metarr-agent: error: sources.sonarr.path_mappings[0]: the mapping /tv -> ")
    assert f"local folder {tmp_path / 'nas-tv'} does not exist on this machine" in lines[0]
    assert lines[1].startswith("metarr-agent: error: players[0].path_mappings[0]: the mapping smb://nas/movies/ -> ")
    assert f"local folder {a_file} is not a folder" in lines[1]

    (tmp_path / "nas-tv").mkdir()
    a_file.unlink()
    a_file.mkdir()
    assert main(["check-config", "--config", str(path)]) == 0
    assert "OK" in capsys.readouterr().out


# ---------------------------------------------------------------- jobs


async def _fails_long(ctx: JobContext) -> None:
    """A job whose error is longer than the table's column and has two lines."""
    raise PermanentFailure(LONG_ERROR)


async def _ok(ctx: JobContext) -> dict:
    """A job that succeeds with a result."""
    return {"added": 1}


def seed(tmp_path: Path) -> Path:
    """A config whose database holds a completed scan (job 1) and a failed enrich (job 2)."""
    path = write_config(tmp_path)
    cfg = make_config(tmp_path)

    async def run() -> None:
        db = SqliteDatabase(cfg.data_dir / "metarr.sqlite")
        await db.open()
        try:
            q = Queue(db, max_retries=0)
            q.register("scan", _ok)
            q.register("enrich", _fails_long)
            await q.enqueue("scan", {"library": "Movies"})
            await q.enqueue("enrich", {"movie": 7})
            await q.run_until_idle()
        finally:
            await db.close()

    asyncio.run(run())
    return path


def test_jobs_filters_are_validated(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A misspelt --type or --status is an error listing the valid values, not "(no jobs)"."""
    path = seed(tmp_path)
    assert main(["jobs", "--type", "scna", "--config", str(path)]) == 1
    out, err = capsys.readouterr()
    assert out == "" and "unknown job type 'scna'" in err
    assert "webhook, scan, enrich, artwork, publish, notify_players" in err
    assert main(["jobs", "--status", "faild", "--config", str(path)]) == 1
    err = capsys.readouterr().err
    assert "unknown status 'faild'" in err and "pending, running, completed, failed, cancelled" in err

    assert main(["jobs", "--type", "scan", "--config", str(path)]) == 0
    rows = capsys.readouterr().out.splitlines()
    assert [r.split()[:2] for r in rows[1:]] == [["1", "scan"]]


def test_jobs_table_cuts_errors_and_id_shows_the_whole_job(tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    """The table marks a cut error and says how to see it; `--id N` prints it whole, lines kept."""
    path = seed(tmp_path)
    assert main(["jobs", "--config", str(path)]) == 0
    out = capsys.readouterr().out
    row = next(line for line in out.splitlines() if line.startswith("2 "))
    assert row.endswith("...") and LONG_ERROR not in out
    assert "`metarr-agent jobs --id N` shows the whole job" in out

    assert main(["jobs", "--id", "2", "--config", str(path)]) == 0
    out = capsys.readouterr().out
    assert "type:       enrich" in out and "status:     failed" in out and "tries:      1/1" in out
    for line in LONG_ERROR.splitlines():
        assert f"  {line}\n" in out
    assert '"movie": 7' in out

    assert main(["jobs", "--id", "2", "--json", "--config", str(path)]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["id"] == 2 and data["error"] == LONG_ERROR

    assert main(["jobs", "--id", "99", "--config", str(path)]) == 1
    assert "no job 99" in capsys.readouterr().err
    assert main(["jobs", "--id", "0", "--config", str(path)]) == 1
    assert "--id must be a job id" in capsys.readouterr().err


# ---------------------------------------------------------------- scan: a stopped agent


def test_scan_without_wait_refuses_when_no_agent_runs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """No agent holds data_dir's lock: exit 1, say so and how to start it or use --wait; queue nothing."""
    path = write_config(tmp_path)
    assert main(["scan", "Movies", "--config", str(path)]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert "the agent is not running" in err and "nothing was queued" in err
    assert f"metarr-agent serve --config {path}" in err
    assert f"metarr-agent scan Movies --wait --config {path}" in err
    assert not (tmp_path / "data").exists()  # not even a database or a lock file was made

    # an agent ran once and stopped: its lock file is left behind, but nobody holds it
    with DataDirLock(tmp_path / "data"):
        pass
    assert lock_holder(tmp_path / "data") is None
    assert main(["scan", "--config", str(path)]) == 1
    assert "the agent is not running" in capsys.readouterr().err
    assert not (tmp_path / "data" / "metarr.sqlite").exists()


def test_lock_holder_names_the_running_agent(tmp_path: Path) -> None:
    """A held lock is reported with the holder's PID; the probe itself never takes it from anyone."""
    with DataDirLock(tmp_path / "data"):
        assert lock_holder(tmp_path / "data") == os.getpid()
        assert lock_holder(tmp_path / "data") == os.getpid()  # the probe left it held
    assert lock_holder(tmp_path / "data") is None
    assert lock_holder(tmp_path / "nowhere") is None and not (tmp_path / "nowhere").exists()


@pytest.fixture
def agent_process(tmp_path: Path) -> Iterator[tuple[Path, int]]:
    """A real `serve` subprocess on a free port; yields (config path, port); stopped at the end."""
    port = free_port()
    path = write_config(tmp_path, {"server": {"port": port}})
    log = (tmp_path / "serve.log").open("wb")
    proc = subprocess.Popen([sys.executable, "-m", "agent", "serve", "--config", str(path)],
                            cwd=REPO, env=subprocess_env(), stdout=subprocess.DEVNULL, stderr=log)
    try:
        deadline = time.monotonic() + DEADLINE
        while True:
            assert proc.poll() is None, (tmp_path / "serve.log").read_text()
            try:
                if api(port, "/api/health")["status"] == "ok":
                    break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            assert time.monotonic() < deadline, "the agent did not start"
            time.sleep(0.05)
        yield path, port
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def api(port: int, route: str) -> dict:
    """GET a JSON route of the agent with the test key."""
    request = urllib.request.Request(f"http://127.0.0.1:{port}{route}", headers={"X-Api-Key": API_KEY})
    with urllib.request.urlopen(request, timeout=5) as resp:
        return json.loads(resp.read())


@pytest.mark.slow
def test_scan_without_wait_is_run_by_the_running_agent(tmp_path: Path, agent_process: tuple[Path, int],
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    """With `serve` running, the scan is queued, the message names the agent, and the agent runs it."""
    path, port = agent_process
    movie = tmp_path / "media" / "movies" / "Solo (2018)" / "Solo (2018).mkv"
    movie.parent.mkdir(parents=True)
    movie.write_bytes(b"\0" * 1024)
    assert main(["scan", "Movies", "--config", str(path)]) == 0
    out = capsys.readouterr().out
    found = re.match(r"queued scan of Movies: job (\d+) \(the agent, PID (\d+), runs it", out)
    assert found, out
    job_id = int(found.group(1))
    deadline = time.monotonic() + DEADLINE
    while (job := api(port, f"/api/jobs/{job_id}"))["status"] != "completed":
        assert job["status"] in ("pending", "running"), job
        assert time.monotonic() < deadline, job
        time.sleep(0.1)
    assert job["result"]["added"] == 1


# ---------------------------------------------------------------- scan --wait: progress only on a TTY


def _media(tmp_path: Path) -> Path:
    """A config with two movies in its Movies library."""
    path = write_config(tmp_path)
    for title in ("Solo (2018)", "Heat (1995)"):
        f = tmp_path / "media" / "movies" / title / f"{title}.mkv"
        f.parent.mkdir(parents=True)
        f.write_bytes(b"\0" * 1024)
    return path


def test_scan_wait_into_a_pipe_has_no_progress_frames(tmp_path: Path) -> None:
    """stdout and stderr are pipes: the summary only, no carriage-return frames anywhere."""
    done = cli("scan", "Movies", "--wait", "--config", str(_media(tmp_path)))
    assert done.returncode == 0, done.stderr
    assert done.stdout == "Movies: 2 added, 0 updated, 0 unchanged, 0 missing; 2 of 2 items published\n"
    assert "\r" not in done.stderr and "[" not in done.stderr


def test_scan_wait_on_a_terminal_draws_progress(tmp_path: Path) -> None:
    """stderr is a real pseudo-terminal: the progress line is drawn there; stdout (a pipe) has the summary."""
    path = _media(tmp_path)
    master, slave = os.openpty()
    try:
        proc = subprocess.Popen([sys.executable, "-m", "agent", "scan", "Movies", "--wait", "--config", str(path)],
                                cwd=REPO, env=subprocess_env(), stdout=subprocess.PIPE, stderr=slave, text=True)
        os.close(slave)
        drawn = b""
        deadline = time.monotonic() + DEADLINE
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.2)
            if ready:
                try:
                    chunk = os.read(master, 4096)
                except OSError:  # EIO: the child closed its side of the terminal
                    break
                if not chunk:
                    break
                drawn += chunk
            elif proc.poll() is not None:
                break
        out, _ = proc.communicate(timeout=DEADLINE)
    finally:
        os.close(master)
    assert proc.returncode == 0, drawn
    assert out == "Movies: 2 added, 0 updated, 0 unchanged, 0 missing; 2 of 2 items published\n"
    assert b"\rMovies: " in drawn
