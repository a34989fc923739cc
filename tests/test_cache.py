"""Tests for the content-addressed artwork cache against a real loopback HTTP server and SQLite."""

from __future__ import annotations

import asyncio
import os
import struct
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import ClientSession, web
from fakes.images import header_jpeg, png_bytes

from agent.cache import AssetCache
from agent.clock import FakeClock
from agent.errors import NotFound, RetryLater
from agent.imageinfo import AssetError, sniff_image
from agent.nfo.baseline import baseline_name
from agent.store import Database, SqliteDatabase

DAY = 86400.0


def make_png(width: int, height: int) -> bytes:
    """A valid PNG of the given size."""
    return png_bytes(width, height)


def make_jpeg(width: int, height: int) -> bytes:
    """A minimal JPEG whose SOF0 carries the size."""
    return header_jpeg(width, height)


PNG = make_png(40, 60)
PNG_OTHER = make_png(3, 2)
JPEG = make_jpeg(1920, 1080)


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    """A real, migrated database."""
    database = SqliteDatabase(tmp_path / "metarr.sqlite")
    await database.open()
    yield database
    await database.close()


@pytest.fixture
async def server_url(aiohttp_server) -> str:  # type: ignore[no-untyped-def]
    """A fake artwork host on 127.0.0.1."""

    async def png(request: web.Request) -> web.Response:
        return web.Response(body=PNG, content_type="image/png")

    async def jpeg(request: web.Request) -> web.Response:
        return web.Response(body=JPEG, content_type="image/jpeg")

    async def html(request: web.Request) -> web.Response:
        return web.Response(text="<!DOCTYPE html><html><body>Oops</body></html>", content_type="text/html")

    async def big(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse()  # chunked: no Content-Length, so the cap must trip while streaming
        await resp.prepare(request)
        await resp.write(PNG)
        for _ in range(20):
            await resp.write(b"\x00" * 1024)
        await resp.write_eof()
        return resp

    async def limited(request: web.Request) -> web.Response:
        return web.Response(status=429, headers={"Retry-After": "7"})

    async def broken(request: web.Request) -> web.Response:
        return web.Response(status=503)

    app = web.Application()
    app.router.add_get("/a.png", png)
    app.router.add_get("/same-as-a.png", png)
    app.router.add_get("/photo.jpg", jpeg)
    app.router.add_get("/error.png", html)
    app.router.add_get("/huge.png", big)
    app.router.add_get("/limited.png", limited)
    app.router.add_get("/broken.png", broken)
    server = await aiohttp_server(app)
    return str(server.make_url("/"))


@pytest.fixture
async def cache(db: Database, tmp_path: Path) -> AsyncIterator[AssetCache]:
    """A cache with a FakeClock, a shared session and a small size cap."""
    async with ClientSession() as session:
        yield AssetCache(db, tmp_path / "cache", session, FakeClock(), max_bytes=16 * 1024)


def _files(root: Path) -> list[Path]:
    """Every file under root/assets."""
    return sorted(p for p in (root / "assets").rglob("*") if p.is_file())


async def test_fetch_png_layout_and_size(cache: AssetCache, server_url: str, db: Database) -> None:
    """A PNG lands at assets/ab/cd/<sha>.png with its width/height recorded."""
    asset = await cache.fetch(server_url + "a.png")
    assert asset.ext == "png" and asset.mime == "image/png"
    assert (asset.width, asset.height) == (40, 60)
    assert asset.size == len(PNG)
    sha = asset.sha256
    assert asset.path == cache.root / "assets" / sha[:2] / sha[2:4] / f"{sha}.png"
    assert asset.path.read_bytes() == PNG
    row = await db.fetchone("SELECT * FROM cache_assets WHERE sha256 = ?", (sha,))
    assert row["source_url"] == server_url + "a.png" and row["width"] == 40
    assert list((cache.root / "tmp").iterdir()) == []


async def test_fetch_jpeg_dimensions(cache: AssetCache, server_url: str) -> None:
    """The JPEG SOF0 scan finds the size past other segments."""
    asset = await cache.fetch(server_url + "photo.jpg")
    assert (asset.ext, asset.width, asset.height) == ("jpg", 1920, 1080)


async def test_dedupe_same_bytes_two_urls(cache: AssetCache, server_url: str, db: Database) -> None:
    """Two URLs with the same bytes give one file and one row."""
    first = await cache.fetch(server_url + "a.png")
    second = await cache.fetch(server_url + "same-as-a.png")
    assert first.sha256 == second.sha256
    assert len(_files(cache.root)) == 1
    rows = await db.fetchall("SELECT * FROM cache_assets")
    assert len(rows) == 1 and rows[0]["source_url"] == server_url + "a.png"
    assert list((cache.root / "tmp").iterdir()) == []


async def test_html_error_page_rejected(cache: AssetCache, server_url: str, db: Database) -> None:
    """An HTML body served with 200 is refused with a message that says so."""
    with pytest.raises(AssetError, match="HTML"):
        await cache.fetch(server_url + "error.png")
    assert not (cache.root / "assets").exists() or _files(cache.root) == []
    assert await db.fetchall("SELECT * FROM cache_assets") == []
    assert list((cache.root / "tmp").iterdir()) == []


async def test_size_cap_while_streaming(cache: AssetCache, server_url: str) -> None:
    """A body past max_bytes aborts the download and leaves no temp file."""
    with pytest.raises(AssetError, match="larger than the 16384-byte limit"):
        await cache.fetch(server_url + "huge.png")
    assert list((cache.root / "tmp").iterdir()) == []


async def test_http_status_errors(cache: AssetCache, server_url: str) -> None:
    """429 and 5xx mean retry later (with Retry-After); 404 is a clear permanent error."""
    with pytest.raises(RetryLater) as limited:
        await cache.fetch(server_url + "limited.png")
    assert limited.value.delay == 7
    with pytest.raises(RetryLater, match="503"):
        await cache.fetch(server_url + "broken.png")
    with pytest.raises(AssetError, match="404"):
        await cache.fetch(server_url + "missing.png")
    with pytest.raises(AssetError, match="not an http"):
        await cache.fetch("file:///etc/passwd")


async def test_connection_refused_is_retry(cache: AssetCache, unused_tcp_port: int) -> None:
    """A peer that is down is a temporary failure."""
    with pytest.raises(RetryLater):
        await cache.fetch(f"http://127.0.0.1:{unused_tcp_port}/x.png")


async def test_store_bytes_and_file(cache: AssetCache, tmp_path: Path) -> None:
    """Local artwork and in-memory bytes go through the same checks."""
    local = tmp_path / "poster.jpg"
    local.write_bytes(JPEG)
    asset = await cache.store_file(local)
    assert asset.ext == "jpg" and asset.path.read_bytes() == JPEG and asset.source_url is None
    again = await cache.store_bytes(JPEG, source_url="https://example.invalid/p.jpg")
    assert again.sha256 == asset.sha256 and again.source_url == "https://example.invalid/p.jpg"
    with pytest.raises(AssetError, match="not a JPEG, PNG or WebP"):
        await cache.store_bytes(b"GIF89a......")
    with pytest.raises(AssetError, match="does not exist"):
        await cache.store_file(tmp_path / "nope.jpg")
    with pytest.raises(AssetError, match="empty"):
        await cache.store_bytes(b"")


async def test_known_bytes_are_not_written_again(
    cache: AssetCache, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Bytes the cache holds intact come back without a temp file; a damaged or missing copy is rewritten."""
    local = tmp_path / "poster.jpg"
    local.write_bytes(JPEG)
    first = await cache.store_file(local)
    temps: list[Path] = []
    real = cache._new_temp
    monkeypatch.setattr(cache, "_new_temp", lambda: temps.append(real()) or temps[-1])
    assert (await cache.store_file(local)).sha256 == first.sha256
    assert (await cache.store_bytes(JPEG, source_url="https://example.invalid/p.jpg")).path == first.path
    assert temps == []
    first.path.write_bytes(JPEG[:10])  # damaged on disk: the next store writes it again
    assert (await cache.store_bytes(JPEG)).path.read_bytes() == JPEG and len(temps) == 1
    first.path.unlink()
    assert (await cache.store_file(local)).path.read_bytes() == JPEG and len(temps) == 2


def test_sniff_webp_variants() -> None:
    """WebP sizes are read from VP8, VP8L and VP8X headers."""
    import io

    vp8 = (b"RIFF\x00\x00\x00\x00WEBPVP8 \x00\x00\x00\x00" + b"\x00\x00\x00\x9d\x01\x2a"
           + struct.pack("<HH", 300, 200))
    bits = (300 - 1) | ((200 - 1) << 14)
    vp8l = b"RIFF\x00\x00\x00\x00WEBPVP8L\x00\x00\x00\x00" + b"\x2f" + struct.pack("<I", bits)
    vp8x = (b"RIFF\x00\x00\x00\x00WEBPVP8X\x00\x00\x00\x00" + b"\x00\x00\x00\x00"
            + (300 - 1).to_bytes(3, "little") + (200 - 1).to_bytes(3, "little"))
    for data in (vp8, vp8l, vp8x):
        assert sniff_image(io.BytesIO(data)) == ("webp", 300, 200)


async def test_references_track_unreferenced_since(cache: AssetCache, server_url: str, db: Database) -> None:
    """Referencing clears unreferenced_since; replacing or removing the last reference sets it."""
    clock = cache.clock
    assert isinstance(clock, FakeClock)
    a = await cache.fetch(server_url + "a.png")
    b = await cache.store_bytes(PNG_OTHER)

    async def since(sha: str) -> float | None:
        row = await db.fetchone("SELECT unreferenced_since FROM cache_assets WHERE sha256 = ?", (sha,))
        return row["unreferenced_since"]

    assert await since(a.sha256) == clock.now()
    await cache.add_reference(a.sha256, "movie", 1, "poster")
    await cache.add_reference(a.sha256, "movie", 2, "poster")
    assert await since(a.sha256) is None
    await cache.set_library_path("movie", 1, "poster", 0, "/m/A/poster.png")
    refs = await cache.references("movie", 1)
    assert [(r.art_type, r.sha256, r.library_path) for r in refs] == [("poster", a.sha256, "/m/A/poster.png")]

    clock.advance(10)
    await cache.add_reference(b.sha256, "movie", 1, "poster")  # replaces: library path no longer valid
    refs = await cache.references("movie", 1)
    assert [(r.sha256, r.library_path) for r in refs] == [(b.sha256, None)]
    assert await since(a.sha256) is None  # movie 2 still uses it
    assert await cache.remove_references("movie", 2) == 1
    assert await since(a.sha256) == clock.now()
    assert await since(b.sha256) is None

    with pytest.raises(NotFound):
        await cache.add_reference("0" * 64, "movie", 1, "fanart")
    with pytest.raises(Exception, match="entity type"):
        await cache.add_reference(a.sha256, "album", 1, "poster")


async def test_gc_respects_references_and_grace(cache: AssetCache, server_url: str, db: Database) -> None:
    """Unreferenced past grace is deleted; within grace or referenced is kept; orphans and temps go."""
    clock = cache.clock
    assert isinstance(clock, FakeClock)
    used = await cache.fetch(server_url + "photo.jpg")
    await cache.add_reference(used.sha256, "movie", 1, "poster")
    old = await cache.fetch(server_url + "a.png")
    clock.advance(6 * DAY)
    young = await cache.store_bytes(PNG_OTHER)

    # an orphan file (no row) and a crashed download, both old
    orphan = cache.path_for("ab" * 32, "jpg")
    orphan.parent.mkdir(parents=True)
    orphan.write_bytes(JPEG + b"x")
    stale_tmp = cache.root / "tmp" / "dead.part"
    stale_tmp.write_bytes(b"partial")
    fresh_tmp = cache.root / "tmp" / "live.part"
    fresh_tmp.write_bytes(b"downloading")
    later = clock.now() + DAY + 1  # when the second GC runs
    for path, age in ((orphan, 8 * DAY), (stale_tmp, 2 * 3600), (fresh_tmp, 60)):
        os.utime(path, (later - age, later - age))

    report = await cache.gc(now=clock.now())  # old is 6 days unreferenced, the orphan under 7 days old
    assert (report.assets_deleted, report.orphans_deleted) == (0, 0)
    assert old.path.exists() and orphan.exists()

    clock.advance(DAY + 1)
    report = await cache.gc()
    assert report.assets_deleted == 1
    assert report.orphans_deleted == 1 and report.temps_deleted == 1
    assert report.bytes_freed == len(PNG) + len(JPEG) + 1 + len(b"partial")
    assert not old.path.exists() and not orphan.exists() and not stale_tmp.exists()
    assert fresh_tmp.exists() and used.path.exists() and young.path.exists()
    assert await cache.get(old.sha256) is None
    assert await cache.get(used.sha256) is not None

    clock.advance(365 * DAY)  # referenced assets are never collected, however old
    await cache.gc()
    assert used.path.exists() and not young.path.exists()


async def test_refetch_renews_grace(cache: AssetCache, server_url: str) -> None:
    """Fetching an unreferenced asset again restarts its grace period."""
    clock = cache.clock
    assert isinstance(clock, FakeClock)
    asset = await cache.fetch(server_url + "a.png")
    clock.advance(8 * DAY)
    await cache.fetch(server_url + "same-as-a.png")
    report = await cache.gc()
    assert report.assets_deleted == 0 and asset.path.exists()


async def test_verify_quarantines_corrupt_and_reports_missing(cache: AssetCache, server_url: str) -> None:
    """A file not matching its hash is moved to quarantine and marked; a missing one is reported."""
    good = await cache.fetch(server_url + "photo.jpg")
    bad = await cache.fetch(server_url + "a.png")
    gone = await cache.store_bytes(PNG_OTHER)
    assert (await cache.verify()).ok

    os.chmod(bad.path, 0o644)
    bad.path.write_bytes(PNG[:-3] + b"bad")
    gone.path.unlink()
    report = await cache.verify()
    assert not report.ok and report.checked == 3
    assert [p.sha256 for p in report.mismatched] == [bad.sha256]
    assert [p.sha256 for p in report.missing] == [gone.sha256]
    assert not bad.path.exists()
    quarantined = Path(report.mismatched[0].quarantined_to or "")
    assert quarantined.parent == cache.root / "quarantine" and quarantined.read_bytes().endswith(b"bad")
    assert (await cache.get(bad.sha256)).quarantined  # type: ignore[union-attr]
    assert not (await cache.get(good.sha256)).quarantined  # type: ignore[union-attr]

    # quarantined assets are not re-checked, and a fresh download heals them
    healed = await cache.fetch(server_url + "a.png")
    assert not healed.quarantined and healed.path.read_bytes() == PNG
    assert (await cache.verify()).mismatched == []


async def test_gc_drops_copies_of_nfos_no_longer_published(db: Database, tmp_path: Path) -> None:
    """A kept NFO copy goes once no published file points at it and it is past the grace period."""
    baselines = tmp_path / "published"
    cache = AssetCache(db, tmp_path / "cache", grace_seconds=DAY, baselines=baselines)
    live, gone, recent = "/lib/A (2001)/A (2001).nfo", "/lib/B (2002)/movie.nfo", "/lib/C (2003)/movie.nfo"
    await db.execute(
        "INSERT INTO published_files (path, entity_type, entity_id, kind, sha256, written_at)"
        " VALUES (?, 'movie', 1, 'nfo', 'x', 0)",
        (live,),
    )
    now = time.time()
    copies = {}
    for path, age in ((live, 3 * DAY), (gone, 3 * DAY), (recent, 60)):
        name = baseline_name(path)
        copy = baselines / name[:2] / name
        copy.parent.mkdir(parents=True, exist_ok=True)
        copy.write_bytes(b"<movie/>")
        os.utime(copy, (now - age, now - age))
        copies[path] = copy
    try:
        report = await cache.gc(now=now)
    finally:
        await cache.close()
    assert report.baselines_deleted == 1 and report.bytes_freed == len(b"<movie/>")
    assert copies[live].exists() and copies[recent].exists() and not copies[gone].exists()
    assert not copies[gone].parent.exists() or copies[gone].parent == copies[live].parent


async def test_placements_of_different_hashes_overlap_and_gc_runs_alone() -> None:
    """Two hashes are placed at once; one hash waits for itself; GC waits for running placements and holds
    new ones back until it ends (agent.cache._Placing)."""
    from agent.cache import _Placing

    placing = _Placing()
    order: list[str] = []
    release = asyncio.Event()

    async def place(sha: str, name: str) -> None:
        async with placing.one(sha):
            order.append(f"{name} in")
            await release.wait()
            order.append(f"{name} out")

    async def gc() -> None:
        async with placing.alone():
            order.append("gc")

    a = asyncio.create_task(place("aa", "a"))
    b = asyncio.create_task(place("bb", "b"))
    a2 = asyncio.create_task(place("aa", "a2"))  # the same hash as a: waits for it
    for _ in range(5):
        await asyncio.sleep(0)
    assert order == ["a in", "b in"]
    collect = asyncio.create_task(gc())
    for _ in range(5):
        await asyncio.sleep(0)
    assert "gc" not in order  # a and b still run
    release.set()
    await asyncio.gather(a, b, a2, collect)
    assert order.index("a out") < order.index("a2 in")
    assert order.index("gc") > max(order.index("a out"), order.index("b out"))
    late = asyncio.create_task(place("cc", "c"))
    async with placing.alone():
        for _ in range(5):
            await asyncio.sleep(0)
        assert "c in" not in order  # no placement starts while GC holds the cache
    await late
    assert order[-2:] == ["c in", "c out"]
