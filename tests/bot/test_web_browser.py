"""The review desk in a real browser: Playwright driving Debian's Chromium (launched by its
path; browsers are never downloaded) against the desk served by uvicorn, the fake VK and a
real database. Each test saves a screenshot of the page it checked into `var/web-screenshots/`
(git-ignored) so a person can look at every page after a run."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bot import storage
from bot.comment_stage import comment_guid
from bot.storage import pipeline as store
from bot.storage import reviews
from bot.web import create_app
from tests.bot._fake_vision import animal_jpeg
from tests.bot._web_world import (
    BOTH_BACKENDS,
    PASSWORD,
    SEED_NOW,
    WebWorld,
    build_world,
    running_desk,
    wait_until,
    web_database_url,
)

REPO = Path(__file__).resolve().parents[2]
SCREENSHOTS = REPO / "var" / "web-screenshots"
CHROMIUM = Path(os.environ.get("PETMATCH_CHROMIUM", "/usr/bin/chromium"))

playwright_api = pytest.importorskip(
    "playwright.sync_api", reason="the browser tests need playwright (the dev extra)"
)
pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not CHROMIUM.is_file(),
        reason=f"no Chromium at {CHROMIUM} (apt-get install chromium, or set PETMATCH_CHROMIUM)",
    ),
]


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with playwright_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=["--no-sandbox"]
        )
        yield launched
        launched.close()


@pytest.fixture
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return web_database_url(request, tmp_path)


@pytest.fixture
def desk(fake_vk: Any, database_url: str, tmp_path: Path) -> Iterator[tuple[WebWorld, str]]:
    world = build_world(fake_vk, database_url, tmp_path / "var")
    app = create_app(
        world.settings,
        sessions=world.sessions,
        vision=world.vision,
        gateway_factory=world.gateway_factory,
    )
    try:
        with running_desk(app) as base_url:
            yield world, base_url
    finally:
        world.sessions.kw["bind"].dispose()


@pytest.fixture
def page(browser: Any, desk: tuple[WebWorld, str]) -> Iterator[Any]:
    context = browser.new_context(base_url=desk[1], viewport={"width": 1280, "height": 900})
    opened = context.new_page()
    opened.set_default_timeout(10_000)
    dialogs: list[str] = []
    opened.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    opened.dialogs = dialogs
    try:
        yield opened
    finally:
        context.close()


@pytest.fixture
def shot(request: pytest.FixtureRequest) -> Any:
    """Save a full-page screenshot named after the test (and a step)."""

    def save(page: Any, step: str = "") -> Path:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        name = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.name.removeprefix("test_"))
        path = SCREENSHOTS / f"{name}{'-' + step if step else ''}.png"
        page.screenshot(path=str(path), full_page=True)
        assert path.stat().st_size > 0
        return path

    return save


def log_in(page: Any, name: str, password: str = PASSWORD) -> None:
    page.goto("/login")
    page.fill("input[name=name]", name)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")


def select_card(page: Any, match_id: int) -> None:
    page.click(f"#pair-{match_id} .card-head")


def test_log_in(page: Any, shot: Any) -> None:
    page.goto("/queue")
    assert page.url.endswith("/login")
    shot(page, "login")
    log_in(page, "anna")
    page.wait_for_url("**/queue")
    assert "anna" in page.inner_text("header")
    assert page.locator(".card").count() == 3
    shot(page, "queue")


@pytest.mark.parametrize("database_url", BOTH_BACKENDS, indirect=True)
def test_confirm_with_the_keyboard_posts_the_comment_once(
    page: Any, desk: tuple[WebWorld, str], shot: Any
) -> None:
    world, _ = desk
    match_id = world.matches["ryzhik"]
    log_in(page, "anna")
    page.wait_for_url("**/queue")
    select_card(page, match_id)
    page.keyboard.press("1")
    page.wait_for_selector(".flash")
    assert "Комментарий передан" in page.inner_text(".flash")
    wait_until(lambda: len(world.vk.comments) == 1, "the comment on the fake VK")
    assert page.locator(f"#pair-{match_id}").count() == 0
    shot(page)
    with storage.session_scope(world.sessions) as session:
        match = store.get_match(session, match_id)
    comment = world.vk.comments[0]
    assert comment["guid"] == comment_guid(match.lost_case_id, match.found_case_id)
    # The same pair opened again and confirmed again: still one comment.
    page.goto(f"/pair/{match_id}")
    page.keyboard.press("1")
    time.sleep(0.5)
    assert len(world.vk.comments) == 1


def test_reject_with_the_keyboard_and_the_pair_leaves_the_queue(
    page: Any, desk: tuple[WebWorld, str], shot: Any
) -> None:
    world, _ = desk
    log_in(page, "anna")
    page.wait_for_url("**/queue")
    select_card(page, world.matches["sharik"])
    page.keyboard.press("3")
    page.wait_for_selector(".flash")
    assert page.locator(f"#pair-{world.matches['sharik']}").count() == 0
    assert page.locator(".card").count() == 2
    shot(page)
    with storage.session_scope(world.sessions) as session:
        decided = reviews.latest_decision(session, world.matches["sharik"])
    assert decided.decision is reviews.Decision.DIFFERENT and decided.reviewer == "anna"
    assert world.vk.comments == []


def test_every_shortcut(page: Any, desk: tuple[WebWorld, str], shot: Any) -> None:
    world, _ = desk
    log_in(page, "anna")
    page.wait_for_url("**/queue")
    murka = world.matches["murka"]
    select_card(page, murka)
    assert page.locator(f"#pair-{murka} button[value=same_comment]").is_disabled()
    assert "нет согласия" in page.inner_text(f"#pair-{murka} .why")
    shot(page, "not-offered")
    page.keyboard.press("1")  # not offered here: nothing happens
    time.sleep(0.3)
    assert page.locator(f"#pair-{murka}").count() == 1
    page.keyboard.press("2")
    page.wait_for_selector(".flash")
    select_card(page, world.matches["sharik"])
    page.keyboard.press("4")
    page.wait_for_selector(".flash")
    page.keyboard.press("j")
    with storage.session_scope(world.sessions) as session:
        murka_decision = reviews.latest_decision(session, murka)
        sharik_reviews = reviews.reviews_of_match(session, world.matches["sharik"])
    assert murka_decision.decision is reviews.Decision.SAME_MANUAL
    assert [r.decision for r in sharik_reviews] == [reviews.Decision.SKIP]
    assert page.locator(".card").count() == 1  # ryzhik is left
    shot(page)
    assert world.vk.comments == []


def test_search_by_an_uploaded_photo(
    page: Any, desk: tuple[WebWorld, str], shot: Any, tmp_path: Path
) -> None:
    world, _ = desk
    photo = tmp_path / "collar.jpg"
    photo.write_bytes(animal_jpeg("murka", shift=5))
    log_in(page, "anna")
    page.goto("/search")
    page.set_input_files("input[name=photo]", str(photo))
    page.select_option("select[name=kind]", "found")
    page.click("form.filters button[type=submit]")
    page.wait_for_selector(".results, .muted")
    with storage.session_scope(world.sessions) as session:
        expected = storage.get_post_by_pk(session, world.posts["murka_found"]).url
    first = page.locator(".result").first
    assert expected in first.inner_html()
    shot(page)


def test_groups_for_an_admin_not_for_a_volunteer(
    page: Any, desk: tuple[WebWorld, str], shot: Any
) -> None:
    world, _ = desk
    world.vk.add_group(778, "spasem_hvost", "Спасём хвост")
    log_in(page, "anna")
    page.wait_for_url("**/queue")
    assert page.locator("nav >> text=Группы").count() == 0
    page.goto("/groups")
    assert "только для администраторов" in page.inner_text("main")
    shot(page, "volunteer")
    page.click("form.logout button")
    log_in(page, "boss")
    page.goto("/groups")
    page.fill("#add-group input[name=ref]", "https://vk.com/spasem_hvost")
    page.fill("#add-group input[name=city]", "Тверь")
    page.click("#add-group button[type=submit]")
    page.wait_for_selector(".flash")
    assert "Добавлена группа spasem_hvost" in page.inner_text(".flash")
    assert "Спасём хвост" in page.inner_text("#group-778")
    shot(page, "admin")
    with storage.session_scope(world.sessions) as session:
        assert storage.get_group(session, 778).city == "Тверь"


def test_hostile_post_text_shows_as_text(page: Any, desk: tuple[WebWorld, str], shot: Any) -> None:
    world, _ = desk
    log_in(page, "anna")
    page.goto(f"/post/{world.posts['sharik_lost']}")
    text = page.inner_text(".posttext")
    assert '<script>alert("xss")</script>' in text
    assert "<img src=x onerror=" in text
    assert page.title() != "pwned" and page.dialogs == []
    assert page.locator(".posttext script, .posttext img").count() == 0
    shot(page)


def test_a_form_without_its_csrf_token_is_refused(
    page: Any, desk: tuple[WebWorld, str], shot: Any
) -> None:
    world, _ = desk
    log_in(page, "anna")
    page.wait_for_url("**/queue")
    card = f"#pair-{world.matches['sharik']}"
    page.evaluate(f"document.querySelector('{card} input[name=csrf_token]').remove()")
    page.click(f"{card} button[value=different]")
    page.wait_for_selector(".problem")
    assert "CSRF" in page.inner_text(".problem")
    shot(page)
    with storage.session_scope(world.sessions) as session:
        assert reviews.reviews_of_match(session, world.matches["sharik"]) == []


def test_a_wrong_password_five_times_is_slowed_down(page: Any, shot: Any) -> None:
    for _ in range(5):
        log_in(page, "anna", "wrong password")
        assert "Неверное имя или пароль" in page.inner_text(".error")
    log_in(page, "anna")  # the right one, too soon
    assert "Подождите" in page.inner_text(".error")
    assert page.url.endswith("/login")
    shot(page)


def test_dashboard_against_a_day_with_known_counts(
    page: Any, desk: tuple[WebWorld, str], shot: Any
) -> None:
    world, _ = desk
    with storage.session_scope(world.sessions) as session:
        candidates = len(store.list_matches(session, limit=1000))
    log_in(page, "anna")
    page.goto(f"/dashboard?end={SEED_NOW.date().isoformat()}&days=7")

    def last_day(series: str) -> int:
        return int(page.inner_text(f"tr[data-series={series}] .last-day"))

    assert last_day("posts") == 6
    assert last_day("animals") == 6
    assert last_day("candidates") == candidates
    assert last_day("auto_comments") == 0
    assert page.locator("svg.chart").count() == 6
    shot(page)


def test_the_petmatch_web_command_serves_the_desk(
    browser: Any, database_url: str, tmp_path: Path, shot: Any
) -> None:
    """The real command in a subprocess: it answers /healthz and shows the login page."""
    port = _free_port()
    env = {
        **os.environ,
        "PETMATCH_DATABASE_URL": database_url,
        "PETMATCH_VAR_DIR": str(tmp_path / "var"),
        "PYTHONPATH": str(REPO),
    }
    env.pop("PETMATCH_VK__TOKEN", None)
    log = tmp_path / "web.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [sys.executable, "-c", "from bot.cli import main; main()", "web", "--port", str(port)],
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        _wait_for_port(port, process, log)
        context = browser.new_context(base_url=f"http://127.0.0.1:{port}")
        page = context.new_page()
        assert page.goto("/healthz").status == 200
        page.goto("/queue")
        assert page.url.endswith("/login")
        assert "Вход для волонтёров" in page.inner_text("main")
        shot(page)
        context.close()
    finally:
        process.terminate()
        process.wait(timeout=10)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_for_port(
    port: int, process: subprocess.Popen, log: Path, timeout: float = 30.0
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            output = log.read_text(encoding="utf-8", errors="replace")
            raise AssertionError(f"petmatch web exited early: {output[-2000:]}")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise TimeoutError(f"petmatch web did not listen on {port} within {timeout:.0f} s")
