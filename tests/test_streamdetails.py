"""Stream details from a real ffprobe: small videos ffmpeg makes here, scanned, probed and published into NFOs.

Each ffprobe run goes through a wrapper script that logs it, so a test counts real process launches: an
unchanged file is never probed twice, a replaced one is. Without ffprobe nothing breaks and an NFO's own
fileinfo is left alone.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import stat
import subprocess
import threading
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
from conftest import HEADERS, make_config
from test_pipeline import Factory, assert_no_failures, get, nfo_root, only_movie, scan

from agent import streams as streams_module
from agent.cli import main
from agent.clock import FakeClock
from agent.errors import ConfigError
from agent.housekeeping import enqueue_cache_gc
from agent.probe import ProbeError, ffprobe_available, find_ffprobe, hdr_type, kodi_streamdetails, run_ffprobe
from agent.store import probes
from agent.store.probes import FileSignature
from agent.streams import StreamProber

FFPROBE = shutil.which("ffprobe")
FFMPEG = shutil.which("ffmpeg")
AUTO = {"probe": {"ffprobe": "auto"}}  # conftest's configs turn probing off
needs_ffmpeg = pytest.mark.skipif(not (FFPROBE and FFMPEG), reason="ffmpeg/ffprobe not installed (CI installs them)")
SRC = ["-f", "lavfi", "-i", "testsrc=size={size}:rate=25:duration=1"]
TONE = ["-f", "lavfi", "-i", "sine=f=440:duration=1"]
X265 = ["-c:v", "libx265", "-preset", "ultrafast", "-x265-params", "log-level=error"]


def ffmpeg(out: Path, *args: str, size: str = "320x240") -> Path:
    """Make a 1 s video with ffmpeg (testsrc picture; `args` add inputs, maps and codecs)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    src = [a.format(size=size) for a in SRC]
    subprocess.run([FFMPEG or "ffmpeg", "-v", "error", "-y", *src, *args, str(out)], check=True, timeout=60)
    return out


def hevc_two_audio(out: Path) -> Path:
    """HEVC 320x240, AAC stereo (eng) and AC-3 5.1 (fre)."""
    return ffmpeg(out, *TONE, "-map", "0:v", "-map", "1:a", "-map", "1:a", *X265, "-pix_fmt", "yuv420p",
                  "-c:a:0", "aac", "-ac:a:0", "2", "-c:a:1", "ac3", "-ac:a:1", "6",
                  "-metadata:s:a:0", "language=eng", "-metadata:s:a:1", "language=fre")


def h264_with_subtitle(out: Path, size: str = "320x240") -> Path:
    """H.264 with one AAC track and a German SubRip subtitle."""
    srt = out.parent / "tmp-sub.srt"
    out.parent.mkdir(parents=True, exist_ok=True)
    srt.write_text("1\n00:00:00,000 --> 00:00:00,900\nHallo\n", encoding="utf-8")
    ffmpeg(out, *TONE, "-i", str(srt), "-map", "0:v", "-map", "1:a", "-map", "2:s", "-c:v", "libx264",
           "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-c:a", "aac", "-c:s", "srt",
           "-metadata:s:s:0", "language=ger", size=size)
    srt.unlink()
    return out


def hdr(out: Path, transfer: str = "smpte2084") -> Path:
    """10-bit HEVC tagged BT.2020 with the PQ (HDR10) or HLG transfer."""
    return ffmpeg(out, *X265, "-pix_fmt", "yuv420p10le", "-color_primaries", "bt2020", "-color_trc", transfer,
                  "-colorspace", "bt2020nc")


def counting_ffprobe(tmp_path: Path) -> tuple[Path, Path]:
    """A wrapper that logs each run to a file and runs the real ffprobe; (wrapper, log)."""
    log = tmp_path / "ffprobe-calls.log"
    wrapper = tmp_path / "bin" / "ffprobe"
    wrapper.parent.mkdir(parents=True, exist_ok=True)
    wrapper.write_text(f'#!/bin/sh\necho "$@" >> "{log}"\nexec "{FFPROBE}" "$@"\n', encoding="utf-8")
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IXUSR)
    return wrapper, log


def runs(log: Path) -> int:
    """How many times ffprobe ran."""
    return len(log.read_text(encoding="utf-8").splitlines()) if log.exists() else 0


def streams(nfo: Path) -> dict[str, list[dict[str, str]]]:
    """fileinfo/streamdetails of an NFO as {video|audio|subtitle: [{tag: text}]}, tags in file order."""
    details = nfo_root(nfo).find("fileinfo/streamdetails")
    assert details is not None, nfo.read_text(encoding="utf-8")
    return {kind: [{c.tag: c.text or "" for c in el} for el in details.findall(kind)]
            for kind in ("video", "audio", "subtitle")}


async def probing_client(make_client: Factory, tmp_path: Path, wrapper: Path, **extra: Any) -> Any:
    """The real app with probe.ffprobe at the counting wrapper (no provider keys)."""
    cfg = make_config(tmp_path, extra={"probe": {"ffprobe": str(wrapper)}, **extra})
    return await make_client(cfg, clock=FakeClock())


async def enrich_results(client: Any) -> list[dict[str, Any]]:
    """The results of every completed enrich job, newest first."""
    jobs, _ = await client.agent.queue.list(status="completed", type_="enrich", limit=500)
    return [j.result for j in jobs]


async def post_and_drain(client: Any, url: str) -> None:
    """POST an item action and run the queue dry."""
    resp = await client.post(url, headers=HEADERS)
    assert resp.status in (200, 202), await resp.text()
    await client.agent.queue.run_until_idle()
    await assert_no_failures(client)


@needs_ffmpeg
async def test_published_nfos_carry_kodi_streamdetails(make_client: Factory, tmp_path: Path) -> None:
    """Movies and an episode: codec, size, aspect, duration, HDR, audio codecs/channels/languages, subtitles."""
    wrapper, log = counting_ffprobe(tmp_path)
    client = await probing_client(make_client, tmp_path, wrapper)
    movies, tv = tmp_path / "media" / "movies", tmp_path / "media" / "tv"
    hevc = hevc_two_audio(movies / "Probe Hevc (2020)" / "Probe Hevc (2020).mkv")
    pq = hdr(movies / "Probe Pq (2021)" / "Probe Pq (2021).mkv")
    hlg = hdr(movies / "Probe Hlg (2022)" / "Probe Hlg (2022).mkv", "arib-std-b67")
    episode = h264_with_subtitle(tv / "Probe Show" / "Season 01" / "Probe Show - S01E01.mkv")
    await scan(client)
    await scan(client, "TV")
    assert runs(log) == 4

    found = streams(hevc.with_suffix(".nfo"))
    assert found["video"] == [{"codec": "hevc", "aspect": "1.333333", "width": "320", "height": "240",
                               "durationinseconds": "1"}]  # Kodi's tag order
    assert found["audio"] == [{"codec": "aac", "language": "eng", "channels": "2"},
                              {"codec": "ac3", "language": "fre", "channels": "6"}]
    assert found["subtitle"] == []
    assert streams(pq.with_suffix(".nfo"))["video"][0]["hdrtype"] == "hdr10"
    assert streams(hlg.with_suffix(".nfo"))["video"][0]["hdrtype"] == "hlg"
    ep = streams(episode.with_suffix(".nfo"))
    assert ep["video"][0]["codec"] == "h264" and ep["video"][0]["width"] == "320"
    assert "hdrtype" not in ep["video"][0]
    assert ep["audio"] == [{"codec": "aac", "channels": "1"}]  # no language tag: none written
    assert ep["subtitle"] == [{"language": "ger"}]
    # the API shows the same field (DESIGN: items add `streamdetails`)
    items = (await get(client, "/api/movies"))["items"]
    hevc_id = next(i["id"] for i in items if i["title"] == "Probe Hevc")
    detail = await get(client, f"/api/movies/{hevc_id}")
    assert detail["streamdetails"]["video"][0] == {"codec": "hevc", "aspect": 1.333333, "width": 320,
                                                  "height": 240, "durationinseconds": 1}
    # publishing again (nothing changed) rewrites nothing: what was written reads back as the same fields
    resp = await client.post(f"/api/movies/{hevc_id}/enrich", headers=HEADERS)
    assert resp.status == 202
    await client.agent.queue.run_until_idle()
    publishes, _ = await client.agent.queue.list(status="completed", type_="publish", limit=1)
    assert publishes[0].result["written"] == [] and publishes[0].result["hand_edits"] == []
    assert runs(log) == 4


@needs_ffmpeg
async def test_unchanged_file_is_never_probed_again_and_a_replaced_one_is(make_client: Factory,
                                                                         tmp_path: Path) -> None:
    """Rescan and re-enrich of the same bytes: no ffprobe run; an upgraded file: probed, NFO updated."""
    wrapper, log = counting_ffprobe(tmp_path)
    client = await probing_client(make_client, tmp_path, wrapper)
    video = hevc_two_audio(tmp_path / "media" / "movies" / "Upgrade Me (2019)" / "Upgrade Me (2019).mkv")
    await scan(client)
    assert runs(log) == 1
    movie = await only_movie(client)
    await scan(client)  # unchanged: not even enriched
    assert runs(log) == 1
    await post_and_drain(client, f"/api/movies/{movie['id']}/enrich")  # enriched again: the cache answers
    assert runs(log) == 1
    assert (await enrich_results(client))[0]["streamdetails"] == "cache"

    h264_with_subtitle(video.parent / "new.mkv", size="640x360").replace(video)  # the upgrade, same name
    await scan(client)
    assert runs(log) == 2
    assert (await enrich_results(client))[0]["streamdetails"] == "ffprobe"
    found = streams(video.with_suffix(".nfo"))
    assert [(v["codec"], v["width"], v["aspect"]) for v in found["video"]] == [("h264", "640", "1.777778")]
    assert found["subtitle"] == [{"language": "ger"}]
    assert len(nfo_root(video.with_suffix(".nfo")).findall("fileinfo")) == 1
    await scan(client)
    assert runs(log) == 2


@needs_ffmpeg
async def test_episodes_of_one_file_share_one_probe(make_client: Factory, tmp_path: Path) -> None:
    """A two-episode file: both episode entries of its NFO get the streamdetails; ffprobe ran once."""
    wrapper, log = counting_ffprobe(tmp_path)
    client = await probing_client(make_client, tmp_path, wrapper)
    video = hevc_two_audio(tmp_path / "media" / "tv" / "Double" / "Season 01" / "Double - S01E01-E02.mkv")
    await scan(client, "TV")
    assert runs(log) == 1
    text = video.with_suffix(".nfo").read_text(encoding="utf-8")
    roots = ET.fromstring(f"<all>{text.split('?>', 1)[-1]}</all>").findall("episodedetails")
    assert len(roots) == 2
    assert [r.findtext("fileinfo/streamdetails/video/codec") for r in roots] == ["hevc", "hevc"]


@needs_ffmpeg
async def test_a_locked_streamdetails_field_is_not_overwritten(make_client: Factory, tmp_path: Path) -> None:
    """The user locked streamdetails: an upgrade is probed, but the NFO keeps the locked values."""
    wrapper, log = counting_ffprobe(tmp_path)
    client = await probing_client(make_client, tmp_path, wrapper)
    video = hevc_two_audio(tmp_path / "media" / "movies" / "Locked (2018)" / "Locked (2018).mkv")
    await scan(client)
    movie = await only_movie(client)
    resp = await client.post(f"/api/movies/{movie['id']}/lock", json={"fields": ["streamdetails"]}, headers=HEADERS)
    assert resp.status == 200, await resp.text()
    h264_with_subtitle(video.parent / "new.mkv").replace(video)
    await scan(client)
    assert runs(log) == 2
    assert "streamdetails" in (await enrich_results(client))[0]["skipped_locked"]
    assert streams(video.with_suffix(".nfo"))["video"][0]["codec"] == "hevc"


@needs_ffmpeg
async def test_another_tools_streamdetails_are_held_until_a_refresh(make_client: Factory, tmp_path: Path) -> None:
    """A foreign NFO's (wrong) x264 under `nfo.existing: keep` is held like its other values; refresh replaces it."""
    wrapper, log = counting_ffprobe(tmp_path)
    client = await probing_client(make_client, tmp_path, wrapper)
    video = h264_with_subtitle(tmp_path / "media" / "movies" / "Held (2017)" / "Held (2017).mkv")
    video.with_suffix(".nfo").write_text(
        "<?xml version='1.0' encoding='utf-8'?>\n<movie><title>Held</title><year>2017</year><fileinfo>"
        "<streamdetails><video><codec>x264</codec><width>1920</width><height>1080</height></video>"
        "</streamdetails></fileinfo></movie>\n", encoding="utf-8")
    await scan(client)
    assert runs(log) == 1
    assert "streamdetails" in (await enrich_results(client))[0]["skipped_held"]
    assert streams(video.with_suffix(".nfo"))["video"] == [{"codec": "x264", "width": "1920", "height": "1080"}]
    movie = await only_movie(client)
    assert "streamdetails" in movie["nfo_held_fields"]
    await post_and_drain(client, f"/api/movies/{movie['id']}/refresh")
    assert runs(log) == 1  # the answer was cached: refresh only lets it in
    assert streams(video.with_suffix(".nfo"))["video"][0]["codec"] == "h264"


@needs_ffmpeg
async def test_an_upgrade_replaces_another_tools_held_streamdetails(make_client: Factory, tmp_path: Path) -> None:
    """Held fileinfo describes the file it was written for: once that file is replaced, the new probe wins."""
    wrapper, log = counting_ffprobe(tmp_path)
    client = await probing_client(make_client, tmp_path, wrapper)
    video = h264_with_subtitle(tmp_path / "media" / "movies" / "Swap (2011)" / "Swap (2011).mkv")
    video.with_suffix(".nfo").write_text(
        "<?xml version='1.0' encoding='utf-8'?>\n<movie><title>Swap</title><year>2011</year><plot>Theirs.</plot>"
        "<fileinfo><streamdetails><video><codec>x264</codec><width>1920</width></video></streamdetails></fileinfo>"
        "</movie>\n", encoding="utf-8")
    await scan(client)
    assert streams(video.with_suffix(".nfo"))["video"] == [{"codec": "x264", "width": "1920"}]
    hevc_two_audio(video.parent / "new.mkv").replace(video)
    await scan(client)
    assert runs(log) == 2
    result = (await enrich_results(client))[0]
    assert result["streamdetails"] == "ffprobe" and "streamdetails" not in result["skipped_held"]
    assert streams(video.with_suffix(".nfo"))["video"][0]["codec"] == "hevc"
    movie = await only_movie(client)
    assert "streamdetails" not in movie["nfo_held_fields"] and "plot" in movie["nfo_held_fields"]
    assert nfo_root(video.with_suffix(".nfo")).findtext("plot") == "Theirs."  # the other held values stay


@needs_ffmpeg
async def test_a_broken_file_is_a_logged_reason_not_a_failed_item(make_client: Factory, tmp_path: Path,
                                                                 caplog: pytest.LogCaptureFixture) -> None:
    """Bytes that are no video: the item is published without fileinfo, the reason is logged and kept."""
    wrapper, log = counting_ffprobe(tmp_path)
    client = await probing_client(make_client, tmp_path, wrapper)
    video = tmp_path / "media" / "movies" / "Broken (2016)" / "Broken (2016).mkv"
    video.parent.mkdir(parents=True)
    video.write_bytes(os.urandom(64 * 1024))
    with caplog.at_level(logging.WARNING, logger="agent.streams"):
        await scan(client)  # every job completed
    assert runs(log) == 1
    result = (await enrich_results(client))[0]["streamdetails"]
    assert result.startswith("ffprobe: ffprobe cannot read Broken (2016).mkv: "), result
    assert "/dev/fd" not in result
    assert any("no stream details for" in r.getMessage() and str(video) in r.getMessage() for r in caplog.records)
    assert nfo_root(video.with_suffix(".nfo")).find("fileinfo") is None
    movie = await only_movie(client)
    await post_and_drain(client, f"/api/movies/{movie['id']}/enrich")
    assert runs(log) == 1  # the same bytes are not probed again


@needs_ffmpeg
async def test_without_ffprobe_nothing_breaks_and_tags_are_left_alone(
        make_client: Factory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]) -> None:
    """No ffprobe on PATH: one log line, check-config says so, items publish, an NFO's fileinfo stays."""
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    assert not ffprobe_available() and find_ffprobe("ffprobe") is None
    with caplog.at_level(logging.INFO, logger="agent"):
        client = await make_client(make_config(tmp_path, extra=AUTO), clock=FakeClock())
    assert [r.getMessage() for r in caplog.records if "ffprobe not found" in r.getMessage()] != []
    assert len([r for r in caplog.records if "ffprobe" in r.getMessage()]) == 1
    movies = tmp_path / "media" / "movies"
    kept = hevc_two_audio(movies / "Kept (2015)" / "Kept (2015).mkv")
    kept.with_suffix(".nfo").write_text(
        "<?xml version='1.0' encoding='utf-8'?>\n<movie><title>Kept</title><fileinfo><streamdetails><video>"
        "<codec>hevc</codec><width>3840</width><height>2160</height><hdrtype>dolbyvision</hdrtype></video>"
        "</streamdetails></fileinfo></movie>\n", encoding="utf-8")
    bare = hevc_two_audio(movies / "Bare (2014)" / "Bare (2014).mkv")
    await scan(client)
    assert streams(kept.with_suffix(".nfo"))["video"] == [
        {"codec": "hevc", "width": "3840", "height": "2160", "hdrtype": "dolbyvision"}]
    assert nfo_root(bare.with_suffix(".nfo")).find("fileinfo") is None
    assert all("streamdetails" not in r for r in await enrich_results(client))
    config_file = tmp_path / "agent.yaml"
    assert main(["check-config", "--config", str(config_file)]) == 0
    out = capsys.readouterr().out
    assert "# ffprobe not found on PATH: NFOs get no streamdetails; install ffmpeg to add them" in out


@needs_ffmpeg
def test_check_config_names_the_ffprobe_it_runs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """check-config prints which ffprobe runs; probe.ffprobe: off turns probing off."""
    make_config(tmp_path, extra=AUTO)
    assert main(["check-config", "--config", str(tmp_path / "agent.yaml")]) == 0
    assert f"# ffprobe: {FFPROBE} (NFOs get streamdetails)" in capsys.readouterr().out
    for off in ("off", False):  # YAML reads a bare off as false
        cfg = make_config(tmp_path, extra={"probe": {"ffprobe": off, "timeout_seconds": 5}})
        assert cfg.probe.ffprobe == "off" and cfg.probe.timeout_seconds == 5.0
        assert main(["check-config", "--config", str(tmp_path / "agent.yaml")]) == 0
        assert "# ffprobe: off (probe.ffprobe: off): NFOs get no streamdetails" in capsys.readouterr().out


async def test_ffprobe_is_killed_on_timeout_and_a_timeout_is_not_remembered(tmp_path: Path, db: Any) -> None:
    """An ffprobe that hangs is stopped after probe.timeout_seconds, its process gone; the next call tries again."""
    pidfile = tmp_path / "pid"
    hanging = tmp_path / "bin" / "ffprobe"
    hanging.parent.mkdir()
    hanging.write_text(f'#!/bin/sh\necho $$ >> "{pidfile}"\nexec sleep 60\n', encoding="utf-8")
    hanging.chmod(0o755)
    root = tmp_path / "media"
    video = root / "Slow (2013)" / "Slow (2013).mkv"
    video.parent.mkdir(parents=True)
    video.write_bytes(b"\x1aE\xdf\xa3 slow")
    prober = StreamProber(db, FakeClock(), str(hanging), 0.5, [root])
    info = await prober.details(str(video))
    assert info.details is None and info.error == "ffprobe took longer than 0.5 s on Slow (2013).mkv and was stopped"
    [pid] = [int(p) for p in pidfile.read_text().split()]
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)  # killed and reaped
    await prober.details(str(video))
    assert len(pidfile.read_text().split()) == 2


async def test_a_cancelled_probe_leaves_no_ffprobe_running(tmp_path: Path) -> None:
    """Cancelling the caller (a job cancelled, the agent stopping) kills ffprobe too."""
    pidfile = tmp_path / "pid"
    hanging = tmp_path / "ffprobe"
    hanging.write_text(f'#!/bin/sh\necho $$ > "{pidfile}"\nexec sleep 60\n', encoding="utf-8")
    hanging.chmod(0o755)
    video = tmp_path / "v.mkv"
    video.write_bytes(b"x")
    fd = os.open(video, os.O_RDONLY)
    try:
        task = asyncio.create_task(run_ffprobe(str(hanging), fd, 30))
        deadline = asyncio.get_running_loop().time() + 10
        while not (pidfile.exists() and pidfile.read_text().strip()):
            assert asyncio.get_running_loop().time() < deadline, "the fake ffprobe never started"
            await asyncio.sleep(0.02)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    finally:
        os.close(fd)
    with pytest.raises(ProcessLookupError):
        os.kill(int(pidfile.read_text()), 0)


async def test_only_regular_files_inside_the_libraries_are_probed(tmp_path: Path, db: Any) -> None:
    """A FIFO, or a link out of the libraries, named like a video: refused before any ffprobe runs."""
    root = tmp_path / "media"
    root.mkdir()
    fifo = root / "pipe.mkv"
    os.mkfifo(fifo)
    outside = tmp_path / "secret.mkv"
    outside.write_bytes(b"secret")
    (root / "link.mkv").symlink_to(outside)
    never = tmp_path / "never-run"
    prober = StreamProber(db, FakeClock(), str(never), 5, [root])  # would fail loudly if it were run
    fifo_info = await prober.details(str(fifo))
    assert fifo_info.error is not None and "named pipe" in fifo_info.error
    link_info = await prober.details(str(root / "link.mkv"))
    assert link_info.error is not None and "outside the library folders" in link_info.error
    missing = await prober.details(str(root / "gone.mkv"))
    assert missing.error is not None and "cannot open gone.mkv" in missing.error


async def test_probe_cache_rows_follow_the_items(db: Any) -> None:
    """A probe is found only for the same signature; cache_gc forgets probes of files no item holds."""
    sig = FileSignature(size=10, mtime_ns=20, inode=30)
    details = {"video": [{"codec": "h264"}], "audio": [], "subtitle": []}
    await db.write(probes.save, "/m/a.mkv", sig, details, None, 1.0)
    assert (await db.read(probes.cached, "/m/a.mkv", sig)).streamdetails == details
    assert await db.read(probes.cached, "/m/a.mkv", FileSignature(11, 20, 30)) is None
    assert await db.read(probes.cached, "/m/a.mkv", FileSignature(10, 21, 30)) is None
    assert await db.read(probes.cached, "/m/a.mkv", FileSignature(10, 20, 31)) is None
    assert await db.write(probes.prune) == 1
    assert await db.read(probes.cached, "/m/a.mkv", sig) is None


def test_ffprobe_json_maps_to_kodi_names() -> None:
    """What ffmpeg cannot make here: Dolby Vision, HDR10+, mastering metadata, DTS profiles, cover art, SAR."""
    data = {
        "format": {"duration": "5400.987000"},
        "streams": [
            {"codec_type": "video", "codec_name": "hevc", "width": 3840, "height": 2160, "sample_aspect_ratio": "1:1",
             "color_primaries": "bt2020", "color_transfer": "smpte2084",
             "side_data_list": [{"side_data_type": "DOVI configuration record", "dv_profile": 8}]},
            {"codec_type": "video", "codec_name": "mjpeg", "width": 600, "height": 900,
             "disposition": {"attached_pic": 1}},
            {"codec_type": "audio", "codec_name": "truehd", "profile": "Dolby TrueHD + Dolby Atmos", "channels": 8,
             "tags": {"language": "eng"}},
            {"codec_type": "audio", "codec_name": "dts", "profile": "DTS-HD MA + DTS:X", "channels": 8},
            {"codec_type": "audio", "codec_name": "dts", "profile": "DTS-HD HRA", "channels": 6},
            {"codec_type": "audio", "codec_name": "dts", "profile": "DTS", "channels": 6, "tags": {"LANGUAGE": "und"}},
            {"codec_type": "audio", "codec_name": "eac3", "profile": "Dolby Digital Plus + Dolby Atmos",
             "channels": 6, "tags": {"language": "ger"}},
            {"codec_type": "subtitle", "codec_name": "hdmv_pgs_subtitle", "tags": {"language": "fre"}},
            {"codec_type": "subtitle", "codec_name": "subrip"},
            {"codec_type": "attachment", "codec_name": "ttf"},
        ],
    }
    out = kodi_streamdetails(data)
    assert out == {
        "video": [{"codec": "hevc", "aspect": 1.777778, "width": 3840, "height": 2160, "durationinseconds": 5400,
                   "hdrtype": "dolbyvision"}],
        "audio": [{"codec": "truehd", "language": "eng", "channels": 8}, {"codec": "dtshd_ma", "channels": 8},
                  {"codec": "dtshd_hra", "channels": 6}, {"codec": "dts", "channels": 6},
                  {"codec": "eac3", "language": "ger", "channels": 6}],
        "subtitle": [{"language": "fre"}, {}],
    }
    plus = {"streams": [{"codec_type": "video", "codec_name": "hevc", "width": 720, "height": 576,
                         "sample_aspect_ratio": "16:15", "color_primaries": "bt2020", "color_transfer": "smpte2084",
                         "side_data_list": [{"side_data_type": "HDR10+ Dynamic Metadata (SMPTE 2094-40)"}]}]}
    assert kodi_streamdetails(plus)["video"] == [{"codec": "hevc", "aspect": 1.333333, "width": 720,
                                                   "height": 576, "hdrtype": "hdr10"}]  # Kodi has no HDR10+ name
    mastering = {"streams": [{"codec_type": "video", "codec_name": "hevc", "side_data_list": [
        {"side_data_type": "Mastering display metadata", "red_x": "35400/50000", "max_luminance": "10000000/10000"}]}]}
    assert kodi_streamdetails(mastering)["video"] == [{"codec": "hevc", "hdrtype": "hdr10"}]
    pq_709 = {"streams": [{"codec_type": "video", "codec_name": "h264", "color_primaries": "bt709",
                           "color_transfer": "smpte2084"}]}
    assert kodi_streamdetails(pq_709)["video"] == [{"codec": "h264"}]  # Kodi: HDR10 needs BT.2020 primaries
    assert kodi_streamdetails({"format": {}, "streams": [{"codec_type": "data"}]}) is None
    assert kodi_streamdetails({"streams": "nonsense"}) is None


@needs_ffmpeg
async def test_run_ffprobe_reads_the_open_descriptor(tmp_path: Path) -> None:
    """ffprobe reads /dev/fd/N of the descriptor the agent checked; a bad file's reason names the file."""
    video = hevc_two_audio(tmp_path / "v.mkv")
    fd = os.open(video, os.O_RDONLY | os.O_CLOEXEC)
    try:
        data = await run_ffprobe(FFPROBE or "ffprobe", fd, 30, "v.mkv")
    finally:
        os.close(fd)
    assert [s["codec_type"] for s in data["streams"]] == ["video", "audio", "audio"]
    junk = tmp_path / "junk.mkv"
    junk.write_bytes(b"not a video at all" * 100)
    fd = os.open(junk, os.O_RDONLY | os.O_CLOEXEC)
    try:
        with pytest.raises(ProbeError) as caught:
            await run_ffprobe(FFPROBE or "ffprobe", fd, 30, "junk.mkv")
    finally:
        os.close(fd)
    assert caught.value.reason.startswith("ffprobe cannot read junk.mkv: ") and not caught.value.transient


SDR = {"codec_type": "video", "codec_name": "h264", "color_primaries": "bt709", "color_transfer": "bt709"}
PQ = {"codec_type": "video", "codec_name": "hevc", "codec_tag_string": "[0][0][0][0]", "pix_fmt": "yuv420p10le",
      "color_space": "bt2020nc", "color_primaries": "bt2020", "color_transfer": "smpte2084"}


@pytest.mark.parametrize(("stream", "expected"), [
    (PQ, "hdr10"),
    ({**PQ, "color_transfer": "arib-std-b67"}, "hlg"),
    ({**PQ, "side_data_list": [{"side_data_type": "DOVI configuration record", "dv_version_major": 1,
                                "dv_profile": 8, "dv_bl_signal_compatibility_id": 1}]}, "dolbyvision"),
    ({**PQ, "codec_tag_string": "dvh1"}, "dolbyvision"),  # an MP4's Dolby Vision sample entry
    ({**SDR, "codec_tag_string": "dvhe"}, "dolbyvision"),
    (SDR, None),
    ({"codec_type": "video", "codec_name": "h264"}, None),  # nothing said about colour: SDR
    ({**SDR, "color_transfer": "smpte2084"}, None),  # PQ without BT.2020 primaries: Kodi says none either
])
def test_hdr_type_from_ffprobe_streams(stream: dict[str, Any], expected: str | None) -> None:
    """Kodi's hdrtype from ffprobe's colour fields, side data and codec tag."""
    assert hdr_type(stream) == expected
    video = kodi_streamdetails({"streams": [stream]})
    assert video is not None and video["video"][0].get("hdrtype") == expected


def test_probe_config_is_checked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """probe.ffprobe: auto, off, an executable path or a command on PATH; anything else is a clear error."""
    monkeypatch.setenv("PATH", str(tmp_path / "no-bin"))
    assert make_config(tmp_path, extra=AUTO).probe.ffprobe == "auto"  # auto without ffprobe: not an error
    tool = tmp_path / "bin" / "my-ffprobe"
    tool.parent.mkdir()
    tool.write_text("#!/bin/sh\n", encoding="utf-8")
    tool.chmod(0o755)
    assert make_config(tmp_path, extra={"probe": {"ffprobe": str(tool)}}).probe.ffprobe == str(tool)
    monkeypatch.setenv("PATH", str(tool.parent))
    assert make_config(tmp_path, extra={"probe": {"ffprobe": "my-ffprobe"}}).probe.ffprobe == str(tool)
    for value, says in [
        (str(tmp_path / "gone" / "ffprobe"), "is not an executable file (use auto, off or the path of ffprobe)"),
        ("nonesuch", "must be auto, off or the path of ffprobe; 'nonesuch' is not a command on PATH"),
    ]:
        with pytest.raises(ConfigError) as caught:
            make_config(tmp_path, extra={"probe": {"ffprobe": value}})
        assert "probe.ffprobe" in caught.value.message and says in caught.value.message, caught.value.message
    with pytest.raises(ConfigError) as caught:
        make_config(tmp_path, extra={"probe": {"timeout_seconds": 0}})
    assert "probe.timeout_seconds" in caught.value.message
    with pytest.raises(ConfigError) as caught:
        make_config(tmp_path, extra={"probe": {"ffprobe": "off", "timeout": 5}})
    assert "probe.timeout" in caught.value.message


async def test_probing_turned_off_runs_nothing_and_says_so_once(make_client: Factory, tmp_path: Path,
                                                                caplog: pytest.LogCaptureFixture) -> None:
    """probe.ffprobe: off: no ffprobe even when installed, one info line at start, NFOs without fileinfo."""
    with caplog.at_level(logging.INFO, logger="agent"):
        client = await make_client(make_config(tmp_path), clock=FakeClock())  # conftest: off
    lines = [r for r in caplog.records if "ffprobe" in r.getMessage()]
    assert [(r.levelno, r.getMessage()) for r in lines] == [
        (logging.INFO, "ffprobe: off (probe.ffprobe: off): NFOs get no streamdetails")]
    assert not client.agent.prober.available
    video = tmp_path / "media" / "movies" / "Off (2012)" / "Off (2012).mkv"
    video.parent.mkdir(parents=True)
    video.write_bytes(b"\x1aE\xdf\xa3 off")
    await scan(client)
    assert nfo_root(video.with_suffix(".nfo")).find("fileinfo") is None
    assert await client.agent.db.read(probes.cached, str(video), FileSignature(*[
        getattr(video.stat(), k) for k in ("st_size", "st_mtime_ns", "st_ino")])) is None


async def test_a_cancelled_open_leaks_no_descriptor(tmp_path: Path, db: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Cancelled while the file is being opened in its thread: the descriptor that open returns is closed."""
    root = tmp_path / "media"
    video = root / "v.mkv"
    video.parent.mkdir()
    video.write_bytes(b"x")
    opened: list[int] = []
    started, release = threading.Event(), threading.Event()

    def slow_open(path: str, roots: Any) -> int:
        started.set()
        release.wait(10)
        opened.append(os.open(path, os.O_RDONLY))
        return opened[0]

    monkeypatch.setattr(streams_module, "open_user_file", slow_open)
    task = asyncio.create_task(StreamProber(db, FakeClock(), "/nonexistent/ffprobe", 5, [root]).details(str(video)))
    assert await asyncio.to_thread(started.wait, 10)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    release.set()
    deadline = asyncio.get_running_loop().time() + 10

    def closed() -> bool:
        try:
            os.fstat(opened[0])
        except (IndexError, OSError) as exc:
            return isinstance(exc, OSError)
        return False

    while not closed():
        assert asyncio.get_running_loop().time() < deadline, "the abandoned descriptor was never closed"
        await asyncio.sleep(0.01)


async def test_cache_gc_job_forgets_probes_of_files_no_item_holds(make_client: Factory, tmp_path: Path) -> None:
    """The daily cache_gc job also prunes media_probes and says how many it forgot."""
    client = await make_client(make_config(tmp_path), clock=FakeClock())
    await client.agent.db.write(probes.save, "/gone/a.mkv", FileSignature(1, 2, 3), None, "broken", 1.0)
    job = await enqueue_cache_gc(client.agent.queue)
    await client.agent.queue.run_until_idle()
    done = await client.agent.queue.get(job.id)
    assert done.status == "completed" and done.result["probes_forgotten"] == 1, done
