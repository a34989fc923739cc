"""The routes the dashboard stands on: /api/health's checked warnings (and agent.health's checks with fake
probes), POST /api/players/{name}/test, GET /api/search, POST .../match, GET .../nfo, GET /api/activity and
the locked= / artwork_error= list filters."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from conftest import HEADERS, free_port, make_config
from fakes.kodi import start_fake_kodi
from fakes.player_setup import kodi_player
from fakes.tmdb import FakeTmdb, sample_movie, sample_show

from agent.config import Config
from agent.health import (
    DISK_LOW,
    FFPROBE_MISSING,
    LIBRARY_ROOT_EMPTY,
    LIBRARY_ROOT_MISSING,
    PROVIDER_KEY_MISSING,
    Probes,
    check_system,
    merge_warnings,
    player_warnings,
)
from agent.library import scan as scan_job
from agent.queue.model import Status

GIB = 1 << 30


def touch(path: Path) -> None:
    """A small video file (and its folders)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\x1a\x45\xdf\xa3" + b"\0" * 64)


async def get(client: Any, path: str, status: int = 200) -> Any:
    """GET with the key; assert the status; the JSON body."""
    resp = await client.get(path, headers=HEADERS)
    body = await resp.json()
    assert resp.status == status, body
    return body


async def post(client: Any, path: str, body: Any = None, status: int = 200) -> Any:
    """POST JSON with the key; assert the status; the JSON body."""
    resp = await client.post(path, json=body, headers=HEADERS)
    reply = await resp.json()
    assert resp.status == status, reply
    return reply


def codes(warnings: list[dict[str, Any]]) -> set[tuple[str, str | None]]:
    """(code, subject) of each warning."""
    return {(w["code"], w["subject"]) for w in warnings}


# --- agent.health with fake probes --------------------------------------------------------------------


def fine_probes(**changes: Any) -> Probes:
    """Probes of a healthy machine (ffprobe present, 500 GiB free of 1 TiB, each path its own disk)."""
    base = {"which": lambda name: f"/usr/bin/{name}", "disk_usage": lambda path: (1024 * GIB, 524 * GIB, 500 * GIB),
            "device": lambda path: hash(path)}
    return Probes(**{**base, **changes})


def test_checks_name_the_problem_and_the_fix(tmp_path: Path) -> None:
    """No key, a missing and an empty root, ffprobe missing, a full disk: one warning each, saying what to do."""
    cfg = make_config(tmp_path, extra={"probe": {"ffprobe": "auto"}})
    touch(cfg.libraries[0].path / "Heat (1995)" / "Heat (1995).mkv")
    (cfg.libraries[1].path / ".DS_Store").write_text("litter")  # OS litter does not count as content
    assert codes(check_system(cfg, [], fine_probes(junk=lambda n: n.startswith(".")))) == {
        (PROVIDER_KEY_MISSING, "tmdb"), (LIBRARY_ROOT_EMPTY, "TV")}
    (no_key,) = [w for w in check_system(cfg, [], fine_probes()) if w["code"] == PROVIDER_KEY_MISSING]
    assert "providers.tmdb.api_key" in no_key["message"] and str(cfg.path) in no_key["message"]
    assert "unidentified" in no_key["message"]

    shutil.rmtree(cfg.libraries[1].path)
    full = fine_probes(which=lambda name: None, disk_usage=lambda path: (100 * GIB, 99.5 * GIB, 0.5 * GIB))
    found = {w["code"]: w for w in check_system(cfg, [], full)}
    assert found[LIBRARY_ROOT_MISSING]["subject"] == "TV" and "does not exist" in found[LIBRARY_ROOT_MISSING]["message"]
    assert "apt install ffmpeg" in found[FFPROBE_MISSING]["message"]
    off = make_config(tmp_path / "off")  # probe.ffprobe: off is the user's choice, not a problem
    assert FFPROBE_MISSING not in {w["code"] for w in check_system(off, [], full)}
    assert "0.5 GiB free" in found[DISK_LOW]["message"]
    # one warning per disk: every path on one device gives one warning
    same_disk = fine_probes(disk_usage=lambda path: (100 * GIB, 97 * GIB, 3 * GIB), device=lambda path: 1)
    assert [w["code"] for w in check_system(cfg, [], same_disk)].count(DISK_LOW) == 1  # 3 % free < 5 %


def test_tmdb_key_silences_the_provider_warning(tmp_path: Path) -> None:
    """With a key there is nothing to say about providers."""
    cfg = make_config(tmp_path, {"providers": {"tmdb": {"api_key": "tmdb-key"}}})
    assert PROVIDER_KEY_MISSING not in {w["code"] for w in check_system(cfg, [], fine_probes())}


def test_unreachable_player_warning_carries_its_error() -> None:
    """A player row marked unreachable gives a warning with its last error (credentials masked)."""
    rows = [{"name": "lr", "state": "unreachable",
             "last_error": "player 'lr': cannot reach Kodi at http://kodi:secret@host:8080/jsonrpc"},
            {"name": "ok", "state": "connected", "last_error": None}]
    (warning,) = player_warnings(rows)
    assert warning["subject"] == "lr" and "cannot reach Kodi" in warning["message"]
    assert "secret" not in warning["message"] and "press Test" in warning["message"]


def test_a_raised_warning_wins_over_the_same_check() -> None:
    """A scan's library_root_missing (it knows the store holds items) replaces the check's empty-root warning."""
    raised = [{"code": LIBRARY_ROOT_MISSING, "message": "scan: empty while the store holds 2 items", "subject": "M"}]
    checked = [{"code": LIBRARY_ROOT_EMPTY, "message": "empty", "subject": "M"},
               {"code": PROVIDER_KEY_MISSING, "message": "no key", "subject": "tmdb"}]
    assert merge_warnings(raised, checked) == [raised[0], checked[1]]


# --- routes -------------------------------------------------------------------------------------------


async def test_health_reports_checked_warnings(make_client: Any, tmp_path: Path) -> None:
    """/api/health (no key needed) carries the checks: no provider key, an empty library, a removed one."""
    client = await make_client(make_config(tmp_path))
    resp = await client.get("/api/health")
    body = await resp.json()
    assert resp.status == 200
    assert {(PROVIDER_KEY_MISSING, "tmdb"), (LIBRARY_ROOT_EMPTY, "Movies"), (LIBRARY_ROOT_EMPTY, "TV")} <= codes(
        body["warnings"])
    shutil.rmtree(client.agent.cfg.libraries[1].path)
    body = await get(client, "/api/health")
    assert (LIBRARY_ROOT_MISSING, "TV") in codes(body["warnings"])


async def test_player_test_reports_and_records(make_client: Any, tmp_path: Path, aiohttp_server: Any) -> None:
    """Test on a closed port: not ok, the error, state unreachable and a health warning; on a live Kodi: ok."""
    live = await start_fake_kodi(aiohttp_server, with_ws=False)
    players = [kodi_player("down", None, port=free_port()), {**kodi_player("up", live), "ws_port": free_port()}]
    cfg = make_config(tmp_path, {"players": players})
    client = await make_client(cfg)
    reply = await post(client, "/api/players/down/test")
    assert reply["ok"] is False and "cannot reach Kodi" in reply["message"]
    assert reply["player"]["state"] == "unreachable" and reply["player"]["last_error"]
    health = await get(client, "/api/health")
    assert ("player_unreachable", "down") in codes(health["warnings"])
    reply = await post(client, "/api/players/up/test")
    assert reply["ok"] is True and reply["message"].startswith("Kodi answered")
    assert reply["player"]["state"] == "connected"
    assert [c.method for c in live.calls][-2:] == ["JSONRPC.Ping", "JSONRPC.Version"]
    missing = await post(client, "/api/players/nobody/test", status=404)
    assert missing["detail"] == {"players": ["down", "up"]}


async def test_search_needs_a_key_and_a_title(make_client: Any, tmp_path: Path) -> None:
    """Without a TMDB key search is a 409 saying where the key goes; bad input is a 400."""
    client = await make_client(make_config(tmp_path))
    reply = await get(client, "/api/search?q=Heat", status=409)
    assert "providers.tmdb.api_key" in reply["error"]
    assert "needs a title" in (await get(client, "/api/search?q=", status=400))["error"]
    assert "unknown entity" in (await get(client, "/api/search?q=x&entity=book", status=400))["error"]


def tmdb_config(tmp_path: Path, base: str, fake: FakeTmdb) -> Config:
    """A config whose TMDB is the fake."""
    return make_config(tmp_path, {"providers": {"tmdb": {
        "api_key": fake.api_key, "base_url": f"{base}/3", "image_base_url": f"{base}/t/p/original",
        "rate_limit": 1000}}})


async def test_fix_match_searches_rematches_enriches_and_republishes(
        make_client: Any, tmp_path: Path, aiohttp_server: Any) -> None:
    """Search by title and year lists the candidates; match points the movie at the chosen id, clears the old
    IMDb id, locks tmdb_id, and its enrich job rewrites the NFO; the NFO route shows the file as written."""
    fake = FakeTmdb(movies={501: sample_movie(501, "Heat Wave", 1995, imdb_id="tt0501501", collection=None),
                            949: sample_movie(949, "Heat", 1995, imdb_id="tt0113277", collection=None)})
    server = await aiohttp_server(fake.app)
    client = await make_client(tmdb_config(tmp_path, str(server.make_url("")).rstrip("/"), fake))
    agent = client.agent
    folder = agent.cfg.libraries[0].path / "Heat (1995)"
    touch(folder / "Heat (1995).mkv")
    (folder / "Heat (1995).nfo").write_text('<movie><uniqueid type="tmdb">501</uniqueid></movie>', encoding="utf-8")
    await scan_job.enqueue_scan(agent.queue, "Movies")
    await agent.queue.run_until_idle()
    (movie,) = (await get(client, "/api/movies"))["items"]
    assert movie["tmdb_id"] == 501 and movie["imdb_id"] == "tt0501501"

    found = await get(client, "/api/search?entity=movie&q=Heat&year=1995")
    assert [r["tmdb_id"] for r in found["items"]][:2] == [949, 501]
    assert found["items"][0]["poster"].startswith(str(server.make_url("/t/p/original")))

    assert "tmdb_id" in (await post(client, f"/api/movies/{movie['id']}/match", {}, status=400))["error"]
    reply = await post(client, f"/api/movies/{movie['id']}/match", {"tmdb_id": 949}, status=202)
    assert reply["item"]["tmdb_id"] == 949 and reply["item"]["imdb_id"] is None
    assert reply["item"]["status"] == "identified" and "tmdb_id" in reply["item"]["locked_fields"]
    await agent.queue.run_until_idle()
    assert (await agent.queue.get(reply["job_id"])).status == Status.COMPLETED
    after = await get(client, f"/api/movies/{movie['id']}")
    assert (after["title"], after["imdb_id"], after["status"]) == ("Heat", "tt0113277", "enriched")
    nfo = await get(client, f"/api/movies/{movie['id']}/nfo")
    assert nfo["path"] == str(folder / "Heat (1995).nfo")
    assert "<title>Heat</title>" in nfo["text"] and nfo["text"] == (folder / "Heat (1995).nfo").read_text("utf-8")

    chain = await get(client, f"/api/activity/{reply['job_id']}")
    assert chain["job"]["subject"]["label"] == "Heat (1995)"
    assert [j["type"] for j in chain["followups"]][:1] == ["publish"]


async def test_nfo_route_without_an_nfo_is_a_404(make_client: Any, tmp_path: Path) -> None:
    """An item whose NFO is not written yet: 404 saying so."""
    client = await make_client(make_config(tmp_path))
    agent = client.agent
    touch(agent.cfg.libraries[0].path / "Alien (1979)" / "Alien (1979).mkv")
    await scan_job.enqueue_scan(agent.queue, "Movies")
    agent.queue.handlers = {k: v for k, v in agent.queue.handlers.items() if k == "scan"}
    await agent.queue.run_until_idle()
    (movie,) = (await get(client, "/api/movies"))["items"]
    reply = await get(client, f"/api/movies/{movie['id']}/nfo", status=404)
    assert "no NFO yet" in reply["error"]


async def test_activity_groups_a_scan_and_names_items(make_client: Any, tmp_path: Path) -> None:
    """The scan heads the list with its follow-ups counted by type and status; jobs name their item by title."""
    client = await make_client(make_config(tmp_path))
    agent = client.agent
    for title in ("Heat (1995)", "Alien (1979)"):
        touch(agent.cfg.libraries[0].path / title / f"{title}.mkv")
    scan = await scan_job.enqueue_scan(agent.queue, "Movies")
    await agent.queue.run_until_idle()
    body = await get(client, "/api/activity")
    (head,) = [j for j in body["items"] if j["id"] == scan.id]
    assert head["subject"] == {"kind": "library", "name": "Movies", "label": "Movies"}
    assert head["followups"]["by_type"]["enrich"] == {"completed": 2}
    assert head["followups"]["by_status"]["completed"] == head["followups"]["total"] >= 4
    assert all(j["chain"] is None for j in body["items"])
    chain = await get(client, f"/api/activity/{scan.id}")
    labels = {j["subject"]["label"] for j in chain["followups"] if j["type"] == "enrich"}
    assert labels == {"Heat (1995)", "Alien (1979)"}
    assert all(j["origin"] == scan.id for j in chain["followups"])
    jobs = await get(client, "/api/jobs?type=publish")
    assert {j["subject"]["label"] for j in jobs["items"]} == {"Heat (1995)", "Alien (1979)"}
    await get(client, "/api/activity/999999", status=404)
    assert "unknown status" in (await get(client, "/api/activity?status=done", status=400))["error"]


async def test_locked_and_artwork_error_filters(make_client: Any, tmp_path: Path) -> None:
    """locked=true lists items with a lock; artwork_error=true lists those whose artwork failed; bad values 400."""
    client = await make_client(make_config(tmp_path))
    agent = client.agent
    for title in ("Heat (1995)", "Alien (1979)"):
        touch(agent.cfg.libraries[0].path / title / f"{title}.mkv")
    await scan_job.enqueue_scan(agent.queue, "Movies")
    agent.queue.handlers = {k: v for k, v in agent.queue.handlers.items() if k == "scan"}
    await agent.queue.run_until_idle()
    items = {m["title"]: m["id"] for m in (await get(client, "/api/movies"))["items"]}
    await post(client, f"/api/movies/{items['Heat']}/lock", {"fields": ["art:poster"]})
    assert [m["title"] for m in (await get(client, "/api/movies?locked=true"))["items"]] == ["Heat"]
    assert (await get(client, "/api/movies?locked=false"))["total"] == 2
    assert (await get(client, "/api/movies?artwork_error=1"))["total"] == 0
    assert "locked='maybe'" in (await get(client, "/api/movies?locked=maybe", status=400))["error"]


async def test_fix_match_of_a_show_refreshes_its_episodes(make_client: Any, tmp_path: Path, aiohttp_server: Any
                                                        ) -> None:
    """Matching a show to another TMDB id re-enriches the show and each episode from the new entry."""
    fake = FakeTmdb(shows={70: sample_show(70, "The Office", 2001, tvdb_id=None, imdb_id=None, episodes=2),
                           2316: sample_show(2316, "The Office", 2005, tvdb_id=None, imdb_id=None, episodes=2)})
    server = await aiohttp_server(fake.app)
    client = await make_client(tmdb_config(tmp_path, str(server.make_url("")).rstrip("/"), fake))
    agent = client.agent
    touch(agent.cfg.libraries[1].path / "The Office (2001)" / "Season 01" / "The Office S01E01.mkv")
    await scan_job.enqueue_scan(agent.queue, "TV")
    await agent.queue.run_until_idle()
    (show,) = (await get(client, "/api/series"))["items"]
    assert show["tmdb_id"] == 70
    reply = await post(client, f"/api/series/{show['id']}/match", {"tmdb_id": 2316}, status=202)
    await agent.queue.run_until_idle()
    detail = await get(client, f"/api/series/{show['id']}")
    assert (detail["tmdb_id"], detail["year"], detail["status"]) == (2316, 2005, "enriched")
    (episode,) = detail["episodes"]
    assert episode["title"] == "The Office S01E01" and episode["aired"].startswith("2005")
    chain = await get(client, f"/api/activity/{reply['job_id']}")
    assert chain["job"]["subject"]["label"] == "The Office (2005)"
