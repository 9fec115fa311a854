"""Security: the token never leaks (logs, CLI output, exception messages, the database);
only allow-listed photo hosts are ever fetched, redirects elsewhere included; and nothing
from a post's text can reach a comment."""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import subprocess
import sys
import traceback
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from bot import storage
from bot.config import Settings
from bot.fakevk import FakeVkServer
from bot.fakevk._state import Response
from bot.pipeline import Pipeline, VisionModels
from bot.polling import poll_cycle
from bot.storage import pipeline as store
from bot.storage.records import PhotoState
from tests.bot._fake_vision import (
    add_groups,
    animal_jpeg,
    fake_vision,
    pipeline_settings,
    poster_jpeg,
)
from tests.bot.fakevk_fixtures import make_vk_settings, open_gateway

REPO = Path(__file__).resolve().parents[2]
NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
LOST, FOUND = 701, 702
#: A token that is easy to spot anywhere, in full or as a fragment.
SECRET = "vk1.a.SECRET-petmatch-token-7f3e9c1d2b4a"


def _ts(hours_ago: float) -> int:
    return int((NOW - timedelta(hours=hours_ago)).timestamp())


class RecordingVk(FakeVkServer):
    """The fake VK, logging every photo request with its Host, and able to redirect one
    photo to another host name of this same server (reachable, but not allow-listed)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.photo_requests: list[str] = []
        self.redirects: dict[str, str] = {}

    def handle_photo(self, path: str, url: str) -> Response:
        self.photo_requests.append(url)
        if path in self.redirects:
            return Response(302, b"", "text/html", location=self.redirects[path])
        return super().handle_photo(path, url)


@pytest.fixture
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    path = tmp_path / "petmatch.db"
    shutil.copyfile(request.getfixturevalue("sqlite_template"), path)
    return f"sqlite:///{path}"


@pytest.fixture
def vk() -> Iterator[RecordingVk]:
    with RecordingVk(token=SECRET, hang_seconds=1.5, slow_seconds=0.05) as server:
        yield server


@pytest.fixture
def settings(vk: RecordingVk, database_url: str, tmp_path: Path) -> Settings:
    return pipeline_settings(vk, database_url, tmp_path / "var")


@pytest.fixture
def vision() -> VisionModels:
    return fake_vision()


def _groups(vk: FakeVkServer, sessions: Any) -> None:
    add_groups(vk, sessions, {LOST: "Москва", FOUND: "Москва"}, now=NOW)


def _cycle(settings: Settings, sessions: Any, vision: VisionModels, now: datetime = NOW) -> Any:
    with open_gateway(settings.vk) as gateway:
        poll = poll_cycle(sessions, gateway, settings, now=now)
        report = Pipeline(settings, sessions, gateway, vision=vision).process_pending(now=now)
    return poll, report


def _database_text(sessions: Any) -> str:
    """Every text column of every table, joined: where errors and reasons are recorded."""
    from bot.storage._schema import Base

    chunks: list[str] = []
    with storage.session_scope(sessions) as session:
        for table in Base.metadata.sorted_tables:
            for row in session.execute(select(table)):
                chunks.extend(str(value) for value in row if value is not None)
    return "\n".join(chunks)


def _leaks(text: str) -> bool:
    return SECRET in text or SECRET[8:30] in text


# ---- the token -----------------------------------------------------------------------------


def test_token_never_reaches_logs_reports_exceptions_or_the_database(
    vk: RecordingVk, settings: Settings, sessions: Any, vision: VisionModels, caplog: Any
) -> None:
    """A cycle full of failures whose VK error envelopes echo the token back (the fake is
    harsher than VK): not one log line, report, exception or stored error carries it."""
    caplog.set_level(logging.DEBUG)
    _groups(vk, sessions)
    vk.add_post(LOST, text="Пропала собака, Москва", date=_ts(20), photos=[animal_jpeg("ryzhik")])
    vk.add_post(
        FOUND, text="Нашли собаку, Москва", date=_ts(1), photos=[animal_jpeg("ryzhik", shift=2)]
    )
    vk.inject_fault("wall.get", 15, owner_id=-FOUND)
    vk.inject_fault("wall.createComment", 14)
    poll, report = _cycle(settings, sessions, vision)
    assert poll.groups_inaccessible == 1
    vk.inject_fault("execute", 10, times=None)
    vk.inject_fault("wall.createComment", 100, times=None)
    later = _cycle(settings, sessions, vision, NOW + timedelta(hours=30))
    vk.clear_faults()
    vk.inject_fault("execute", 5)
    dead = _cycle(settings, sessions, vision, NOW + timedelta(hours=31))
    assert dead[0].token_error

    # direct calls that fail, and what their exceptions carry
    errors: list[BaseException] = []
    resolve = ("groups.getById", "utils.resolveScreenName")
    with open_gateway(settings.vk) as gateway:
        calls = (
            (resolve, 5, lambda: gateway.resolve_group("x")),
            (resolve, "http500", lambda: gateway.resolve_group("x")),
            (("wall.createComment",), 100, lambda: gateway.create_comment(-LOST, 1, "т", guid="")),
        )
        for methods, fault, call in calls:
            for method in methods:
                vk.inject_fault(method, fault, times=None)
            with pytest.raises(Exception) as caught:
                call()
            errors.append(caught.value)
            vk.clear_faults()

    texts = [caplog.text, _database_text(sessions)]
    for record in caplog.records:
        texts.append(record.getMessage())
        if record.exc_info:
            texts.append("".join(traceback.format_exception(*record.exc_info)))
    for error in errors:
        texts.append("".join(traceback.format_exception(error)))
        texts.append(repr(error) + repr(getattr(error, "__dict__", {})))
    for result in (poll, later[0], dead[0]):
        texts.append(json.dumps(result.to_dict(), default=str))
    for result in (report, later[1], dead[1]):
        texts.append(repr(result))
    assert any("access_token" in t or "VK error" in t for t in texts)  # errors did happen
    leaked = [t[:300] for t in texts if _leaks(t)]
    assert leaked == []


def _cli_env(vk: FakeVkServer, database_url: str, tmp_path: Path, **extra: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PETMATCH_")}
    env.update(
        {
            "PETMATCH_DATABASE_URL": database_url,
            "PETMATCH_VAR_DIR": str(tmp_path / "var"),
            "PETMATCH_VK__API_URL": vk.api_url,
            "PETMATCH_VK__TOKEN": SECRET,
            "PETMATCH_VK__PHOTO_HOSTS": '["127.0.0.1"]',
            "PETMATCH_VK__BACKOFF_BASE_SECONDS": "0.001",
            "PETMATCH_VK__BACKOFF_MAX_SECONDS": "0.01",
            "PETMATCH_VK__REQUEST_TIMEOUT_SECONDS": "0.5",
            "PETMATCH_LOG_LEVEL": "DEBUG",
            **extra,
        }
    )
    return env


def _petmatch(env: dict, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    command = [str(Path(sys.executable).with_name("petmatch")), *args]
    return subprocess.run(command, env=env, capture_output=True, timeout=timeout, cwd=REPO)


def test_token_never_in_cli_output(
    vk: RecordingVk, database_url: str, tmp_path: Path, sessions: Any
) -> None:
    env = _cli_env(vk, database_url, tmp_path)
    vk.add_group(LOST, "lost_msk", "Потеряшки")
    vk.add_group(FOUND, "found_msk", "Найдёныши")
    vk.add_post(LOST, text="Пропала собака, Москва", photos=[animal_jpeg("ryzhik")])
    outputs: list[subprocess.CompletedProcess] = [
        _petmatch(env, "groups", "add", "lost_msk", "--city", "Москва"),
        _petmatch(env, "groups", "add", "found_msk"),
    ]
    vk.inject_fault("groups.getById", 5)
    vk.inject_fault("utils.resolveScreenName", 5)
    outputs.append(_petmatch(env, "groups", "add", "club999"))
    outputs.append(_petmatch(env, "groups", "list", "--json"))
    vk.inject_fault("wall.get", 15, owner_id=-FOUND)
    outputs.append(_petmatch(env, "poll", "--json", "--no-process"))
    vk.inject_fault("execute", "http500", times=None)
    outputs.append(_petmatch(env, "poll", "--json", "--no-process"))
    vk.clear_faults()
    vk.inject_fault("execute", 5)
    dead = _petmatch(env, "poll", "--json", "--no-process")
    outputs.append(dead)

    listed = json.loads(outputs[3].stdout)["groups"]
    assert {g["screen_name"] for g in listed} >= {"lost_msk", "found_msk"}
    assert json.loads(outputs[4].stdout)["groups_inaccessible"] == 1
    assert dead.returncode != 0 and b"token" in dead.stdout + dead.stderr
    assert any(b"DEBUG" in o.stderr for o in outputs)  # the logs were as chatty as they get
    for result in outputs:
        for stream in (result.stdout, result.stderr):
            assert not _leaks(stream.decode("utf-8", "replace")), result.args


@pytest.mark.slow
def test_token_never_in_demo_output(
    vk: RecordingVk, database_url: str, tmp_path: Path, exported_models_dir: Path
) -> None:
    env = _cli_env(vk, database_url, tmp_path, PETMATCH_MODELS_DIR=str(exported_models_dir))
    result = _petmatch(env, "demo", "--json", "--work-dir", str(tmp_path / "demo"))
    assert result.returncode == 0, result.stderr[-2000:]
    summary = json.loads(result.stdout)
    assert summary["comments"] >= 1
    for stream in (result.stdout, result.stderr):
        text = stream.decode("utf-8", "replace")
        assert not _leaks(text)
        assert "fake-vk-token" not in text  # nor the demo's own fake token


# ---- photo hosts ---------------------------------------------------------------------------


def test_only_allow_listed_photo_hosts_are_fetched(
    vk: RecordingVk, settings: Settings, sessions: Any, vision: VisionModels
) -> None:
    """Photos on another host, and a photo that redirects to another host (reachable: the
    same server under the name `localhost`), are refused without a request; the others are
    fetched and the cycle goes on."""
    _groups(vk, sessions)
    good = vk.add_post(
        LOST, text="Пропала собака, Москва", date=_ts(20), photos=[animal_jpeg("ryzhik")]
    )
    redirected = vk.add_post(
        LOST, text="Пропала кошка, Москва", date=_ts(19), photos=[animal_jpeg("murka")]
    )
    offsite_redirect = vk.add_post(
        LOST, text="Пропал пёс, Москва", date=_ts(18), photos=[animal_jpeg("sharik")]
    )
    (url,) = vk.photo_urls(LOST, redirected)
    path = url.split(str(vk.port), 1)[1]
    vk.redirects[path.split("?", 1)[0]] = f"http://localhost:{vk.port}{path}"
    # and one to the fake's own off-site URL (OFFSITE_PHOTO_URL)
    vk.inject_fault(vk.photo_urls(LOST, offsite_redirect)[0], "redirect")
    poll, report = _cycle(settings, sessions, vision)
    assert (poll.photos_stored, poll.photos_failed) == (1, 2)
    assert report.failures == []

    # Now every photo URL VK hands out points at another host.
    vk.photo_base_url = f"http://localhost:{vk.port}/photos/"
    offsite = vk.add_post(
        FOUND, text="Нашли собаку, Москва", date=_ts(1), photos=[animal_jpeg("ryzhik", shift=2)]
    )
    poll2, _ = _cycle(settings, sessions, vision, NOW + timedelta(minutes=5))

    hosts = {re.match(r"http://([^/:]+)", u).group(1) for u in vk.photo_requests}
    assert hosts == {"127.0.0.1"}, vk.photo_requests
    with storage.session_scope(sessions) as session:
        photos = {
            (owner, pid): storage.photos_of_post(session, storage.get_post(session, owner, pid).id)
            for owner, pid in (
                (-LOST, good),
                (-LOST, redirected),
                (-LOST, offsite_redirect),
                (-FOUND, offsite),
            )
        }
    assert [p.state for p in photos[-LOST, good]] == [PhotoState.STORED]
    assert [p.state for p in photos[-FOUND, offsite]] == [PhotoState.FAILED]
    assert "allowlist" in (photos[-FOUND, offsite][0].error or "")
    assert [p.state for p in photos[-LOST, redirected]] == [PhotoState.FAILED]
    assert "allowlist" in (photos[-LOST, redirected][0].error or "")
    assert "photos.example.invalid" in (photos[-LOST, offsite_redirect][0].error or "")
    assert poll2.photos_failed == 1
    assert vk.comments == []  # the found dog's photo was never fetched, so no match


# ---- comment text --------------------------------------------------------------------------

HOSTILE = (
    " Звоните +7 (916) 123-45-67 или 89161234567! Подробности: https://evil.example/promo "
    "и vk.cc/abc, [id1|Павел Дуров] [club1|группа] @all @id1 {link} {percent} {0} "
    "{settings.vk.token} <script>alert(1)</script> #реклама"
)


def test_comment_text_cannot_be_injected_from_post_text(
    vk: RecordingVk, settings: Settings, sessions: Any, vision: VisionModels
) -> None:
    _groups(vk, sessions)
    lost = vk.add_post(
        LOST,
        text="Пропала собака, Москва." + HOSTILE,
        date=_ts(20),
        photos=[animal_jpeg("ryzhik")],
    )
    vk.add_post(
        FOUND,
        text="Нашли собаку, Москва." + HOSTILE,
        date=_ts(1),
        photos=[poster_jpeg(), animal_jpeg("ryzhik", shift=2)],
    )
    _, report = _cycle(settings, sessions, vision)
    assert report.failures == []
    (comment,) = vk.comments
    text = comment["text"]
    assert re.findall(r"https?://\S+", text) == [f"https://vk.com/wall-{LOST}_{lost}"]
    for needle in (
        "916",
        "8916",
        "evil",
        "vk.cc",
        "[id",
        "[club",
        "|",
        "@",
        "{",
        "}",
        "<",
        ">",
        "#",
        "Дуров",
        "script",
        "promo",
        SECRET,
    ):
        assert needle not in text, (needle, text)
    with storage.session_scope(sessions) as session:
        (row,) = store.list_comments(session)
    assert row.text == text


# ---- the read and comment tokens (issue 15) ------------------------------------------------

READ_SECRET = "svc.SECRET-petmatch-read-key-91c2e0"
COMMENT_SECRET = "vk1.a.SECRET-petmatch-comment-4d7f1a"
BOT = 703


def _leaks_any(text: str) -> bool:
    return any(s in text or s[6:26] in text for s in (SECRET, READ_SECRET, COMMENT_SECRET))


def test_read_and_comment_tokens_never_leak(
    vk: RecordingVk, database_url: str, tmp_path: Path
) -> None:
    """Both credentials, one from a file, through the CLI (doctor included) and the split
    gateway's failures, with VK echoing every parameter back: neither appears anywhere."""
    vk.add_token(READ_SECRET, "service")
    vk.add_token(COMMENT_SECRET, "user", admin_of=[BOT])
    vk.add_group(BOT, "petmatch_bot", "Бот")
    vk.add_group(LOST, "lost_msk", "Потеряшки")
    vk.add_post(LOST, text="Пропала собака, Москва", photos=[animal_jpeg("ryzhik")])
    secret_file = tmp_path / "read_token"
    secret_file.write_text(READ_SECRET + "\n")
    env = _cli_env(vk, database_url, tmp_path)
    del env["PETMATCH_VK__TOKEN"]
    env.update(
        {
            "PETMATCH_VK__READ_TOKEN_FILE": str(secret_file),
            "PETMATCH_VK__COMMENT_TOKEN": COMMENT_SECRET,
            "PETMATCH_VK__BOT_GROUP_ID": str(BOT),
        }
    )
    outputs = [_petmatch(env, "groups", "add", "lost_msk", "--comments")]
    outputs.append(_petmatch(env, "poll", "--json", "--no-process"))
    vk.inject_fault("secure.checkToken", 15)
    outputs.append(_petmatch(env, "doctor", "--json"))
    outputs.append(_petmatch(env, "doctor"))
    vk.inject_fault("execute", 5)
    outputs.append(_petmatch(env, "poll", "--no-process"))
    assert outputs[0].returncode == 0 and outputs[1].returncode == 0, outputs[1].stderr
    assert b"token app" in outputs[2].stdout and outputs[4].returncode != 0
    for result in outputs:
        for stream in (result.stdout, result.stderr):
            assert not _leaks_any(stream.decode("utf-8", "replace")), result.args

    from bot.config import load_settings
    from bot.vk.credentials import open_vk_gateway

    errors: list[BaseException] = []
    settings = load_settings(
        vk=make_vk_settings(
            vk,
            token=None,
            read_token_file=secret_file,
            comment_token=COMMENT_SECRET,
            bot_group_id=BOT,
        )
    )
    with open_vk_gateway(settings.vk) as gateway:
        for method, call in (
            ("wall.createComment", lambda: gateway.create_comment(-LOST, 1, "т", guid="g")),
            (
                "secure.checkToken",
                lambda: gateway.reader.call_method("secure.checkToken", {"token": COMMENT_SECRET}),
            ),
        ):
            vk.inject_fault(method, 100)
            with pytest.raises(Exception) as caught:
                call()
            errors.append(caught.value)
        texts = [repr(gateway), repr(settings), str(settings.vk)]
    for error in errors:
        texts.append("".join(traceback.format_exception(error)))
        cause = error.__cause__
        texts.append(repr(cause) + str(getattr(cause, "error", "")))
    assert any("VK error 100" in t for t in texts)
    assert [t[:300] for t in texts if _leaks_any(t)] == []
