"""The dashboard in real headless Chromium against the real agent process: connect, list, edit, scan, reconnect."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import API_KEY, free_port, write_config

pytestmark = pytest.mark.browser

try:
    from playwright.sync_api import Browser, Page, expect, sync_playwright
except ImportError:
    pytest.skip("playwright is not installed (pip install 'playwright>=1.40'; no browser download needed)",
                allow_module_level=True)

from browser_util import CHROMIUM, CHROMIUM_ARGS, AgentProcess, add_movie, screenshot_path  # noqa: E402

if not CHROMIUM.exists():
    pytest.skip(f"{CHROMIUM} is missing (apt-get install chromium)", allow_module_level=True)

TIMEOUT_MS = 10_000  # every wait has this deadline
MOVIES = (("Alpha Movie", 2001, 501), ("Beta Film", 2010, 502))


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


@pytest.fixture
def agent(tmp_path: Path) -> Iterator[AgentProcess]:
    """The real agent as a subprocess on a free port, over a library with two movie folders; no provider keys."""
    port = free_port()
    config = write_config(tmp_path, extra={"server": {"port": port}})
    for title, year, tmdb_id in MOVIES:
        add_movie(tmp_path / "media" / "movies", title, year, tmdb_id)
    process = AgentProcess(config, port, tmp_path / "agent.log")
    process.start()
    try:
        yield process
    finally:
        process.stop()


@pytest.fixture
def page(browser: Browser, agent: AgentProcess, request: pytest.FixtureRequest) -> Iterator[Page]:
    """A fresh browser context (empty localStorage); leaves artifacts/screenshots/<test>.png behind.

    It depends on `agent` so the screenshot is taken before the agent is stopped.
    """
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(TIMEOUT_MS)
    tab = context.new_page()
    errors: list[str] = []
    tab.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        yield tab
        assert errors == [], f"uncaught errors in the page: {errors}"
    finally:
        try:
            tab.screenshot(path=str(screenshot_path(request.node.name)), full_page=True)
        finally:
            context.close()


def open_dashboard(page: Page, agent: AgentProcess) -> None:
    """Load the dashboard with ?apikey= and wait for the live connection."""
    page.goto(f"{agent.base}/?apikey={API_KEY}")
    expect(page.get_by_test_id("connection")).to_have_text("Connected", timeout=TIMEOUT_MS)


def movie_ids(agent: AgentProcess) -> dict[str, int]:
    """Movie title -> id, from the API."""
    status, body = agent.request("GET", "/api/movies")
    assert status == 200, body
    return {m["title"]: m["id"] for m in body["items"]}


def test_connects_with_key_from_url(page: Page, agent: AgentProcess) -> None:
    """?apikey= connects /ws, is moved to localStorage and out of the address bar; figures and libraries load."""
    open_dashboard(page, agent)
    assert "apikey" not in page.url
    assert page.evaluate("localStorage.getItem('metarr.apikey')") == API_KEY
    expect(page.get_by_test_id("stale-banner")).to_be_hidden()
    expect(page.get_by_test_id("queue-pending")).to_have_text(re.compile(r"^\d+$"))
    expect(page.get_by_test_id("scan-Movies")).to_be_visible()
    expect(page.get_by_test_id("apikey-form")).to_be_hidden()


def test_movies_listed_live_after_api_scan(page: Page, agent: AgentProcess) -> None:
    """A scan started through the API fills the open movies table through /ws, without a reload."""
    open_dashboard(page, agent)
    movies = page.get_by_test_id("movies")
    expect(movies).to_contain_text("No movies yet: press Scan")
    agent.scan()
    ids = movie_ids(agent)
    assert sorted(ids) == ["Alpha Movie", "Beta Film"]
    for title, movie_id in ids.items():
        expect(page.get_by_test_id(f"movie-title-{movie_id}")).to_have_text(title)
    expect(movies.locator("li.card")).to_have_count(2)
    expect(page.get_by_test_id("library-Movies")).to_contain_text("2 movies")


def test_edit_title_locks_and_survives_reload(page: Page, agent: AgentProcess, tmp_path: Path) -> None:
    """Editing the title on the item page saves it, shows the lock, persists across a reload and reaches the NFO."""
    agent.scan()
    movie_id = movie_ids(agent)["Alpha Movie"]
    open_dashboard(page, agent)
    page.get_by_test_id(f"open-movie-{movie_id}").click()
    detail = page.get_by_test_id("detail")
    expect(detail).to_be_visible()
    expect(page.get_by_test_id("edit-title")).to_have_value("Alpha Movie")
    expect(page.get_by_test_id("locked-title")).to_have_count(0)
    page.get_by_test_id("edit-title").fill("Alpha Movie: Director's Cut")
    page.get_by_test_id("save").click()
    expect(page.get_by_test_id("locked-title")).to_be_visible()
    expect(page.get_by_test_id("unlock-title")).to_be_visible()
    expect(page.get_by_test_id("detail")).to_contain_text("Alpha Movie: Director's Cut")
    page.get_by_test_id("detail-close").click()
    row = page.get_by_test_id(f"movie-{movie_id}")
    expect(row).to_contain_text("Alpha Movie: Director's Cut")
    expect(row.locator(".locks")).to_contain_text("title")
    expect(row.locator(".locks svg.lock-icon")).to_be_visible()

    page.reload()
    expect(page.get_by_test_id("connection")).to_have_text("Connected")
    expect(page.get_by_test_id(f"movie-title-{movie_id}")).to_have_text("Alpha Movie: Director's Cut")
    expect(page.get_by_test_id(f"movie-{movie_id}").locator(".locks")).to_have_attribute("title", "Locked: title")
    page.get_by_test_id(f"open-movie-{movie_id}").click()
    expect(page).to_have_url(re.compile(rf"#/movie/{movie_id}$"))
    expect(page.get_by_test_id("edit-title")).to_have_value("Alpha Movie: Director's Cut")
    expect(page.get_by_test_id("locked-title")).to_be_visible()

    status, movie = agent.request("GET", f"/api/movies/{movie_id}")
    assert status == 200 and movie["title"] == "Alpha Movie: Director's Cut"
    assert "title" in movie["locked_fields"]
    agent.wait_idle()
    nfo = tmp_path / "media" / "movies" / "Alpha Movie (2001)" / "Alpha Movie (2001).nfo"
    assert "<title>Alpha Movie: Director's Cut</title>" in nfo.read_text(encoding="utf-8")


def test_scan_click_shows_live_progress(page: Page, agent: AgentProcess) -> None:
    """Scan Movies from its card: the progress line and the jobs table follow the job to completion."""
    open_dashboard(page, agent)
    progress = page.get_by_test_id("scan-progress-Movies")
    expect(progress).to_have_text("")
    page.get_by_test_id("scan-Movies").click()
    expect(progress).to_have_text("Scan finished")
    scan_row = page.get_by_test_id("jobs").locator(
        "tbody tr", has=page.locator('td[data-label="Type"]', has_text=re.compile(r"^scan$")))
    expect(scan_row).to_have_count(1)
    expect(scan_row).to_have_attribute("data-status", "completed")
    expect(page.get_by_test_id("library-Movies")).to_contain_text("2 movies")
    expect(page.get_by_test_id("movies").locator("li.card")).to_have_count(2)
    expect(page.get_by_test_id("queue-running")).to_have_text("0")


def test_reconnects_after_agent_restart(page: Page, agent: AgentProcess) -> None:
    """Stopping the agent shows Reconnecting and the stale banner; restarting it (same port, data) reconnects."""
    agent.scan()
    open_dashboard(page, agent)
    expect(page.get_by_test_id("movies").locator("li.card")).to_have_count(2)
    connection = page.get_by_test_id("connection")

    agent.stop()
    expect(connection).to_have_text(re.compile(r"^(Reconnecting|Disconnected)$"))
    expect(page.get_by_test_id("stale-banner")).to_be_visible()

    agent.start()
    expect(connection).to_have_text("Connected", timeout=20_000)
    expect(page.get_by_test_id("stale-banner")).to_be_hidden()
    expect(page.get_by_test_id("movies").locator("li.card")).to_have_count(2)
    # The new socket carries live frames: a scan started from the page reports its end.
    page.get_by_test_id("scan-Movies").click()
    expect(page.get_by_test_id("scan-progress-Movies")).to_have_text("Scan finished")


def test_phone_layout_detail_fields_use_the_width(browser: Browser, agent: AgentProcess,
                                                  request: pytest.FixtureRequest) -> None:
    """On a phone the posters start in the first screen and the item page's inputs span the form."""
    agent.scan()
    movie_id = movie_ids(agent)["Beta Film"]
    context = browser.new_context(viewport={"width": 390, "height": 844})
    context.set_default_timeout(TIMEOUT_MS)
    phone = context.new_page()
    try:
        open_dashboard(phone, agent)
        expect(phone.get_by_test_id(f"movie-{movie_id}")).to_be_in_viewport()
        phone.get_by_test_id(f"open-movie-{movie_id}").click()
        title = phone.get_by_test_id("edit-title")
        expect(title).to_have_value("Beta Film")
        form = phone.get_by_test_id("fields").bounding_box()
        field = title.bounding_box()
        assert form is not None and field is not None
        assert field["width"] >= form["width"] * 0.95, (field, form)
    finally:
        phone.screenshot(path=str(screenshot_path(request.node.name)))
        context.close()
