"""The desk shows the posts whose photos could not be looked at (a local I/O error, not "no
animal"): waiting with its attempts and next try, then failed with the reason; the post page
says the same. Over HTTP without a browser, on the real pipeline and both backends."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from starlette.testclient import TestClient

from bot import storage
from bot.config import Settings
from bot.pipeline import Pipeline
from bot.polling import poll_cycle
from bot.storage.problems import get_post_retry
from bot.storage.records import PostState
from bot.web import create_app
from tests.bot._fake_vision import animal_jpeg
from tests.bot._web_world import (
    BOTH_BACKENDS,
    HOSTILE_TEXT,
    LOST_GROUP,
    PASSWORD,
    SEED_NOW,
    WebWorld,
    build_world,
    web_database_url,
)
from tests.bot.fakevk_fixtures import open_gateway

FIRST_TRY = SEED_NOW + timedelta(hours=1)


@pytest.fixture
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return web_database_url(request, tmp_path)


@pytest.fixture
def world(fake_vk: Any, database_url: str, tmp_path: Any) -> Iterator[WebWorld]:
    built = build_world(fake_vk, database_url, tmp_path / "var")
    # Two attempts, so the test sees both "waiting" and "failed".
    built.settings = built.settings.model_copy(
        update={"processing": built.settings.processing.model_copy(update={"max_attempts": 2})}
    )
    yield built
    built.sessions.kw["bind"].dispose()


def _client(world: WebWorld, now: datetime) -> TestClient:
    app = create_app(
        world.settings,
        sessions=world.sessions,
        vision=world.vision,
        gateway_factory=world.gateway_factory,
        clock=lambda: now,
    )
    client = TestClient(app, base_url="http://testserver", follow_redirects=False)
    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/login").text)
    assert token
    response = client.post(
        "/login", data={"name": "anna", "password": PASSWORD, "csrf_token": token.group(1)}
    )
    assert response.status_code == 303
    return client


def _cycle(world: WebWorld, now: datetime) -> None:
    with open_gateway(world.settings.vk) as gateway:
        poll_cycle(world.sessions, gateway, world.settings, now=now)
        Pipeline(world.settings, world.sessions, gateway, vision=world.vision).process_pending(
            now=now
        )


def _break_crops_folder(settings: Settings) -> None:
    """A file where the crops folder should be: every crop write fails with an OS error."""
    crops = settings.var_dir / "crops"
    if crops.is_dir():
        shutil.rmtree(crops)
    crops.parent.mkdir(parents=True, exist_ok=True)
    crops.write_text("not a folder")


def _table(html: str, table_id: str) -> str:
    found = re.search(rf'<table class="list unlooked" id="{table_id}">(.*?)</table>', html, re.S)
    return found.group(1) if found else ""


def _unlooked_post(world: WebWorld) -> storage.Post:
    """A new post with the hostile text whose photo cannot be looked at."""
    post_id = world.vk.add_post(
        LOST_GROUP, text=HOSTILE_TEXT + " (ещё одна)",
        date=int((FIRST_TRY - timedelta(minutes=30)).timestamp()),
        photos=[animal_jpeg("bobik")],
    )
    _break_crops_folder(world.settings)
    _cycle(world, FIRST_TRY)
    with storage.session_scope(world.sessions) as session:
        post = storage.get_post(session, -LOST_GROUP, post_id)
    assert post is not None and post.state is PostState.PROCESSING
    return post


@pytest.mark.parametrize("database_url", BOTH_BACKENDS, indirect=True)
def test_a_post_that_could_not_be_looked_at_waits_then_fails_on_the_desk(
    world: WebWorld,
) -> None:
    post = _unlooked_post(world)
    normal = [_url(world, pk) for pk in world.posts.values()]

    with _client(world, FIRST_TRY) as client:
        html = client.get("/unlooked").text
        waiting = _table(html, "waiting")
        assert post.url in waiting and f'href="/post/{post.id}"' in waiting
        assert _table(html, "failed") == ""
        next_try = FIRST_TRY + timedelta(minutes=world.settings.processing.retry_base_minutes)
        zone = ZoneInfo(world.settings.commenting.timezone)
        local = f"{next_try.astimezone(zone):%d.%m.%Y %H:%M}"
        assert local == "23.11.2026 13:05"  # Moscow, not UTC
        assert "попыток 1 из 2" in waiting and local in waiting
        assert all(f"\"{url}\"" not in html for url in normal)  # looked-at posts are not listed
        # Post text is hostile: shown as text.
        assert "<script>alert" not in html and "&lt;script&gt;alert" in html
        page = client.get(f"/post/{post.id}").text
        assert 'id="unlooked"' in page and "ждёт" in page and local in page
        assert 'id="unlooked"' not in client.get(f"/post/{world.posts['ryzhik_lost']}").text

    second_try = FIRST_TRY + timedelta(minutes=6)
    _cycle(world, second_try)  # the crops folder is still broken: the last attempt fails
    with storage.session_scope(world.sessions) as session:
        assert storage.get_post_by_pk(session, post.id).state is PostState.FAILED
        retry = get_post_retry(session, post.id)
    assert retry is not None and retry.last_error

    with _client(world, second_try) as client:
        html = client.get("/unlooked").text
        failed = _table(html, "failed")
        assert _table(html, "waiting") == ""
        assert post.url in failed and f'href="/post/{post.id}"' in failed
        assert "попыток 2 из 2" in failed and "больше не пробует" in failed
        assert _escaped(retry.last_error) in failed  # the reason
        assert all(f"\"{url}\"" not in html for url in normal)
        page = client.get(f"/post/{post.id}").text
        assert 'id="unlooked"' in page and "не удалось" in page
        assert _escaped(retry.last_error) in page


def test_the_page_needs_login_and_is_empty_when_every_post_was_looked_at(
    world: WebWorld,
) -> None:
    app = create_app(world.settings, sessions=world.sessions, vision=world.vision)
    with TestClient(app, base_url="http://testserver", follow_redirects=False) as anonymous:
        response = anonymous.get("/unlooked")
        assert response.status_code == 303 and response.headers["location"] == "/login"
    with _client(world, SEED_NOW) as client:
        html = client.get("/unlooked").text
    assert "Не удалось посмотреть" in html and 'class="list unlooked"' not in html


def _url(world: WebWorld, post_pk: int) -> str:
    with storage.session_scope(world.sessions) as session:
        return storage.get_post_by_pk(session, post_pk).url


def _escaped(text: str) -> str:
    from markupsafe import escape

    return str(escape(text))
