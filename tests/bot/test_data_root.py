"""One data root (`PETMATCH_HOME`) holds the database file, models, photos, crops and index; it
does not depend on the folder a command starts in, and `--version` names it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from bot.config import Settings, default_home

REPO = Path(__file__).resolve().parents[2]


def _clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PETMATCH_")}
    env.update(extra)
    return env


def _petmatch(cwd: Path, env: dict[str, str], *args: str, timeout: float = 300) -> Any:
    command = [str(Path(sys.executable).with_name("petmatch")), *args]
    return subprocess.run(
        command, env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout
    )


def test_the_default_root_is_the_checkouts_var_from_any_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key in [k for k in os.environ if k.startswith("PETMATCH_")]:
        monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)
    settings = Settings()
    assert default_home() == REPO / "var" == settings.home
    assert settings.models_dir == REPO / "var" / "models"  # where setup.sh exports them
    assert settings.database_url == f"sqlite:///{REPO / 'var' / 'petmatch.db'}"
    result = _petmatch(tmp_path, _clean_env(), "--version")
    assert result.returncode == 0, result.stderr
    assert f"data root: {REPO / 'var'}" in result.stdout


def test_relative_settings_resolve_against_petmatch_home(tmp_path: Path) -> None:
    home = tmp_path / "home"
    settings = Settings(
        home=home,
        var_dir=Path("work"),
        models_dir=Path("models"),
        index_dir=tmp_path / "elsewhere",
        database_url="sqlite:///db/petmatch.db?timeout=5",
    )
    assert settings.var_dir == home / "work"
    assert settings.photos_dir == home / "work" / "photos"
    assert settings.models_dir == home / "models"
    assert settings.index_dir == tmp_path / "elsewhere"  # absolute stays
    assert settings.database_url == f"sqlite:///{home / 'db' / 'petmatch.db'}?timeout=5"
    pg = "postgresql+psycopg2://u@h/db"
    assert Settings(home=home, database_url=pg).database_url == pg
    assert Settings(home=home, database_url="sqlite:///:memory:").database_url.endswith(":memory:")
    defaults = Settings(home=home)
    assert defaults.var_dir == home and defaults.models_dir == home / "models"
    assert defaults.database_url == f"sqlite:///{home / 'petmatch.db'}"
    version = _petmatch(tmp_path, _clean_env(PETMATCH_HOME=str(home)), "--version")
    assert f"data root: {home}" in version.stdout


@pytest.mark.slow
def test_demo_from_another_folder_finds_the_models_in_the_data_root(
    tmp_path: Path, exported_models_dir: Path
) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (home / "models").symlink_to(exported_models_dir, target_is_directory=True)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    result = _petmatch(elsewhere, _clean_env(PETMATCH_HOME=str(home)), "demo", "--json")
    assert result.returncode == 0, result.stderr[-2000:]
    assert json.loads(result.stdout)["animals"] > 0
    assert (home / "demo" / "petmatch.db").is_file()  # the demo's work goes into the root
    assert not any(elsewhere.iterdir())  # nothing in the folder it was started from


@pytest.mark.slow
def test_a_demo_that_finds_no_animal_fails(tmp_path: Path, exported_models_dir: Path) -> None:
    photos = tmp_path / "blank"
    for identity in ("a", "b"):
        (photos / identity).mkdir(parents=True)
        for n, shade in enumerate((40, 200)):
            Image.new("RGB", (160, 120), (shade, shade, shade)).save(photos / identity / f"{n}.jpg")
    env = _clean_env(PETMATCH_HOME=str(tmp_path), PETMATCH_MODELS_DIR=str(exported_models_dir))
    result = _petmatch(tmp_path, env, "demo", "--json", "--photos", str(photos))
    assert result.returncode != 0
    assert json.loads(result.stdout)["animals"] == 0
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "found no animal" in errors[0]
