"""`petmatch doctor --json` against the fake VK: each token kind, a dead token, a token without
the wall right and a non-admin `from_group`, each finding asserted with the exit code."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bot import storage
from bot.cli import app
from bot.fakevk import FakeVkServer

BOT_GROUP, POLLED = 900, 901
SERVICE = "svc-key-doctor-1a2b"
ADMIN = "vk1.a.doctor-admin-3c4d"
ADMIN_DAY = "vk1.a.doctor-admin-no-offline"
NO_WALL = "vk1.a.doctor-no-wall-5e"
STRANGER = "vk1.a.doctor-stranger-6f"
COMMUNITY = "vk1.a.doctor-community-7a"
DEAD = "vk1.a.doctor-dead-8b"
ALL_TOKENS = (SERVICE, ADMIN, ADMIN_DAY, NO_WALL, STRANGER, COMMUNITY, DEAD)


@pytest.fixture
def vk(fake_vk: FakeVkServer) -> FakeVkServer:
    fake_vk.add_group(BOT_GROUP, "petmatch_bot", "Бот Потеряшки")
    fake_vk.add_group(POLLED, "poteryashki", "Потеряшки")
    fake_vk.add_token(SERVICE, "service")
    fake_vk.add_token(ADMIN, "user", user_id=501, admin_of=[BOT_GROUP])
    fake_vk.add_token(ADMIN_DAY, "user", user_id=505, rights=["wall"], admin_of=[BOT_GROUP])
    fake_vk.add_token(NO_WALL, "user", user_id=502, rights=["photos", "offline"])
    fake_vk.add_token(STRANGER, "user", user_id=503)
    fake_vk.add_token(COMMUNITY, "community", group_id=BOT_GROUP)
    fake_vk.add_token(DEAD, "user", user_id=504, dead=True)
    return fake_vk


@pytest.fixture
def env(
    vk: FakeVkServer, tmp_path: Path, sqlite_template: Path, exported_models_dir: Path
) -> dict[str, str]:
    db = tmp_path / "petmatch.db"
    shutil.copyfile(sqlite_template, db)
    engine = storage.open_database(f"sqlite:///{db}")
    with storage.session_scope(engine) as session:
        storage.upsert_group(
            session,
            vk_id=POLLED,
            screen_name="poteryashki",
            title="Потеряшки",
            now=storage_now(),
            city="Москва",
            comments_enabled=True,
        )
    engine.dispose()
    return {
        "PETMATCH_HOME": str(tmp_path),
        "PETMATCH_DATABASE_URL": f"sqlite:///{db}",
        "PETMATCH_MODELS_DIR": str(exported_models_dir),
        "PETMATCH_VK__API_URL": vk.api_url,
        "PETMATCH_VK__MAX_RETRIES": "0",
        "PETMATCH_VK__RATE_LIMIT_PER_SECOND": "1000",
    }


def storage_now():
    from datetime import UTC, datetime

    return datetime.now(UTC)


def doctor(env: dict[str, str], **tokens: str) -> tuple[int, dict[str, dict[str, str]]]:
    variables = {f"PETMATCH_VK__{name.upper()}": value for name, value in tokens.items()}
    result = CliRunner().invoke(app, ["doctor", "--json"], env={**env, **variables})
    for token in ALL_TOKENS:
        assert token not in result.output  # never printed, whatever it is
    payload = json.loads(result.stdout)
    assert payload["ok"] is (result.exit_code == 0)
    return result.exit_code, {f["check"]: f for f in payload["findings"]}


def test_service_key_and_an_admins_token_are_ready(env: dict[str, str], tmp_path: Path) -> None:
    code, found = doctor(env, read_token=SERVICE, comment_token=ADMIN, bot_group_id=str(BOT_GROUP))
    assert code == 0
    assert found["data root"]["status"] == "ok" and str(tmp_path) in found["data root"]["detail"]
    assert found["database"]["status"] == "ok" and found["models"]["status"] == "ok"
    assert found["read token"]["status"] == "ok" and "service key" in found["read token"]["detail"]
    assert found["comment token"]["status"] == "ok"
    assert found["token app"]["status"] == "ok"  # secure.checkToken with the service key
    assert "user 501" in found["token app"]["detail"]
    assert found["bot community"]["status"] == "ok"
    assert "Бот Потеряшки" in found["bot community"]["detail"]
    assert found["comment as community"]["status"] == "ok"
    assert found["groups"]["status"] == "ok" and "commenting on in 1" in found["groups"]["detail"]
    assert found["quota"]["status"] == "ok" and "96 wall.get a day" in found["quota"]["detail"]


def test_one_user_token_alone_works_but_comments_under_a_persons_name(
    env: dict[str, str],
) -> None:
    code, found = doctor(env, token=ADMIN)
    assert code == 0
    assert found["read token"]["status"] == "warn"
    assert "PETMATCH_VK__READ_TOKEN" in found["read token"]["fix"]
    assert found["comment token"]["status"] == "ok"
    assert found["comment as community"]["status"] == "warn"
    assert "own name" in found["comment as community"]["detail"]


def test_a_token_without_offline_is_a_warning(env: dict[str, str]) -> None:
    code, found = doctor(
        env, read_token=SERVICE, comment_token=ADMIN_DAY, bot_group_id=str(BOT_GROUP)
    )
    assert code == 0
    assert found["comment token"]["status"] == "warn" and "offline" in found["comment token"]["fix"]
    assert "expires" in found["token app"]["detail"]


def test_a_service_key_cannot_comment(env: dict[str, str]) -> None:
    code, found = doctor(env, read_token=SERVICE, comment_token=SERVICE)
    assert code == 1
    assert found["read token"]["status"] == "ok"
    assert found["comment token"]["status"] == "fail"
    assert "VK error 28" in found["comment token"]["detail"]
    assert found["groups"]["status"] == "warn"  # commenting is on, nothing can comment


def test_a_community_key_can_neither_read_nor_comment_elsewhere(env: dict[str, str]) -> None:
    code, found = doctor(env, read_token=COMMUNITY, comment_token=COMMUNITY)
    assert code == 1
    assert found["read token"]["status"] == "fail" and "27" in found["read token"]["detail"]
    assert found["comment token"]["status"] == "fail"
    assert "community key (community 900)" in found["comment token"]["detail"]


def test_a_dead_token_fails(env: dict[str, str]) -> None:
    code, found = doctor(env, read_token=DEAD, comment_token=ADMIN, bot_group_id=str(BOT_GROUP))
    assert code == 1
    assert found["read token"]["status"] == "fail"
    assert "VK error 5" in found["read token"]["detail"]
    assert "PETMATCH_VK__READ_TOKEN" in found["read token"]["fix"]


def test_a_token_without_the_wall_right_fails(env: dict[str, str]) -> None:
    code, found = doctor(env, read_token=SERVICE, comment_token=NO_WALL)
    assert code == 1
    assert found["comment token"]["status"] == "fail"
    assert "without the wall right" in found["comment token"]["detail"]
    assert "scope=wall" in found["comment token"]["fix"]


def test_from_group_by_a_non_admin_fails(env: dict[str, str]) -> None:
    code, found = doctor(
        env, read_token=SERVICE, comment_token=STRANGER, bot_group_id=str(BOT_GROUP)
    )
    assert code == 1
    assert found["comment token"]["status"] == "ok"  # the token itself is fine
    assert found["comment as community"]["status"] == "fail"
    assert "not an admin of community 900" in found["comment as community"]["detail"]


def test_no_token_and_no_models_are_named_with_their_fix(
    env: dict[str, str], tmp_path: Path
) -> None:
    env = {**env, "PETMATCH_MODELS_DIR": str(tmp_path / "no-models")}
    code, found = doctor(env)
    assert code == 1
    assert found["models"]["status"] == "fail"
    assert "petmatch models prepare" in found["models"]["fix"]
    assert found["read token"]["status"] == "fail"
    assert "PETMATCH_VK__READ_TOKEN" in found["read token"]["detail"]
    assert found["comment token"]["status"] == "warn"


def test_an_unmigrated_database_fails(env: dict[str, str], tmp_path: Path) -> None:
    env = {**env, "PETMATCH_DATABASE_URL": "sqlite:///fresh.db"}  # relative: under the root
    code, found = doctor(env, read_token=SERVICE)
    assert code == 1
    assert found["database"]["status"] == "fail"
    assert str(tmp_path / "fresh.db") in found["database"]["detail"]
    assert found["database"]["fix"] == "petmatch db upgrade"
