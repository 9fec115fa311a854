"""`petmatch dataset build --from-db`: a training set from the posts the bot has stored."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from bot.cli import app

pytestmark = pytest.mark.slow


def test_dataset_from_the_demo_database(exported_models_dir, tmp_path):
    work = tmp_path / "demo"
    env = {"PETMATCH_MODELS_DIR": str(exported_models_dir)}
    runner = CliRunner()
    assert runner.invoke(app, ["demo", "--json", "--work-dir", str(work)], env=env).exit_code == 0
    env |= {
        "PETMATCH_DATABASE_URL": f"sqlite:///{work / 'petmatch.db'}",
        "PETMATCH_VAR_DIR": str(work),
    }
    out = tmp_path / "dataset"
    result = runner.invoke(
        app, ["dataset", "build", "--from-db", "--out", str(out), "--json"], env=env
    )
    assert result.exit_code == 0, result.output
    counts = json.loads(result.stdout)
    assert counts, counts
    identities = sorted(p.name for p in (out / "identities").iterdir())
    # The lost and the found post of the demo cat; the poster and coffee posts give no animal.
    assert identities == ["1001-1_0", "1002-2_0"]
    for folder in (out / "identities").iterdir():
        crops = list(folder.glob("*.jpg"))
        assert crops and all(c.name.startswith(folder.name.rsplit("_", 1)[0] + "_") for c in crops)


def test_dataset_needs_one_source(tmp_path):
    result = CliRunner().invoke(app, ["dataset", "build", "--out", str(tmp_path)])
    assert result.exit_code != 0 and "--from-db" in result.output
