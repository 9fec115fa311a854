"""`petmatch demo`: the real pipeline and models on a fake VK, scored against the truth."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from bot.cli import app

pytestmark = pytest.mark.slow


@pytest.fixture
def demo_env(exported_models_dir, tmp_path) -> dict[str, str]:
    return {"PETMATCH_MODELS_DIR": str(exported_models_dir), "PETMATCH_VAR_DIR": str(tmp_path)}


def _demo(env: dict[str, str], tmp_path, *args: str) -> dict:
    result = CliRunner().invoke(
        app, ["demo", "--json", "--work-dir", str(tmp_path / "demo"), *args], env=env
    )
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_builtin_demo_finds_the_cat_and_comments_once_correctly(demo_env, tmp_path):
    summary = _demo(demo_env, tmp_path)
    assert summary["posts"] == 6  # the advert is never stored
    assert summary["labels"] == {"lost": 2, "found": 2, "other": 1, "resolved": 1}
    # Chelsea in the lost post (2 photos) and in the found post; the poster and the
    # coffee cup give no animal.
    assert summary["animals"] == 3
    assert summary["comments"] == 1
    assert summary["correct_comments"] == 1 and summary["wrong_comments"] == 0
    assert summary["missed_pairs"] == 0
    detail = summary["comment_details"][0]
    assert detail["under"].startswith("https://vk.com/wall-1002_")
    assert detail["links"].startswith("https://vk.com/wall-1001_")


def test_demo_from_an_identity_folder_scores_itself(demo_env, tmp_path, shared_dir):
    summary = _demo(
        demo_env,
        tmp_path,
        "--photos",
        str(shared_dir / "data/reid/dogfacenet"),
        "--identities",
        "6",
    )
    assert {"posts", "animals", "comments", "correct_comments", "wrong_comments"} <= set(summary)
    assert summary["posts"] == 6 + 4  # six lost posts, four of them with a found post
    assert summary["correct_comments"] + summary["wrong_comments"] == summary["comments"]
    assert summary["wrong_comments"] == 0
    assert summary["correct_comments"] + summary["missed_pairs"] == 4


def test_demo_refuses_an_unusable_photos_folder_in_one_line(demo_env, tmp_path):
    (tmp_path / "one_photo_each" / "rex").mkdir(parents=True)
    result = CliRunner().invoke(
        app,
        ["demo", "--photos", str(tmp_path / "one_photo_each"), "--work-dir", str(tmp_path / "d")],
        env=demo_env,
    )
    assert result.exit_code != 0
    assert "no identity has two or more photos" in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
