"""The admin CLI end to end (in-process), against the fake VK and a SQLite file."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from bot import storage
from bot.cli import app
from bot.fakevk import FakeVkServer
from tests.bot._images import jpeg

COMMANDS = [
    ["db"], ["db", "upgrade"], ["db", "current"], ["groups"], ["groups", "add"],
    ["groups", "remove"], ["groups", "list"], ["poll"], ["run"], ["reindex"],
]
NOT_MIGRATED = "database is not migrated: run `petmatch db upgrade`"


@pytest.fixture
def cli_env(fake_vk: FakeVkServer, tmp_path: Path) -> dict[str, str]:
    return {
        "PETMATCH_DATABASE_URL": f"sqlite:///{tmp_path / 'var' / 'petmatch.db'}",
        "PETMATCH_VAR_DIR": str(tmp_path / "var"),
        "PETMATCH_VK__API_URL": fake_vk.api_url,
        "PETMATCH_VK__TOKEN": fake_vk.token,
        "PETMATCH_VK__PHOTO_HOSTS": '["127.0.0.1"]',
        "PETMATCH_VK__MAX_RETRIES": "1",
        "PETMATCH_VK__BACKOFF_BASE_SECONDS": "0.001",
        "PETMATCH_VK__RATE_LIMIT_PER_SECOND": "1000",
    }


class Cli:
    def __init__(self, env: dict[str, str]):
        self.env = env
        self.runner = CliRunner()

    def __call__(self, *args: str, **env: str) -> Result:
        return self.runner.invoke(app, list(args), env={**self.env, **env})


@pytest.fixture
def cli(cli_env: dict[str, str]) -> Cli:
    return Cli(cli_env)


@pytest.fixture
def migrated(cli: Cli) -> Cli:
    result = cli("db", "upgrade")
    assert result.exit_code == 0, result.output
    return cli


def one_error_line(result: Result) -> str:
    assert result.exit_code != 0
    lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.output + result.stderr
    return lines[0]


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_every_command_has_help_with_an_example(command: list[str]) -> None:
    result = CliRunner().invoke(app, [*command, "--help"])
    assert result.exit_code == 0, result.output
    assert "Example:" in result.output and "petmatch" in result.output


@pytest.mark.parametrize("command", [["groups", "list"], ["poll"], ["run"], ["reindex"]])
def test_commands_refuse_an_unmigrated_database(cli: Cli, command: list[str]) -> None:
    assert NOT_MIGRATED in one_error_line(cli(*command))


def test_db_upgrade_and_current(cli: Cli) -> None:
    before = json.loads(cli("db", "current", "--json").stdout)
    assert before["current"] is None and not before["up_to_date"]
    upgraded = cli("db", "upgrade")
    assert upgraded.exit_code == 0 and storage.head_revision() in upgraded.stdout
    after = json.loads(cli("db", "current", "--json").stdout)
    assert after["up_to_date"] and after["current"] == storage.head_revision()


def test_groups_add_list_remove(migrated: Cli, fake_vk: FakeVkServer) -> None:
    fake_vk.add_group(101, "poteryashki_msk", "Потеряшки Москвы")
    fake_vk.add_group(102, "naydenysh", "Найдёныши")
    fake_vk.add_group(103, "koshki", "Кошки")
    for ref, extra in (
        ("https://vk.com/poteryashki_msk", ["--city", "Москва"]),
        ("club102", ["--comments"]),
        ("103", []),
    ):
        result = migrated("groups", "add", ref, *extra)
        assert result.exit_code == 0, result.output
        assert result.stdout.startswith("added ")
    listed = json.loads(migrated("groups", "list", "--json").stdout)
    by_id = {g["vk_id"]: g for g in listed["groups"]}
    assert set(by_id) == {101, 102, 103}
    assert by_id[101]["city"] == "Москва" and by_id[102]["comments_enabled"]
    assert not by_id[101]["comments_enabled"]
    assert listed["projected_daily_calls"] == {"cycles_per_day": 96.0, "wall.get": 288,
                                               "execute": 96}
    assert listed["warning"] is None
    assert listed["calls_today"]["groups.getById"] == 3
    again = migrated("groups", "add", "poteryashki_msk", "--comments", "--shadow")
    assert again.stdout.startswith("updated ") and "Москва" in again.stdout
    assert "shadow mode" in again.stdout
    shadowed = json.loads(migrated("groups", "list", "--json").stdout)["groups"]
    assert {g["vk_id"]: g["shadow_mode"] for g in shadowed} == {101: True, 102: False, 103: False}
    table = migrated("groups", "list")
    assert "poteryashki_msk" in table.stdout and "wall.get" in table.stdout
    assert migrated("groups", "remove", "naydenysh").exit_code == 0
    remaining = json.loads(migrated("groups", "list", "--json").stdout)["groups"]
    assert {g["vk_id"] for g in remaining} == {101, 103}
    assert "no added group" in one_error_line(migrated("groups", "remove", "naydenysh"))


@pytest.mark.parametrize(
    ("ref", "expected"),
    [
        ("nosuchgroup", "unknown VK community"),
        ("https://example.com/poteryashki", "not a VK community URL"),
        ("https://vk.com/a/b/c", "not a VK community URL"),
        ("closed_group", "closed or private"),
        ("banned_group", "banned"),
    ],
)
def test_groups_add_refuses_with_one_line(migrated: Cli, fake_vk, ref: str, expected) -> None:
    fake_vk.add_group(201, "closed_group", "Закрытая", is_closed=1)
    fake_vk.add_group(202, "banned_group", "Забанена", deactivated="banned")
    assert expected in one_error_line(migrated("groups", "add", ref))
    assert json.loads(migrated("groups", "list", "--json").stdout)["groups"] == []


def test_dead_token_is_one_line(migrated: Cli, fake_vk: FakeVkServer) -> None:
    fake_vk.add_group(101, "poteryashki_msk", "Потеряшки")
    assert migrated("groups", "add", "poteryashki_msk").exit_code == 0
    wrong = "definitely-not-the-token"
    for command in (["groups", "add", "club101"], ["poll", "--no-process"]):
        line = one_error_line(migrated(*command, PETMATCH_VK__TOKEN=wrong))
        assert "token is dead or wrong" in line and wrong not in line


def test_missing_token_is_one_line(migrated: Cli) -> None:
    line = one_error_line(migrated("poll", PETMATCH_VK__TOKEN=""))
    assert "no VK token" in line or "token" in line


def test_quota_warning_for_the_poll_interval(migrated: Cli, fake_vk: FakeVkServer) -> None:
    for gid in range(1, 5):
        fake_vk.add_group(gid, f"g{gid}", f"Группа {gid}")
        assert migrated("groups", "add", f"club{gid}").exit_code == 0
    result = migrated(
        "groups", "list", "--json",
        PETMATCH_POLLING__INTERVAL_MINUTES="1", PETMATCH_VK__DAILY_WALL_GET_QUOTA="5000",
    )
    payload = json.loads(result.stdout)
    assert payload["projected_daily_calls"]["wall.get"] == 4 * 1440
    assert "over the quota of 5000" in payload["warning"]
    assert "warning:" in result.stderr


def test_poll_prints_a_summary_and_json_without_the_token(
    migrated: Cli, fake_vk: FakeVkServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    fake_vk.add_group(101, "poteryashki_msk", "Потеряшки")
    fake_vk.add_post(101, text="Пропал кот", photos=[jpeg(1), jpeg(2)])
    assert migrated("groups", "add", "poteryashki_msk").exit_code == 0
    text = migrated("poll", "--no-process")
    assert text.exit_code == 0, text.output
    assert "1 new" in text.stdout and "2 stored" in text.stdout
    fake_vk.add_post(101, text="Найдена собака", photos=[jpeg(3)])
    as_json = migrated("poll", "--json", "--no-process")
    report = json.loads(as_json.stdout)
    assert report["new_posts"] == 1 and report["photos_stored"] == 1 and report["ok"]
    assert report["vk_calls"] == {"execute": 1, "wall.get": 1}
    for result in (text, as_json, migrated("groups", "list", "--json")):
        assert fake_vk.token not in result.stdout + result.stderr
    assert "poll:" in caplog.text and fake_vk.token not in caplog.text


def test_poll_refuses_while_another_instance_runs(migrated: Cli, cli_env) -> None:
    engine = storage.open_database(cli_env["PETMATCH_DATABASE_URL"])
    try:
        with storage.instance_lock(engine, lock_dir=Path(cli_env["PETMATCH_VAR_DIR"])):
            assert "already working" in one_error_line(migrated("poll", "--no-process"))
    finally:
        engine.dispose()


def test_reindex_rebuilds_the_index(migrated: Cli, exported_models_dir: Path) -> None:
    result = migrated("reindex", "--json", PETMATCH_MODELS_DIR=str(exported_models_dir))
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["vectors"] == 0 and report["model"] == "efficientnet_lite1@imagenet-1"


def test_reindex_without_models_is_one_clear_line(migrated: Cli) -> None:
    assert "petmatch models prepare" in one_error_line(migrated("reindex"))


@pytest.mark.parametrize("command", [["poll"], ["run"], ["demo"]])
def test_a_missing_model_stops_the_command_before_anything_is_polled(
    migrated: Cli, fake_vk: FakeVkServer, command: list[str]
) -> None:
    fake_vk.add_group(101, "poteryashki_msk", "Потеряшки")
    assert migrated("groups", "add", "poteryashki_msk").exit_code == 0
    before = sum(fake_vk.calls.values())
    line = one_error_line(migrated(*command))
    assert "is missing" in line and "petmatch models prepare" in line
    assert sum(fake_vk.calls.values()) == before  # nothing was polled
