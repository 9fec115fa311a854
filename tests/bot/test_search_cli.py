"""`petmatch search`, `matches list` and `comments list` on the database the demo leaves."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image
from typer.testing import CliRunner

from bot.cli import app

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def demo_db(exported_models_dir, tmp_path_factory) -> dict[str, str]:
    work = tmp_path_factory.mktemp("demo") / "run"
    env = {"PETMATCH_MODELS_DIR": str(exported_models_dir)}
    result = CliRunner().invoke(app, ["demo", "--json", "--work-dir", str(work)], env=env)
    assert result.exit_code == 0, result.output
    return {
        **env,
        "PETMATCH_DATABASE_URL": f"sqlite:///{work / 'petmatch.db'}",
        "PETMATCH_VAR_DIR": str(work),
    }


def _cli(env: dict[str, str], *args: str):
    result = CliRunner().invoke(app, list(args), env=env)
    assert result.exit_code == 0, result.output
    return result


@pytest.fixture(scope="module")
def chelsea_files(tmp_path_factory) -> tuple[Path, Path]:
    from skimage import data

    folder = tmp_path_factory.mktemp("photos")
    whole = Image.fromarray(data.chelsea())
    whole.save(folder / "chelsea.jpg")
    w, h = whole.size
    whole.crop((int(w * 0.3), int(h * 0.05), int(w * 0.85), int(h * 0.75))).save(
        folder / "fragment.jpg"
    )
    return folder / "chelsea.jpg", folder / "fragment.jpg"


@pytest.mark.parametrize("which", [0, 1])
def test_search_ranks_the_cats_posts_first(demo_db, chelsea_files, which):
    result = _cli(demo_db, "search", str(chelsea_files[which]), "--city", "Москва", "--json")
    results = json.loads(result.stdout)["results"]
    assert results, "the cat of the demo was not found"
    assert results[0]["similarity"] > 0.7
    assert {r["kind"] for r in results} <= {"lost", "found"}
    lost_only = json.loads(
        _cli(demo_db, "search", str(chelsea_files[which]), "--kind", "lost", "--json").stdout
    )["results"]
    assert lost_only and lost_only[0]["url"].startswith("https://vk.com/wall-1001_")


def test_search_of_an_unreadable_file_is_one_line(demo_db, tmp_path):
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"not a picture")
    result = CliRunner().invoke(app, ["search", str(bad)], env=demo_db)
    assert result.exit_code != 0
    assert "bad.jpg" in result.output and "Traceback" not in result.output


def test_matches_and_comments_list(demo_db):
    matches = [
        json.loads(line) for line in _cli(demo_db, "matches", "list", "--json").stdout.splitlines()
    ]
    assert len(matches) == 1 and matches[0]["accepted"]
    assert any("threshold" in reason for reason in matches[0]["reasons"])
    comments = [
        json.loads(line) for line in _cli(demo_db, "comments", "list", "--json").stdout.splitlines()
    ]
    assert [c["state"] for c in comments] == ["posted"]
    assert comments[0]["post"] == matches[0]["found"]
    assert "ACCEPTED" in _cli(demo_db, "matches", "list").stdout
