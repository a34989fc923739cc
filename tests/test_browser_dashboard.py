"""The library-first dashboard in real headless Chromium against the real agent process: the poster grid and
its filters, the item page (artwork files by their names on disk, one Save that locks, Fix match against the
fake TMDB), System > Health (no key, a removed library root, an unreachable player and its Test button),
and the phone layout. Screenshots land in artifacts/screenshots/."""

from __future__ import annotations

import re
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import API_KEY, free_port, write_config

pytestmark = pytest.mark.browser

try:
    from playwright.sync_api import Browser, Page, expect, sync_playwright
except ImportError:
    pytest.skip("playwright is not installed (pip install 'playwright>=1.40'; no browser download needed)",
                allow_module_level=True)

from browser_util import (  # noqa: E402
    CHROMIUM,
    CHROMIUM_ARGS,
    AgentProcess,
    ThreadedApp,
    add_movie,
    screenshot_path,
)
from fakes.kodi import FakeKodi  # noqa: E402
from fakes.tmdb import FakeTmdb, sample_movie  # noqa: E402

if not CHROMIUM.exists():
    pytest.skip(f"{CHROMIUM} is missing (apt-get install chromium)", allow_module_level=True)

TIMEOUT_MS = 10_000
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """One Debian Chromium for the module (never a Playwright-downloaded browser)."""
    pw = sync_playwright().start()
    try:
        chromium = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, timeout=30_000)
        try:
            yield chromium
        finally:
            chromium.close()
    finally:
        pw.stop()


def run_agent(tmp_path: Path, extra: dict[str, Any] | None = None) -> AgentProcess:
    """Start the real agent over tmp_path's libraries (the caller stops it)."""
    port = free_port()
    config = write_config(tmp_path, extra={"server": {"port": port}, **(extra or {})})
    process = AgentProcess(config, port, tmp_path / "agent.log")
    process.start()
    return process


class Tab:
    """A browser context and page that fail the test on an uncaught page error and leave a screenshot."""

    def __init__(self, browser: Browser, name: str, viewport: dict[str, int] = DESKTOP, dark: bool = False) -> None:
        self.context = browser.new_context(viewport=viewport, color_scheme="dark" if dark else "light")
        self.context.set_default_timeout(TIMEOUT_MS)
        self.page = self.context.new_page()
        self.name = name
        self.errors: list[str] = []
        self.page.on("pageerror", lambda exc: self.errors.append(str(exc)))

    def shot(self, suffix: str = "", full_page: bool = False) -> Path:
        """Save a screenshot as artifacts/screenshots/<name><suffix>.png."""
        path = screenshot_path(self.name + suffix)
        self.page.screenshot(path=str(path), full_page=full_page)
        return path

    def close(self) -> None:
        """Close the context; uncaught page errors fail the test."""
        self.context.close()
        assert self.errors == [], f"uncaught errors in the page: {self.errors}"


def open_dashboard(page: Page, agent: AgentProcess, route: str = "") -> None:
    """Load the dashboard with ?apikey= (and a #/route) and wait for the live connection."""
    page.goto(f"{agent.base}/?apikey={API_KEY}{route}")
    expect(page.get_by_test_id("connection")).to_have_text("Connected")


def movie_ids(agent: AgentProcess) -> dict[str, int]:
    """Movie title -> id, from the API."""
    status, body = agent.request("GET", "/api/movies?limit=500")
    assert status == 200, body
    return {m["title"]: m["id"] for m in body["items"]}


def wait_for(agent: AgentProcess, path: str, check: Any, timeout: float = 15.0) -> Any:
    """Poll a GET until check(body) is true; returns the body."""
    deadline = time.monotonic() + timeout
    while True:
        status, body = agent.request("GET", path)
        if status == 200 and check(body):
            return body
        if time.monotonic() > deadline:
            raise AssertionError(f"{path} never satisfied the check; last: {status} {body}")
        time.sleep(0.1)


# --- the library --------------------------------------------------------------------------------------


def test_library_grid_filters_table_light_and_dark(browser: Browser, tmp_path: Path) -> None:
    """Posters in a grid with status badges; search and the status/locked filters narrow it; the table view;
    the jobs sit in Activity, named by title, a scan's follow-ups grouped under it."""
    movies = tmp_path / "media" / "movies"
    for title, year, tmdb_id in (("Alpha Movie", 2001, 501), ("Beta Film", 2010, 502), ("Gamma Story", 2015, 503)):
        add_movie(movies, title, year, tmdb_id)
    loose = movies / "Delta Unknown (2020)"
    loose.mkdir()
    (loose / "Delta Unknown (2020).mkv").write_bytes(b"\x1a\x45\xdf\xa3" + b"\0" * 64)
    agent = run_agent(tmp_path)
    tab = Tab(browser, "dashboard_library_grid")
    try:
        agent.scan()
        ids = movie_ids(agent)
        assert agent.request("PATCH", f"/api/movies/{ids['Beta Film']}/metadata", {"tagline": "Mine"})[0] == 200
        agent.wait_idle()
        page = tab.page
        open_dashboard(page, agent)
        grid = page.get_by_test_id("movies")
        expect(grid.locator("li.card")).to_have_count(4)
        expect(page.get_by_test_id(f"movie-{ids['Alpha Movie']}").locator(".badge")).to_have_text("enriched")
        expect(page.get_by_test_id(f"movie-{ids['Delta Unknown']}").locator(".badge")).to_have_text("unidentified")
        expect(page.get_by_test_id(f"movie-{ids['Beta Film']}").locator(".locks")).to_contain_text("tagline")
        expect(page.get_by_test_id("kind-movies")).to_contain_text("4")
        # The first screen says why items stay unidentified: no provider key.
        expect(page.get_by_test_id("health-strip")).to_contain_text("No TMDB API key")
        tab.shot("_light")

        page.get_by_test_id("library-search").fill("gam")
        expect(grid.locator("li.card")).to_have_count(1)
        expect(grid).to_contain_text("Gamma Story")
        page.get_by_test_id("library-search").fill("")
        page.get_by_test_id("filters-toggle").click()
        page.get_by_test_id("filter-status").select_option("unidentified")
        expect(grid.locator("li.card")).to_have_count(1)
        expect(grid).to_contain_text("Delta Unknown")
        page.get_by_test_id("filter-status").select_option("")
        page.get_by_test_id("filter-locked").check()
        expect(grid.locator("li.card")).to_have_count(1)
        expect(grid).to_contain_text("Beta Film")
        page.get_by_test_id("filter-artwork-error").check()
        expect(page.get_by_test_id("movies-empty")).to_contain_text("No movies match")
        page.get_by_test_id("filter-artwork-error").uncheck()
        page.get_by_test_id("filter-locked").uncheck()
        page.get_by_test_id("filters-toggle").click()

        page.get_by_test_id("layout-table").click()
        expect(grid.locator("tbody tr")).to_have_count(4)
        expect(page.get_by_test_id(f"movie-title-{ids['Gamma Story']}")).to_have_text("Gamma Story")
        tab.shot("_table")
        page.get_by_test_id("layout-grid").click()

        page.get_by_test_id("tab-activity").click()
        jobs = page.get_by_test_id("jobs")
        scan_row = jobs.locator("tr.head", has=page.locator('td[data-label="Type"]', has_text=re.compile(r"^scan$")))
        expect(scan_row).to_have_count(1)
        expect(scan_row.locator('td[data-label="What"]')).to_have_text("Movies")
        followups = scan_row.locator("button.followups")
        expect(followups).to_contain_text(re.compile(r"\d+ follow-ups"))
        followups.click()
        expect(jobs.locator("tr.followup", has_text="Alpha Movie (2001)").first).to_be_visible()
        expect(jobs).not_to_contain_text("movie 1")
        tab.shot("_activity")
    finally:
        tab.close()
        dark = Tab(browser, "dashboard_library_grid_dark", dark=True)
        try:
            open_dashboard(dark.page, agent)
            expect(dark.page.get_by_test_id("movies").locator("li.card")).to_have_count(4)
            dark.shot()
        finally:
            dark.close()
            agent.stop()


# --- the item page and Fix match --------------------------------------------------------------------


@pytest.fixture
def tmdb() -> Iterator[tuple[FakeTmdb, ThreadedApp]]:
    """A fake TMDB with the wrong match (501, "Heat Wave") and the right one (949, "Heat")."""
    fake = FakeTmdb(movies={
        501: sample_movie(501, "Heat Wave", 1995, imdb_id="tt0501501", collection=None, cast=3,
                          overview="A wrong match about a summer."),
        949: sample_movie(949, "Heat", 1995, imdb_id="tt0113277", collection=None, cast=3,
                          overview="A group of professional bank robbers."),
    })
    server = ThreadedApp(fake.app, free_port()).start()
    try:
        yield fake, server
    finally:
        server.stop()


def test_item_page_files_fix_match_and_one_save(browser: Browser, tmp_path: Path,
                                                tmdb: tuple[FakeTmdb, ThreadedApp]) -> None:
    """Artwork files listed by their names on disk; Fix match re-identifies and republishes; one Save locks two
    edited fields and its notice is in view."""
    fake, server = tmdb
    folder = tmp_path / "media" / "movies" / "Heat (1995)"
    folder.mkdir(parents=True)
    (folder / "Heat (1995).mkv").write_bytes(b"\x1a\x45\xdf\xa3" + b"\0" * 1024)
    (folder / "Heat (1995).nfo").write_text(  # another tool matched it to the wrong TMDB entry
        '<?xml version="1.0" encoding="UTF-8"?>\n<movie><uniqueid type="tmdb" default="true">501</uniqueid></movie>\n',
        encoding="utf-8")
    agent = run_agent(tmp_path, {"providers": {"tmdb": {
        "api_key": fake.api_key, "base_url": f"{server.base}/3", "image_base_url": f"{server.base}/t/p/original",
        "rate_limit": 1000}}})
    tab = Tab(browser, "dashboard_item_page")
    try:
        agent.scan()
        (movie_id,) = movie_ids(agent).values()
        wait_for(agent, f"/api/movies/{movie_id}", lambda m: m["status"] == "enriched" and m["files"])
        agent.wait_idle()
        assert (folder / "poster.jpg").is_file() and (folder / "fanart.jpg").is_file()
        page = tab.page
        open_dashboard(page, agent)
        page.get_by_test_id(f"open-movie-{movie_id}").click()
        detail = page.get_by_test_id("detail")
        expect(detail).to_be_visible()
        expect(page.get_by_test_id("edit-title")).to_have_value("Heat Wave")
        files = page.get_by_test_id("artwork-files")
        expect(files.get_by_test_id("art-poster")).to_contain_text("poster.jpg")
        expect(files.get_by_test_id("art-fanart")).to_contain_text("fanart.jpg")
        expect(files.get_by_test_id("written-files")).to_contain_text("Heat (1995).nfo")
        on_disk = {p.name for p in folder.iterdir()}
        for name in files.get_by_test_id("artwork-file").all_inner_texts():
            assert name.split("/")[-1] in on_disk, (name, on_disk)
        page.get_by_test_id("nfo").locator("summary").click()
        expect(page.get_by_test_id("nfo-text")).to_contain_text("<title>Heat Wave</title>")
        tab.shot("_before_fix")

        # Fix match: search by title and year, pick the right one.
        page.get_by_test_id("fix-match").click()
        dialog = page.get_by_test_id("fix-match-dialog")
        expect(dialog).to_be_visible()
        expect(page.get_by_test_id("match-title")).to_have_value("Heat Wave")
        page.get_by_test_id("match-title").fill("Heat")
        page.get_by_test_id("match-search").click()
        expect(page.get_by_test_id("match-result-949")).to_contain_text("Heat (1995)")
        expect(page.get_by_test_id("match-result-501")).to_contain_text("the current match")
        tab.shot("_fix_match")
        page.get_by_test_id("match-use-949").click()
        expect(dialog).to_be_hidden()
        expect(page.get_by_test_id("status-info").last).to_contain_text("Matched to Heat (1995)")
        expect(page.get_by_test_id("edit-title")).to_have_value("Heat", timeout=15_000)
        expect(page.get_by_test_id("locked-tmdb_id")).to_be_visible()
        movie = wait_for(agent, f"/api/movies/{movie_id}",
                         lambda m: m["tmdb_id"] == 949 and m["status"] == "enriched" and m["imdb_id"] == "tt0113277")
        assert movie["title"] == "Heat" and "tmdb_id" in movie["locked_fields"]
        agent.wait_idle()
        nfo = (folder / "Heat (1995).nfo").read_text(encoding="utf-8")
        assert "<title>Heat</title>" in nfo and ">949<" in nfo and "501" not in nfo
        assert fake.hits["/3/search/movie"] >= 1 and fake.hits["/3/movie/949"] >= 1
        expect(page.get_by_test_id("nfo-text")).to_contain_text("<title>Heat</title>")

        # One Save locks both edited fields.
        page.get_by_test_id("edit-title").fill("Heat: Director's Definitive Edition")
        page.get_by_test_id("edit-tagline").fill("A Los Angeles crime saga")
        page.get_by_test_id("save").click()
        notice = page.get_by_test_id("status-info").last
        expect(notice).to_contain_text("Saved and locked: Title, Tagline")
        expect(notice).to_be_in_viewport()
        expect(page.get_by_test_id("locked-title")).to_be_visible()
        expect(page.get_by_test_id("locked-tagline")).to_be_visible()
        expect(page.get_by_test_id("unlock-title")).to_be_visible()
        tab.shot("_saved")
        movie = agent.request("GET", f"/api/movies/{movie_id}")[1]
        assert {"title", "tagline"} <= set(movie["locked_fields"])
        assert movie["title"] == "Heat: Director's Definitive Edition"
        agent.wait_idle()
        assert "<tagline>A Los Angeles crime saga</tagline>" in (folder / "Heat (1995).nfo").read_text(encoding="utf-8")

        # A lock toggle per artwork type.
        page.get_by_test_id("lock-art-poster").click()
        expect(page.get_by_test_id("unlock-art-poster")).to_be_visible()
        assert "art:poster" in agent.request("GET", f"/api/movies/{movie_id}")[1]["locked_fields"]
        tab.shot("_full", full_page=True)
    finally:
        tab.close()
        agent.stop()


def test_fix_match_without_a_key_says_where_to_set_it(browser: Browser, tmp_path: Path) -> None:
    """With no TMDB key the Fix match dialog says that searching needs one and where it goes; Update says what
    it can still do."""
    add_movie(tmp_path / "media" / "movies", "Alpha Movie", 2001, 501)
    agent = run_agent(tmp_path)
    tab = Tab(browser, "dashboard_fix_match_no_key")
    try:
        agent.scan()
        (movie_id,) = movie_ids(agent).values()
        open_dashboard(tab.page, agent, f"#/movie/{movie_id}")
        tab.page.get_by_test_id("fix-match").click()
        expect(tab.page.get_by_test_id("match-message")).to_contain_text("providers.tmdb.api_key")
        tab.shot()
        tab.page.get_by_test_id("match-close").click()
        tab.page.get_by_test_id("enrich").click()
        expect(tab.page.get_by_test_id("status-info").last).to_contain_text("No TMDB API key: only the NFO")
    finally:
        tab.close()
        agent.stop()


# --- health -------------------------------------------------------------------------------------------


def test_health_no_key_removed_root_and_player_test(browser: Browser, tmp_path: Path) -> None:
    """System > Health: no provider key, a library root removed while running, an unreachable player with its
    error beside its state and a Test button that reports, then clears once the player answers."""
    kodi_port = free_port()
    add_movie(tmp_path / "media" / "movies", "Alpha Movie", 2001, 501)
    agent = run_agent(tmp_path, {"players": [
        {"name": "living-room", "type": "kodi", "url": f"http://127.0.0.1:{kodi_port}/jsonrpc", "ws_port": kodi_port}]})
    tab = Tab(browser, "dashboard_health")
    kodi: ThreadedApp | None = None
    try:
        page = tab.page
        open_dashboard(page, agent, "#/system")
        health = page.get_by_test_id("health")
        expect(health.get_by_test_id("health-provider_key_missing")).to_contain_text("providers.tmdb.api_key")
        expect(health.get_by_test_id("health-provider_key_missing")).to_contain_text("no plot, cast or artwork")
        expect(page.get_by_test_id("stale-banner")).to_be_hidden()

        shutil.rmtree(tmp_path / "media" / "tv")
        page.get_by_test_id("health-refresh").click()
        root = health.locator('[data-testid="health-library_root_missing"][data-subject="TV"]')
        expect(root).to_contain_text(str(tmp_path / "media" / "tv"))
        expect(root).to_contain_text("does not exist")

        page.get_by_test_id("test-living-room").click()
        expect(page.get_by_test_id("player-test-living-room")).to_contain_text(
            re.compile(r"refused|unreachable|connect", re.I))
        expect(page.get_by_test_id("player-state-living-room")).to_have_text("unreachable")
        expect(page.get_by_test_id("player-test-living-room")).to_contain_text("Test failed")
        expect(page.get_by_test_id("player-activity-living-room")).to_have_text("—")
        warning = health.get_by_test_id("health-player_unreachable")
        expect(warning).to_contain_text("living-room")
        expect(page.get_by_test_id("health-count")).to_have_text(re.compile(r"^[3-9]$"))
        tab.shot("_warnings", full_page=True)
        _, body = agent.request("GET", "/api/health")
        codes = {(w["code"], w["subject"]) for w in body["warnings"]}
        assert {("provider_key_missing", "tmdb"), ("library_root_missing", "TV"),
                ("player_unreachable", "living-room")} <= codes

        fake = FakeKodi()
        kodi = ThreadedApp(fake.http_app(), kodi_port).start()
        page.get_by_test_id("health-test-living-room").click()
        expect(health.get_by_test_id("health-player_unreachable")).to_have_count(0)
        expect(page.get_by_test_id("player-state-living-room")).to_have_text("connected")
        expect(page.get_by_test_id("player-test-living-room")).to_contain_text("Kodi answered")
        expect(page.get_by_test_id("player-activity-living-room")).to_have_text("Idle")
        tab.shot("_after_test", full_page=True)
    finally:
        tab.close()
        agent.stop()
        if kodi is not None:
            kodi.stop()


def test_empty_states_name_the_next_step(browser: Browser, tmp_path: Path) -> None:
    """Before a key there is no stale-data banner; before a scan the library says to press Scan; with no
    players the System page says how to add one; an empty Activity says what starts work."""
    agent = run_agent(tmp_path)
    tab = Tab(browser, "dashboard_empty")
    try:
        tab.page.goto(agent.base)  # no key yet: the key form, and no "out of date" banner
        expect(tab.page.get_by_test_id("apikey-form")).to_be_visible()
        expect(tab.page.get_by_test_id("stale-banner")).to_be_hidden()
        open_dashboard(tab.page, agent)
        expect(tab.page.get_by_test_id("movies-empty")).to_contain_text("press Scan")
        tab.page.get_by_test_id("kind-series").click()
        expect(tab.page.get_by_test_id("series-empty")).to_contain_text("press Scan")
        tab.shot("_library")
        tab.page.get_by_test_id("tab-system").click()
        expect(tab.page.get_by_test_id("players-empty")).to_contain_text(
            "No players configured: add one under players:")
        tab.page.get_by_test_id("tab-activity").click()
        expect(tab.page.get_by_test_id("jobs")).to_contain_text("press Scan")
    finally:
        tab.close()
        agent.stop()


# --- the phone ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("dark", [False, True], ids=["light", "dark"])
def test_phone_shows_the_library_in_the_first_screen(browser: Browser, tmp_path: Path, dark: bool) -> None:
    """At 390x844 the first posters are in the first screen, three to a row, without scrolling."""
    for n in range(12):
        add_movie(tmp_path / "media" / "movies", f"Film Number {n:02d}", 2000 + n, 600 + n)
    agent = run_agent(tmp_path)
    tab = Tab(browser, f"dashboard_phone_{'dark' if dark else 'light'}", viewport=PHONE, dark=dark)
    try:
        agent.scan()
        page = tab.page
        open_dashboard(page, agent)
        cards = page.get_by_test_id("movies").locator("li.card")
        expect(cards).to_have_count(12)
        for index in range(6):  # two full rows of posters
            expect(cards.nth(index)).to_be_in_viewport(ratio=1)
        first, third = cards.nth(0).bounding_box(), cards.nth(2).bounding_box()
        assert first is not None and third is not None and abs(first["y"] - third["y"]) < 1, (first, third)
        tab.shot()
        movie_id = movie_ids(agent)["Film Number 01"]
        page.get_by_test_id(f"open-movie-{movie_id}").click()
        title = page.get_by_test_id("edit-title")
        expect(title).to_have_value("Film Number 01")
        form = page.get_by_test_id("fields").bounding_box()
        field = title.bounding_box()
        assert form is not None and field is not None and field["width"] >= form["width"] * 0.95, (field, form)
        tab.shot("_item")
    finally:
        tab.close()
        agent.stop()


def test_two_agents_one_dashboard(browser: Browser, tmp_path: Path, pg_url: str) -> None:
    """Two agents on one PostgreSQL: either agent's dashboard shows both libraries' movies and, under System,
    both agents with their libraries and state; a single-box agent shows no Agents panel."""
    agents: list[AgentProcess] = []
    for name, title, tmdb_id in (("nas1", "Alpha Movie", 501), ("nas2", "Beta Film", 502)):
        root = tmp_path / name
        add_movie(root / "media" / "movies", title, 2001, tmdb_id)
        agents.append(run_agent(root, {"store": {"url": pg_url}, "agent": {"name": name}, "libraries": [
            {"name": f"Movies-{name}", "kind": "movies", "path": str(root / "media" / "movies"), "watch": "off"}]}))
    tab = Tab(browser, "dashboard_two_agents")
    try:
        nas1, nas2 = agents
        nas1.scan("Movies-nas1")
        nas2.scan("Movies-nas2")
        page = tab.page
        open_dashboard(page, nas1)
        grid = page.get_by_test_id("movies")
        expect(grid.locator("li.card")).to_have_count(2)
        expect(grid).to_contain_text("Beta Film")  # nas2's movie, on nas1's dashboard
        open_dashboard(page, nas1, "#/system")
        expect(page.get_by_test_id("agents")).to_be_visible()
        expect(page.get_by_test_id("agent-nas2")).to_contain_text("Movies-nas2")
        expect(page.get_by_test_id("agent-state-nas2")).to_have_text("up")
        nas2.stop()
        page.get_by_test_id("health-refresh").click()
        expect(page.get_by_test_id("agent-state-nas2")).to_have_text("stopped")
        tab.shot("_agents", full_page=True)
    finally:
        tab.close()
        for agent in agents:
            agent.stop()


def test_one_box_shows_no_agents_panel(browser: Browser, tmp_path: Path) -> None:
    agent = run_agent(tmp_path)
    tab = Tab(browser, "dashboard_one_box")
    try:
        open_dashboard(tab.page, agent, "#/system")
        expect(tab.page.get_by_test_id("players-empty")).to_be_visible()
        expect(tab.page.get_by_test_id("agents")).to_be_hidden()
    finally:
        tab.close()
        agent.stop()
