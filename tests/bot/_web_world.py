"""A small world for the review desk's tests: posts on the fake VK, read by the real poll
cycle and pipeline (with the fake vision), so the queue holds real candidate pairs.

The pipeline's comment threshold is set above every pair's confidence, so all pairs wait in
the desk's uncertain band and nothing is commented automatically.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests

from bot import storage
from bot.config import Settings
from bot.pipeline import Pipeline, VisionModels
from bot.polling import poll_cycle
from bot.storage import pipeline as store
from bot.storage import reviews
from bot.web.security import hash_password
from tests.bot._fake_vision import FakeEmbedder, FakeSegmenter, animal_jpeg
from tests.bot.fakevk_fixtures import make_vk_settings, open_gateway

SEED_NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
LOST_GROUP, FOUND_GROUP, NO_CONSENT_GROUP = 601, 602, 603
PASSWORD = "correct horse battery"
HOSTILE_TEXT = (
    'Пропала собака, Москва <script>alert("xss")</script> '
    '<img src=x onerror="document.title=\'pwned\'"> синяя'
)
_PASSWORD_HASH = hash_password(PASSWORD)  # once: argon2 is slow on purpose


@dataclass
class WebWorld:
    settings: Settings
    sessions: Any
    vk: Any
    vision: VisionModels
    posts: dict[str, int]  # name -> post pk
    matches: dict[str, int]  # pair name -> match id

    def gateway_factory(self) -> Any:
        session = requests.Session()
        session.trust_env = False  # loopback only, whatever proxies the environment names
        from bot.vk.gateway import VkApiGateway

        return VkApiGateway(self.settings.vk, session=session)


def desk_vision() -> VisionModels:
    """The fake vision with a comment threshold no pair reaches."""
    from index.matching import MatchPolicy

    policy = MatchPolicy(
        threshold=0.999,
        curve_xs=(-1.0, 0.5, 0.9, 0.99, 1.0),
        curve_ys=(0.0, 0.05, 0.5, 0.97, 0.99),
    )
    return VisionModels(FakeSegmenter(), FakeEmbedder(), policy)


def desk_settings(vk: Any, database_url: str, var_dir: Path) -> Settings:
    return Settings(
        database_url=database_url,
        var_dir=var_dir,
        vk=make_vk_settings(vk),
        commenting={"min_gap_seconds": 0, "quiet_hours": None},
        matching={"review_threshold": 0.3},
        web={"login_lockout_seconds": 30},
    )


def _ts(hours_ago: float) -> int:
    return int((SEED_NOW - timedelta(hours=hours_ago)).timestamp())


def build_world(vk: Any, database_url: str, var_dir: Path) -> WebWorld:
    """Three Moscow groups (two with consent to comment, one without) and three animals,
    each lost in one post and found in another; a user of each role."""
    settings = desk_settings(vk, database_url, var_dir)
    engine = storage.open_database(database_url)
    sessions = storage.session_factory(engine)
    with storage.session_scope(sessions) as session:
        for vk_id, consent in ((LOST_GROUP, True), (FOUND_GROUP, True), (NO_CONSENT_GROUP, False)):
            vk.add_group(vk_id, f"g{vk_id}", f"Группа {vk_id}")
            storage.upsert_group(
                session, vk_id=vk_id, screen_name=f"g{vk_id}", title=f"Группа {vk_id}",
                now=SEED_NOW, city="Москва", comments_enabled=consent,
            )
        for name, role in (("anna", reviews.Role.VOLUNTEER), ("boss", reviews.Role.ADMIN)):
            reviews.add_user(
                session, name, role=role, password_hash=_PASSWORD_HASH, now=SEED_NOW
            )
    ids = {
        "ryzhik_lost": vk.add_post(
            LOST_GROUP, text="Пропала собака в Москве, рыжая", date=_ts(48),
            photos=[animal_jpeg("ryzhik")],
        ),
        "ryzhik_found": vk.add_post(
            FOUND_GROUP, text="Нашли собаку у метро, Москва, ищем хозяев", date=_ts(2),
            photos=[animal_jpeg("ryzhik", shift=6)],
        ),
        "sharik_lost": vk.add_post(
            LOST_GROUP, text=HOSTILE_TEXT, date=_ts(40), photos=[animal_jpeg("sharik")]
        ),
        "sharik_found": vk.add_post(
            FOUND_GROUP, text="Найдена собака, синяя, Москва", date=_ts(3),
            photos=[animal_jpeg("sharik", shift=4)],
        ),
        "murka_lost": vk.add_post(
            NO_CONSENT_GROUP, text="Пропала кошка, Москва, зелёная", date=_ts(30),
            photos=[animal_jpeg("murka")],
        ),
        "murka_found": vk.add_post(
            NO_CONSENT_GROUP, text="Найдена кошка в Москве, зелёная", date=_ts(1),
            photos=[animal_jpeg("murka", shift=3)],
        ),
    }
    vision = desk_vision()
    with open_gateway(settings.vk) as gateway:
        poll_cycle(sessions, gateway, settings, now=SEED_NOW)
        report = Pipeline(settings, sessions, gateway, vision=vision).process_pending(
            now=SEED_NOW
        )
    assert report.failures == [], report.failures
    assert vk.comments == []  # nothing reached the comment threshold
    posts: dict[str, int] = {}
    matches: dict[str, int] = {}
    with storage.session_scope(sessions) as session:
        for name, post_id in ids.items():
            owner = -_group_of(name)
            post = storage.get_post(session, owner, post_id)
            assert post is not None
            posts[name] = post.id
        for animal in ("ryzhik", "sharik", "murka"):
            candidates = store.matches_of_post(
                session, posts[f"{animal}_lost"], accepted_only=False
            )
            found = [m for m in candidates if m.found_post_pk == posts[f"{animal}_found"]]
            assert found, f"no candidate pair for {animal}"
            matches[animal] = found[0].id
    return WebWorld(settings, sessions, vk, vision, posts, matches)


def _group_of(name: str) -> int:
    if name.startswith("murka"):
        return NO_CONSENT_GROUP
    return LOST_GROUP if name.endswith("_lost") else FOUND_GROUP


@contextmanager
def running_desk(app: Any) -> Iterator[str]:
    """The desk served by uvicorn on a free loopback port in a thread; yields its base URL."""
    import uvicorn

    config = uvicorn.Config(
        app, host="127.0.0.1", port=0, log_level="warning", lifespan="off", ws="none",
        access_log=False,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        _wait_until(lambda: server.started and bool(server.servers), "the desk to start")
        port = server.servers[0].sockets[0].getsockname()[1]
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def _wait_until(condition: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"waited {timeout:.0f} s for {what}")
        time.sleep(0.02)


def wait_until(condition: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
    """Poll `condition` until it holds (the comment stage runs after the response)."""
    _wait_until(condition, what, timeout)


BOTH_BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]


def web_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A migrated, empty database: SQLite unless a test asks for both backends with
    `@pytest.mark.parametrize("database_url", BOTH_BACKENDS, indirect=True)` (the desk's
    queries are covered on both in test_review_storage; its pages need not all run twice)."""
    import shutil

    from tests.bot.conftest import _truncate_all

    backend = getattr(request, "param", "sqlite")
    if backend == "sqlite":
        path = tmp_path / "petmatch.db"
        shutil.copyfile(request.getfixturevalue("sqlite_template"), path)
        return f"sqlite:///{path}"
    url = request.getfixturevalue("pg_migrated_url")
    _truncate_all(url)
    return url
