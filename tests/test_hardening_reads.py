"""Hostile files beside the media: FIFOs, devices, folders and links out are refused, reads are capped.

Every blocking candidate runs under a deadline (a thread join or a FIFO watchdog), so a regression
fails instead of hanging the suite.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import threading
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from conftest import HEADERS, make_config
from fakes.images import png_bytes

from agent.clock import FakeClock
from agent.errors import PermanentFailure, UnsafeUserFile
from agent.jobs.webhook import remove_own_files
from agent.nfo.model import MAX_NFO_BYTES
from agent.userfiles import read_user_file

MATRIX = "The Matrix (1999)"
SECRET = "SECRET-OUTSIDE-TITLE"
Factory = Callable[..., Awaitable[Any]]


@contextmanager
def fifo_watchdog(fifo: Path, seconds: float = 5.0) -> Iterator[list[bool]]:
    """After `seconds`, keep opening `fifo` for writing so a blocked reader gets EOF; yields [True] if it had to."""
    done = threading.Event()
    tripped: list[bool] = []

    def run() -> None:
        if done.wait(seconds):
            return
        tripped.append(True)
        while not done.is_set():
            try:
                fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
            except OSError:  # ENXIO: nobody is reading it right now
                pass
            else:
                os.close(fd)
            done.wait(0.05)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        yield tripped
    finally:
        done.set()
        thread.join(5)


def in_thread(call: Callable[[], Any], seconds: float = 5.0) -> Any:
    """Run `call` in a daemon thread; its result or exception, or AssertionError when it is still running."""
    out: list[Any] = []

    def run() -> None:
        try:
            out.append((True, call()))
        except BaseException as exc:  # handed to the test thread below
            out.append((False, exc))

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    assert out, f"still blocked after {seconds} s"
    ok, value = out[0]
    if not ok:
        raise value
    return value


# ------------------------------------------------------------------ read_user_file


def test_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    """A FIFO is never opened for a read that would wait for a writer: a clear error naming it."""
    fifo = tmp_path / "movie.nfo"
    os.mkfifo(fifo)
    with fifo_watchdog(fifo) as tripped, pytest.raises(UnsafeUserFile) as err:
        in_thread(lambda: read_user_file(fifo, [tmp_path], MAX_NFO_BYTES))
    assert not tripped
    assert str(fifo) in err.value.message and "named pipe (FIFO)" in err.value.message
    assert isinstance(err.value, PermanentFailure)  # the queue never retries it


def test_devices_folders_and_oversized_files_are_refused(tmp_path: Path) -> None:
    """/dev/zero (through a link, even where links may go anywhere), a folder, and a file over the cap."""
    zero = tmp_path / "zero.nfo"
    zero.symlink_to("/dev/zero")
    for roots in ([tmp_path], ["/"], None):
        with pytest.raises(UnsafeUserFile) as err:
            in_thread(lambda roots=roots: read_user_file(zero, roots, MAX_NFO_BYTES))
        expected = "outside the library folders" if roots == [tmp_path] else "character device"
        assert expected in err.value.message
    (tmp_path / "folder.nfo").mkdir()
    with pytest.raises(UnsafeUserFile, match="is a folder, not a regular file"):
        read_user_file(tmp_path / "folder.nfo", [tmp_path], MAX_NFO_BYTES)
    big = tmp_path / "big.nfo"
    big.write_bytes(b"x" * 101)
    with pytest.raises(UnsafeUserFile, match=r"big\.nfo is larger than 100 bytes"):
        read_user_file(big, [tmp_path], 100)
    assert read_user_file(big, [tmp_path], 101) == b"x" * 101
    with pytest.raises(FileNotFoundError):
        read_user_file(tmp_path / "gone.nfo", [tmp_path], 100)


def test_links_are_followed_only_inside_the_roots(tmp_path: Path) -> None:
    """A link (file or folder) staying inside the library is read; one leading out is refused."""
    library, outside = tmp_path / "library", tmp_path / "outside"
    (library / "Movie").mkdir(parents=True)
    outside.mkdir()
    (outside / "secret.nfo").write_text(SECRET)
    (library / "shared.nfo").write_text("<movie/>")
    (library / "Movie" / "inside.nfo").symlink_to(library / "shared.nfo")
    (library / "Movie" / "out.nfo").symlink_to(outside / "secret.nfo")
    (library / "Linked").symlink_to(outside, target_is_directory=True)
    (library / "Alias").symlink_to(library / "Movie", target_is_directory=True)
    assert read_user_file(library / "Movie" / "inside.nfo", [library], 100) == b"<movie/>"
    assert read_user_file(library / "Alias" / "inside.nfo", [library], 100) == b"<movie/>"
    for path in (library / "Movie" / "out.nfo", library / "Linked" / "secret.nfo"):
        with pytest.raises(UnsafeUserFile, match="outside the library folders"):
            read_user_file(path, [library], 100)
    linked_root = tmp_path / "root-link"  # a library configured through a link is still its own inside
    linked_root.symlink_to(library, target_is_directory=True)
    assert read_user_file(linked_root / "Movie" / "inside.nfo", [linked_root], 100) == b"<movie/>"


def test_a_link_swapped_in_after_the_check_is_not_followed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """What is checked is what is opened: a folder turned into a link to outside between check and open is refused."""
    library, outside = tmp_path / "library", tmp_path / "outside"
    (library / "Movie").mkdir(parents=True)
    outside.mkdir()
    (outside / "movie.nfo").write_text(SECRET)
    (library / "Movie").rename(library / "Real")
    (library / "Movie").symlink_to(outside, target_is_directory=True)
    real_realpath = os.path.realpath

    def stale(path: Any, *args: Any, **kwargs: Any) -> str:  # the check sees the folder as it was
        return real_realpath(os.fspath(path).replace(str(outside), str(library / "Movie")), *args, **kwargs)

    monkeypatch.setattr(os.path, "realpath", stale)
    with pytest.raises(UnsafeUserFile):
        read_user_file(library / "Movie" / "movie.nfo", [library], 100)


# ------------------------------------------------------------------ scan and publish


@pytest.fixture
async def app(make_client: Factory, tmp_path: Path) -> Any:
    """The real app over empty Movies and TV libraries, no provider key (workers not started)."""
    return await make_client(make_config(tmp_path), clock=FakeClock())


def movie_folder(tmp_path: Path) -> Path:
    """The Matrix's folder with its video."""
    folder = tmp_path / "media" / "movies" / MATRIX
    folder.mkdir(parents=True)
    (folder / f"{MATRIX}.mkv").write_bytes(b"\x1aE\xdf\xa3 matrix video")
    return folder


async def scan(app: Any) -> None:
    """Queue a scan of Movies and drain the queue."""
    resp = await app.post("/api/libraries/Movies/scan", headers=HEADERS)
    assert resp.status in (200, 202), await resp.text()
    await app.agent.queue.run_until_idle()


async def publish(app: Any, movie_id: int) -> Any:
    """Queue a publish of the movie, drain, return the finished job."""
    job = await app.agent.queue.enqueue("publish", {"entity": "movie", "id": movie_id})
    await app.agent.queue.run_until_idle()
    return await app.agent.queue.get(job.id)


async def only_movie(app: Any) -> dict[str, Any]:
    """The one movie, as /api/movies/{id} shows it."""
    rows = await app.agent.db.fetchall("SELECT id FROM movies")
    assert len(rows) == 1
    resp = await app.get(f"/api/movies/{rows[0]['id']}", headers=HEADERS)
    assert resp.status == 200
    return await resp.json()


async def no_retries(app: Any) -> None:
    """Every job ran once and completed: nothing failed, nothing waits for a retry."""
    jobs, _ = await app.agent.queue.list()
    assert jobs and all(j.status == "completed" and j.attempts == 1 for j in jobs), [
        (j.type, j.status, j.attempts, j.error) for j in jobs
    ]


async def test_fifo_nfo_neither_hangs_the_scan_nor_the_publish(app: Any, tmp_path: Path) -> None:
    """A FIFO named like the movie's NFO: the scan finishes, the publish keeps the loop free, one item error."""
    fifo = movie_folder(tmp_path) / f"{MATRIX}.nfo"
    os.mkfifo(fifo)
    with fifo_watchdog(fifo) as tripped:
        await scan(app)
        movie = await only_movie(app)
        assert "named pipe (FIFO)" in movie["nfo_error"]
        job = await publish(app, movie["id"])
    assert not tripped, "a reader blocked on the FIFO"
    assert job.status == "completed" and "named pipe (FIFO)" in job.result["nfo_error"]
    assert fifo.is_fifo()  # left as it is
    assert "named pipe (FIFO)" in (await only_movie(app))["nfo_error"]
    await no_retries(app)


async def test_nfo_folder_is_one_item_error_not_a_retry_loop(app: Any, tmp_path: Path) -> None:
    """A folder named like the NFO: the publish completes once with nfo_error, never retried."""
    folder = movie_folder(tmp_path)
    (folder / f"{MATRIX}.nfo").mkdir()
    await scan(app)
    movie = await only_movie(app)
    job = await publish(app, movie["id"])
    assert job.status == "completed" and "is a folder" in job.result["nfo_error"]
    assert "is a folder" in (await only_movie(app))["nfo_error"]
    assert (folder / f"{MATRIX}.nfo").is_dir()
    await no_retries(app)


async def test_deeply_nested_nfo_is_one_item_error_not_a_retry_loop(app: Any, tmp_path: Path) -> None:
    """100,000 nested tags: the scan records the error, the publish leaves the file alone, no job retries."""
    nfo = movie_folder(tmp_path) / f"{MATRIX}.nfo"
    data = b"<movie><title>Deep</title>" + b"<a>" * 100_000 + b"</a>" * 100_000 + b"</movie>"
    nfo.write_bytes(data)
    await scan(app)
    movie = await only_movie(app)
    assert "nested deeper than" in movie["nfo_error"]
    job = await publish(app, movie["id"])
    assert job.status == "completed" and "nested deeper than" in job.result["nfo_error"]
    assert nfo.read_bytes() == data
    await no_retries(app)


async def test_nfo_linked_outside_the_library_is_never_read(app: Any, tmp_path: Path) -> None:
    """An NFO that is a link to a file outside the libraries: its values reach neither the DB nor our NFO."""
    outside = tmp_path / "outside"
    outside.mkdir()
    secret = outside / "secret.nfo"
    secret_bytes = f"<movie><title>{SECRET}</title><plot>{SECRET} plot</plot></movie>".encode()
    secret.write_bytes(secret_bytes)
    folder = movie_folder(tmp_path)
    (folder / f"{MATRIX}.nfo").symlink_to(secret)
    await scan(app)
    movie = await only_movie(app)
    assert "outside the library folders" in movie["nfo_error"] and movie["title"] == "The Matrix"
    job = await publish(app, movie["id"])
    assert "outside the library folders" in job.result["nfo_error"]
    assert secret.read_bytes() == secret_bytes
    for path in folder.rglob("*"):
        if path.is_file() and not path.is_symlink():
            assert SECRET.encode() not in path.read_bytes(), path
    for table in ("movies", "job_queue", "published_files"):
        for row in await app.agent.db.fetchall(f"SELECT * FROM {table}"):
            assert SECRET not in json.dumps([str(v) for v in tuple(row)]), table


def test_publish_read_of_a_link_to_dev_zero_stops(tmp_path: Path) -> None:
    """The publish's read of the existing NFO never reads /dev/zero without end (run under a memory limit)."""
    library = tmp_path / "library"
    library.mkdir()
    (library / "movie.nfo").symlink_to("/dev/zero")
    script = (
        "import resource, sys\n"
        "resource.setrlimit(resource.RLIMIT_AS, (768 << 20, 768 << 20))\n"
        "from pathlib import Path\n"
        "from agent.publish.edits import read_existing\n"
        "from agent.errors import AgentError\n"
        "try:\n"
        f"    read_existing(Path({str(library / 'movie.nfo')!r}), [Path({str(library)!r})])\n"
        "except AgentError as exc:\n"
        "    print(exc.message)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=30,
                          cwd=Path(__file__).parent.parent)
    assert done.returncode == 0, done.stderr[-500:]
    assert "existing NFO is a link to /dev/zero, outside the library folders" in done.stdout


async def test_fifo_video_does_not_hang_the_scan(app: Any, tmp_path: Path) -> None:
    """A FIFO named like a movie file: the scan (which hashes new videos) finishes, the FIFO is never opened."""
    folder = tmp_path / "media" / "movies" / MATRIX
    folder.mkdir(parents=True)
    fifo = folder / f"{MATRIX}.mkv"
    os.mkfifo(fifo)
    with fifo_watchdog(fifo) as tripped:
        await scan(app)
    assert not tripped, "the scan blocked on the FIFO"
    row = await app.agent.db.fetchone("SELECT file_hash FROM movies")
    assert row is not None and row["file_hash"] is None


def test_webhook_cleanup_never_blocks_on_a_fifo(tmp_path: Path) -> None:
    """A published file replaced by a FIFO is kept as changed; hashing it never waits for a writer."""
    library = tmp_path / "library"
    library.mkdir()
    fifo = library / "poster.jpg"
    os.mkfifo(fifo)
    with fifo_watchdog(fifo) as tripped:
        report = in_thread(lambda: remove_own_files([{"path": str(fifo), "sha256": "0" * 64}], [library]))
    assert not tripped and report["kept_changed"] == [str(fifo)] and fifo.is_fifo()


async def test_local_artwork_linked_outside_is_not_cached(app: Any, tmp_path: Path) -> None:
    """poster.jpg linked to an image outside the libraries is neither copied into the cache nor published."""
    outside = tmp_path / "outside"
    outside.mkdir()
    private = outside / "private.jpg"
    private.write_bytes(png_bytes(300, 450))
    folder = movie_folder(tmp_path)
    (folder / "poster.jpg").symlink_to(private)
    (folder / "fanart.jpg").write_bytes(png_bytes(640, 360))  # an ordinary local image still is
    await scan(app)
    movie = await only_movie(app)
    await publish(app, movie["id"])
    cached = {r["sha256"] for r in await app.agent.db.fetchall("SELECT sha256 FROM cache_assets")}
    assert hashlib.sha256(private.read_bytes()).hexdigest() not in cached
    assert hashlib.sha256((folder / "fanart.jpg").read_bytes()).hexdigest() in cached
    assert (folder / "poster.jpg").is_symlink()
