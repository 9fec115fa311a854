"""User errors are one line on stderr with a non-zero exit, never a traceback, and a
configuration error names the key without ever echoing its value. In-process CLI."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from PIL import Image
from typer.testing import CliRunner, Result

from bot import storage
from bot.cli import app
from bot.fakevk import FakeVkServer
from bot.storage import open_database, session_factory

SECRET = "vk1.a.s3cr3t-t0ken-that-must-never-print"
NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def one_error_line(result: Result) -> str:
    assert result.exit_code != 0
    assert "Traceback" not in result.output + result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, result.stderr
    return lines[0]


@pytest.fixture
def env(database_url: str, tmp_path: Path, fake_vk: FakeVkServer) -> dict[str, str]:
    return {
        "PETMATCH_DATABASE_URL": database_url,
        "PETMATCH_VAR_DIR": str(tmp_path / "var"),
        "PETMATCH_VK__API_URL": fake_vk.api_url,
        "PETMATCH_VK__TOKEN": fake_vk.token,
        "PETMATCH_VK__MAX_RETRIES": "0",
        "PETMATCH_VK__RATE_LIMIT_PER_SECOND": "1000",
    }


@pytest.fixture
def plain_env(tmp_path: Path, fake_vk: FakeVkServer) -> dict[str, str]:
    """SQLite only: for errors that never reach the database."""
    return {
        "PETMATCH_DATABASE_URL": f"sqlite:///{tmp_path / 'var' / 'petmatch.db'}",
        "PETMATCH_VAR_DIR": str(tmp_path / "var"),
        "PETMATCH_VK__API_URL": fake_vk.api_url,
        "PETMATCH_VK__TOKEN": fake_vk.token,
    }


def _cli(env: dict[str, str], *args: str, stdin: str | None = None) -> Result:
    return CliRunner().invoke(app, list(args), env=env, input=stdin)


@pytest.mark.parametrize(
    ("variable", "value", "named"),
    [
        ("PETMATCH_VK__ACCESS_TOKEN", SECRET, "PETMATCH_VK__ACCESS_TOKEN"),  # a misspelt token
        ("PETMATCH_POLLING__INTERVAL_MINUTES", "каждые 15 минут", "polling.interval_minutes"),
        ("PETMATCH_VK__RATE_LIMIT_PER_SECOND", "-3", "PETMATCH_VK__RATE_LIMIT_PER_SECOND"),
        ("PETMATCH_VK__PHOTO_HOSTS", f'["{SECRET}"', "vk"),  # not JSON
    ],
)
def test_a_configuration_error_names_the_key_and_never_the_value(
    plain_env: dict[str, str], variable: str, value: str, named: str
) -> None:
    result = _cli({**plain_env, variable: value}, "groups", "list")
    line = one_error_line(result)
    assert "configuration error" in line and named in line
    assert value not in result.output + result.stderr
    assert SECRET[10:30] not in result.output + result.stderr


def test_a_broken_config_file_is_one_line_without_its_text(
    plain_env: dict[str, str], tmp_path: Path
) -> None:
    config = tmp_path / "petmatch.yaml"
    config.write_text(f'vk:\n  api_url: "{SECRET}\n  rate: [\n', encoding="utf-8")
    result = _cli({**plain_env, "PETMATCH_CONFIG": str(config)}, "groups", "list")
    line = one_error_line(result)
    assert "not valid YAML" in line and SECRET not in result.output + result.stderr


def test_a_city_longer_than_its_column_is_one_line(
    env: dict[str, str], fake_vk: FakeVkServer
) -> None:
    fake_vk.add_group(301, "poteryashki", "Потеряшки")
    assert _cli(env, "db", "upgrade").exit_code == 0
    line = one_error_line(_cli(env, "groups", "add", "poteryashki", "--city", "Москва" * 60))
    assert "--city" in line and "255" in line
    assert json.loads(_cli(env, "groups", "list", "--json").stdout)["groups"] == []


@pytest.mark.parametrize("ref", ["99999999999999999999999", "club18446744073709551616"])
def test_a_group_id_beyond_64_bits_is_one_line(env: dict[str, str], ref: str) -> None:
    assert _cli(env, "db", "upgrade").exit_code == 0
    assert "not a VK community id" in one_error_line(_cli(env, "groups", "add", ref))


def test_text_classify_skips_a_deeply_nested_line_and_never_writes_nan(
    plain_env: dict[str, str],
) -> None:
    lines = [
        "[" * 100_000,
        '{"id": NaN, "text": "Пропала кошка"}',
        '{"id": 1e999, "text": "Пропала кошка"}',
        '{"id": 3, "text": "Пропала кошка в Казани"}',
    ]
    result = _cli(plain_env, "text", "classify", "-", stdin="\n".join(lines) + "\n")
    assert result.exit_code == 0, result.output
    records = [json.loads(line, parse_constant=_no_constant) for line in result.stdout.splitlines()]
    assert [r["line"] for r in records[:3]] == [1, 2, 3]
    assert all("error" in r for r in records[:3])
    assert records[3]["id"] == 3 and records[3]["city"] == "Казань"


def test_search_refuses_a_photo_over_max_photo_pixels_before_decoding(
    plain_env: dict[str, str], tmp_path: Path
) -> None:
    photo = tmp_path / "big.png"
    Image.new("RGB", (400, 300), (200, 100, 50)).save(photo)
    assert _cli(plain_env, "db", "upgrade").exit_code == 0
    limited = {**plain_env, "PETMATCH_VK__MAX_PHOTO_PIXELS": "10000"}
    line = one_error_line(_cli(limited, "search", str(photo)))
    assert "400x300" in line and "max_photo_pixels" in line


def test_reid_eval_of_a_corrupt_onnx_is_one_line(plain_env: dict[str, str], tmp_path: Path) -> None:
    model = tmp_path / "broken.onnx"
    model.write_bytes(b"\x08\x07not a protobuf at all" * 50)
    (tmp_path / "broken.json").write_text(
        json.dumps(
            {
                "model_id": "broken@1",
                "input_size": [224, 224],
                "letterbox": True,
                "mean": [0.5, 0.5, 0.5],
                "std": [0.5, 0.5, 0.5],
                "output_name": "features",
            }
        )
    )
    gallery = _two_identities(tmp_path / "gallery", per_identity=2)
    result = _cli(
        plain_env,
        "reid",
        "eval",
        "--gallery",
        str(gallery),
        "--leave-one-out",
        "--model",
        str(model),
    )
    assert "cannot run the model" in one_error_line(result)


def test_reid_eval_with_nothing_to_evaluate_fails(
    plain_env: dict[str, str], tmp_path: Path, exported_models_dir: Path
) -> None:
    gallery = _two_identities(tmp_path / "gallery", per_identity=1)
    result = _cli(
        {**plain_env, "PETMATCH_MODELS_DIR": str(exported_models_dir)},
        "reid",
        "eval",
        "--gallery",
        str(gallery),
        "--leave-one-out",
    )
    assert "nothing to evaluate" in one_error_line(result)
    assert "rank-1" not in result.stdout


def _no_constant(name: str) -> None:
    raise AssertionError(f"{name} written: not valid JSON")


def _two_identities(folder: Path, *, per_identity: int) -> Path:
    for n, colour in enumerate(((220, 40, 40), (40, 40, 220))):
        (folder / f"id{n}").mkdir(parents=True)
        for k in range(per_identity):
            Image.new("RGB", (64, 64), colour).save(folder / f"id{n}" / f"{k}.jpg")
    return folder


def test_problems_list_and_the_count_in_groups_list(env: dict[str, str]) -> None:
    assert _cli(env, "db", "upgrade").exit_code == 0
    engine = open_database(env["PETMATCH_DATABASE_URL"])
    try:
        with storage.session_scope(session_factory(engine)) as session:
            storage.upsert_group(session, vk_id=5, screen_name="g5", title="g", now=NOW)
            storage.upsert_group(session, vk_id=6, screen_name="g6", title="g", now=NOW)
            for ref in ("12abc", "77"):
                storage.record_problem(
                    session,
                    group_vk_id=5,
                    owner_id=-5,
                    post_ref=ref,
                    reason="wall.get: a post has an unexpected shape",
                    excerpt='{"id": "' + ref + '"' + ", " * 400 + "}",
                    now=NOW,
                )
    finally:
        engine.dispose()
    listed = [
        json.loads(line) for line in _cli(env, "problems", "list", "--json").stdout.splitlines()
    ]
    assert {(p["group"], p["post"]) for p in listed} == {("g5", "12abc"), ("g5", "77")}
    assert {p["post_url"] for p in listed} == {None, "https://vk.com/wall-5_77"}
    assert all(len(p["excerpt"]) <= 500 for p in listed)
    groups = json.loads(_cli(env, "groups", "list", "--json").stdout)["groups"]
    assert {g["screen_name"]: g["skipped_items"] for g in groups} == {"g5": 2, "g6": 0}
    assert "skipped" in _cli(env, "groups", "list").stdout
    assert "no added group" in one_error_line(_cli(env, "problems", "list", "--group", "nope"))


def test_a_variable_that_names_no_setting_is_warned_about_without_its_value(
    plain_env: dict[str, str],
) -> None:
    """pydantic ignores `PETMATCH_VK_TOKEN` (one underscore) silently; petmatch says so."""
    result = _cli({**plain_env, "PETMATCH_VK_TOKEN": SECRET}, "db", "current")
    assert result.exit_code == 0, result.output
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    assert warnings == [
        "warning: PETMATCH_VK_TOKEN is not a petmatch setting and is ignored; "
        "did you mean PETMATCH_VK__TOKEN?"
    ]
    assert SECRET not in result.output + result.stderr
