"""Reading and commenting credentials: the fake VK's three token kinds behave as VK's API does,
comments go out as the bot's community, the reader never comments and the commenter never
polls, and commands that need no VK work without any token."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pydantic import SecretStr
from typer.testing import CliRunner

from bot.cli import app
from bot.config import Settings
from bot.fakevk import FakeVkServer
from bot.pipeline import Pipeline
from bot.polling import poll_cycle
from bot.storage import pipeline as store
from bot.vk.credentials import (
    CredentialError,
    RoleSplitGateway,
    comment_credential,
    describe_credentials,
    open_vk_gateway,
    read_credential,
)
from bot.vk.errors import GroupAccessError, TokenError
from tests.bot._fake_vision import add_groups, animal_jpeg, fake_vision
from tests.bot.fakevk_fixtures import make_vk_settings, open_gateway

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)  # 12:00 in Moscow, outside quiet hours
LOST, FOUND, BOT_GROUP, OTHER_GROUP = 801, 802, 900, 901
SERVICE = "svc-key-5f0e2d1c"
ADMIN = "vk1.a.admin-user-token-77aa"
NO_WALL = "vk1.a.user-without-wall-3b"
STRANGER = "vk1.a.not-an-admin-token-c4"
COMMUNITY = "vk1.a.community-key-of-900"
DEAD = "vk1.a.revoked-token-0d"


def _ts(hours_ago: float) -> int:
    return int((NOW - timedelta(hours=hours_ago)).timestamp())


@pytest.fixture
def vk(fake_vk: FakeVkServer) -> FakeVkServer:
    fake_vk.add_group(BOT_GROUP, "petmatch_bot", "Бот Потеряшки")
    fake_vk.add_group(OTHER_GROUP, "poteryashki", "Потеряшки")
    fake_vk.add_post(OTHER_GROUP, text="Пропала собака")
    fake_vk.add_post(BOT_GROUP, text="О боте")
    fake_vk.add_token(SERVICE, "service")
    fake_vk.add_token(ADMIN, "user", user_id=501, admin_of=[BOT_GROUP])
    fake_vk.add_token(NO_WALL, "user", user_id=502, rights=["photos", "offline"])
    fake_vk.add_token(STRANGER, "user", user_id=503)
    fake_vk.add_token(COMMUNITY, "community", group_id=BOT_GROUP)
    fake_vk.add_token(DEAD, "user", user_id=504, dead=True)
    return fake_vk


def _gateway(vk: FakeVkServer, token: str, **kwargs):
    return open_gateway(make_vk_settings(vk), token=SecretStr(token), **kwargs)


def _comment(vk: FakeVkServer, token: str, owner: int, *, from_group: int | None = None) -> int:
    with _gateway(vk, token, from_group=from_group) as gateway:
        return gateway.create_comment(owner, 1, "Автоматический комментарий", guid=token[:12])


# ---- the fake VK's contract ----------------------------------------------------------------


def test_a_service_key_reads_but_never_comments(vk: FakeVkServer) -> None:
    with _gateway(vk, SERVICE) as gateway:
        assert gateway.fetch_wall(-OTHER_GROUP).count == 1
        assert gateway.resolve_group("poteryashki").id == OTHER_GROUP
    with pytest.raises(TokenError) as refused:
        _comment(vk, SERVICE, -OTHER_GROUP)
    assert refused.value.code == 28
    assert vk.comments == []


def test_a_community_key_comments_only_on_its_own_wall_as_the_community(
    vk: FakeVkServer,
) -> None:
    with pytest.raises(TokenError) as refused:
        _comment(vk, COMMUNITY, -OTHER_GROUP)
    assert refused.value.code == 27
    _comment(vk, COMMUNITY, -BOT_GROUP)
    assert [c["from_id"] for c in vk.comments] == [-BOT_GROUP]


def test_from_group_is_honoured_only_for_an_admin(vk: FakeVkServer) -> None:
    with pytest.raises(GroupAccessError) as refused:
        _comment(vk, STRANGER, -OTHER_GROUP, from_group=BOT_GROUP)
    assert refused.value.code == 15
    _comment(vk, ADMIN, -OTHER_GROUP, from_group=BOT_GROUP)
    _comment(vk, STRANGER, -OTHER_GROUP)  # no from_group: under the person's own name
    assert [c["from_id"] for c in vk.comments] == [-BOT_GROUP, 503]


def test_a_user_token_without_the_wall_right_cannot_comment(vk: FakeVkServer) -> None:
    with pytest.raises(GroupAccessError) as refused:
        _comment(vk, NO_WALL, -OTHER_GROUP)
    assert refused.value.code == 15


def test_a_dead_token_gets_error_5(vk: FakeVkServer) -> None:
    with pytest.raises(TokenError) as refused, _gateway(vk, DEAD) as gateway:
        gateway.fetch_wall(-OTHER_GROUP)
    assert refused.value.code == 5
    vk.kill_token(ADMIN)
    with pytest.raises(TokenError):
        _comment(vk, ADMIN, -OTHER_GROUP)


def test_token_rights_come_from_vks_permission_methods(vk: FakeVkServer) -> None:
    with _gateway(vk, ADMIN) as gateway:
        assert gateway.call_method("account.getAppPermissions") == 8192 + 65536
        groups = gateway.call_method("groups.getById", {"group_id": BOT_GROUP})["groups"]
        assert groups[0]["is_admin"] == 1
    with _gateway(vk, SERVICE) as gateway:
        with pytest.raises(TokenError) as refused:
            gateway.call_method("account.getAppPermissions")
        assert refused.value.code == 28
        checked = gateway.call_method("secure.checkToken", {"token": ADMIN})
        assert checked["success"] == 1 and checked["user_id"] == 501 and checked["expire"] == 0
    with _gateway(vk, COMMUNITY) as gateway:
        with pytest.raises(TokenError) as refused:
            gateway.call_method("account.getAppPermissions")
        assert refused.value.code == 27
        rights = gateway.call_method("groups.getTokenPermissions")
        assert rights["mask"] == 262144 and rights["permissions"][0]["name"] == "manage"
        assert gateway.call_method("groups.getById")["groups"][0]["id"] == BOT_GROUP


# ---- credentials and the split gateway -----------------------------------------------------


def test_token_alone_reads_and_comments_and_says_so(vk: FakeVkServer) -> None:
    settings = make_vk_settings(vk)
    assert read_credential(settings).variable == comment_credential(settings).variable
    line, degraded = describe_credentials(settings)
    assert "one token (PETMATCH_VK__TOKEN) reads and comments" in line
    assert "under that person's own name" in line and degraded
    gateway = open_vk_gateway(settings)
    assert not isinstance(gateway, RoleSplitGateway)
    gateway.close()


def test_token_files_are_read_only_when_needed(vk: FakeVkServer, tmp_path: Path) -> None:
    (tmp_path / "read").write_text(SERVICE + "\n")
    settings = make_vk_settings(
        vk,
        token=None,
        read_token_file=tmp_path / "read",
        comment_token_file=tmp_path / "missing",
        bot_group_id=BOT_GROUP,
    )
    assert read_credential(settings).secret.get_secret_value() == SERVICE
    with pytest.raises(CredentialError, match="PETMATCH_VK__COMMENT_TOKEN_FILE"):
        comment_credential(settings)
    with pytest.raises(CredentialError, match="PETMATCH_VK__READ_TOKEN"):
        read_credential(make_vk_settings(vk, token=None))


def test_split_roles_comment_as_the_community_and_never_cross(
    vk: FakeVkServer, database_url: str, tmp_path: Path, sessions
) -> None:
    settings = Settings(
        database_url=database_url,
        var_dir=tmp_path / "var",
        vk=make_vk_settings(
            vk,
            token=None,
            read_token=SecretStr(SERVICE),
            comment_token=SecretStr(ADMIN),
            bot_group_id=BOT_GROUP,
        ),
        commenting={"min_gap_seconds": 0},
    )
    line, degraded = describe_credentials(settings.vk)
    assert "reading with PETMATCH_VK__READ_TOKEN" in line and "from_group" in line
    assert not degraded
    add_groups(vk, sessions, {LOST: "Москва", FOUND: "Москва"}, now=NOW)
    vk.add_post(LOST, text="Пропала собака в Москве", date=_ts(30), photos=[animal_jpeg("ryzhik")])
    vk.add_post(
        FOUND, text="Нашли собаку, Москва", date=_ts(2), photos=[animal_jpeg("ryzhik", shift=5)]
    )
    gateway = open_vk_gateway(settings.vk)
    assert isinstance(gateway, RoleSplitGateway)
    with gateway:
        poll_cycle(sessions, gateway, settings, now=NOW)
        Pipeline(settings, sessions, gateway, vision=fake_vision()).process_pending(now=NOW)
        with pytest.raises(Exception, match="never calls it"):
            gateway.commenter.fetch_wall(-LOST)
        with pytest.raises(Exception, match="never calls it"):
            gateway.reader.create_comment(-LOST, 1, "x", guid="g")
    assert [c["from_id"] for c in vk.comments] == [-BOT_GROUP]
    used = {(method, params["access_token"]) for method, params in vk.call_log}
    assert {m for m, t in used if t == ADMIN} == {"wall.createComment"}
    assert ("wall.createComment", SERVICE) not in used
    assert {m for m, t in used if t == SERVICE} >= {"execute"}


def test_split_roles_never_repeat_a_comment_after_the_database_is_lost(
    vk: FakeVkServer, tmp_path: Path, sqlite_template: Path
) -> None:
    """The duplicate check reads with the service key and knows the community's comments."""
    import shutil

    from bot.storage import open_database, session_factory

    def run_once(name: str, now: datetime) -> None:
        db = tmp_path / f"{name}.db"
        shutil.copyfile(sqlite_template, db)
        settings = Settings(
            database_url=f"sqlite:///{db}",
            var_dir=tmp_path / name,
            vk=make_vk_settings(
                vk,
                token=None,
                read_token=SecretStr(SERVICE),
                comment_token=SecretStr(ADMIN),
                bot_group_id=BOT_GROUP,
            ),
            commenting={"min_gap_seconds": 0},
        )
        engine = open_database(settings.database_url)
        try:
            sessions = session_factory(engine)
            add_groups(vk, sessions, {LOST: "Москва", FOUND: "Москва"}, now=now)
            with open_vk_gateway(settings.vk) as gateway:
                poll_cycle(sessions, gateway, settings, now=now)
                Pipeline(settings, sessions, gateway, vision=fake_vision()).process_pending(
                    now=now
                )
        finally:
            engine.dispose()

    for vk_id in (LOST, FOUND):
        vk.add_group(vk_id, f"g{vk_id}", f"Группа {vk_id}")
    vk.add_post(LOST, text="Пропала собака в Москве", date=_ts(30), photos=[animal_jpeg("bobik")])
    vk.add_post(
        FOUND, text="Нашли собаку, Москва", date=_ts(2), photos=[animal_jpeg("bobik", shift=5)]
    )
    run_once("first", NOW)
    assert [c["from_id"] for c in vk.comments] == [-BOT_GROUP]
    run_once("replaced", NOW + timedelta(hours=1))
    assert len(vk.comments) == 1  # recognised as the community's own comment, not posted again
    used = {(method, params["access_token"]) for method, params in vk.call_log}
    assert {m for m, t in used if t == ADMIN} == {"wall.createComment"}


def test_without_a_comment_token_decisions_are_dry_runs(
    vk: FakeVkServer, database_url: str, tmp_path: Path, sessions
) -> None:
    settings = Settings(
        database_url=database_url,
        var_dir=tmp_path / "var",
        vk=make_vk_settings(vk, token=None, read_token=SecretStr(SERVICE)),
        commenting={"min_gap_seconds": 0},
    )
    line, degraded = describe_credentials(settings.vk)
    assert "commenting: OFF" in line and degraded
    add_groups(vk, sessions, {LOST: "Москва", FOUND: "Москва"}, now=NOW)
    vk.add_post(LOST, text="Пропала собака в Москве", date=_ts(30), photos=[animal_jpeg("sharik")])
    vk.add_post(
        FOUND, text="Нашли собаку, Москва", date=_ts(2), photos=[animal_jpeg("sharik", shift=4)]
    )
    with open_vk_gateway(settings.vk) as gateway:
        poll_cycle(sessions, gateway, settings, now=NOW)
        Pipeline(settings, sessions, gateway, vision=fake_vision()).process_pending(now=NOW)
    from bot import storage

    with storage.session_scope(sessions) as session:
        states = [c.state for c in store.list_comments(session)]
    assert states == [store.CommentState.DRY_RUN] and vk.comments == []


# ---- commands and missing tokens -----------------------------------------------------------


@pytest.fixture
def cli_env(vk: FakeVkServer, tmp_path: Path, sqlite_template: Path) -> dict[str, str]:
    import shutil

    db = tmp_path / "petmatch.db"
    shutil.copyfile(sqlite_template, db)
    return {
        "PETMATCH_HOME": str(tmp_path),
        "PETMATCH_DATABASE_URL": f"sqlite:///{db}",
        "PETMATCH_VK__API_URL": vk.api_url,
        "PETMATCH_VK__PHOTO_HOSTS": '["127.0.0.1"]',
        "PETMATCH_VK__MAX_RETRIES": "0",
        "PETMATCH_VK__RATE_LIMIT_PER_SECOND": "1000",
    }


def test_commands_without_vk_work_with_no_token_or_a_missing_token_file(
    cli_env: dict[str, str], tmp_path: Path
) -> None:
    runner = CliRunner()
    missing = str(tmp_path / "nope" / "token")
    for extra in (
        {},
        {"PETMATCH_VK__TOKEN_FILE": missing, "PETMATCH_VK__READ_TOKEN_FILE": missing},
    ):
        env = {**cli_env, **extra}
        for command in (["groups", "list", "--json"], ["db", "current"], ["comments", "list"]):
            result = runner.invoke(app, command, env=env)
            assert result.exit_code == 0, (command, result.output)
        line = runner.invoke(app, ["groups", "add", "poteryashki"], env=env)
        assert line.exit_code != 0 and "Traceback" not in line.output
        errors = [x for x in line.stderr.splitlines() if x.startswith("error:")]
        assert len(errors) == 1 and "PETMATCH_VK__READ_TOKEN" in errors[0]


def test_run_and_poll_say_which_features_work(
    cli_env: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    result = CliRunner().invoke(
        app, ["poll", "--no-process", "--json"], env={**cli_env, "PETMATCH_VK__TOKEN": ADMIN}
    )
    assert result.exit_code == 0, result.output
    assert "reads and comments" in caplog.text and "own name" in caplog.text
    assert ADMIN not in caplog.text + result.output
    assert json.loads(result.stdout)["ok"]
