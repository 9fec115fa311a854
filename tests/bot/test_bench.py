"""`petmatch bench matching` on a tiny generated identity folder with the fake vision models:
the comments are counted on the fake VK and scored against the folder's identities."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bot.bench import matching_scenario, run_matching_bench, wilson_interval
from bot.config import Settings
from tests.bot._fake_vision import ANIMAL_COLOURS, animal_jpeg, fake_vision


@pytest.fixture
def identity_folder(tmp_path: Path) -> Path:
    """Four solid-colour "animals", three photos each (`<name>/<n>.jpg`)."""
    root = tmp_path / "animals"
    for name in ANIMAL_COLOURS:
        (root / name).mkdir(parents=True)
        for n in range(3):
            (root / name / f"{n}.jpg").write_bytes(animal_jpeg(name, shift=3 * n))
    return root


def test_wilson_interval_brackets_the_proportion():
    low, high = wilson_interval(49, 50)
    assert low < 0.98 < high <= 1.0
    assert wilson_interval(0, 0) is None


def test_scenario_has_pairs_and_animals_without_a_partner(identity_folder):
    from bot.bench import folder_identities

    posts = matching_scenario(folder_identities(identity_folder), identities=4, seed=1)
    lost = {p.identity for p in posts if p.group_id == 1001}
    found = {p.identity for p in posts if p.group_id == 1002}
    assert len(lost & found) == 2  # two thirds of four, rounded down
    assert (lost | found) - (lost & found)  # someone the bot must not match


def test_bench_counts_comments_on_the_fake_vk_and_scores_them(identity_folder, tmp_path):
    from bot.bench import folder_identities

    settings = Settings(var_dir=tmp_path / "var")
    result = run_matching_bench(
        settings,
        folder_identities(identity_folder),
        work_dir=tmp_path / "bench",
        vision=fake_vision(),
        threshold=0.9,
        identities=4,
        seeds=[0, 1],
    )
    assert result.pairs == 4
    op = result.at(0.9)
    # The fake embedder maps each colour to its own direction: every true pair is found
    # and no stranger is matched.
    assert op["comments"] == 4 and op["wrong_comments"] == 0 and op["missed_pairs"] == 0
    assert op["precision"] == 1.0 and op["recall"] == 1.0
    # Above every match's confidence nothing would be said, and everything is missed.
    silent = result.at(1.01)
    assert silent["comments"] == 0 and silent["missed_pairs"] == 4 and silent["recall"] == 0.0
    assert [row["comments"] for row in result.curve()] == sorted(
        (row["comments"] for row in result.curve()), reverse=True
    )


def _animal_folder(root: Path, names: dict[str, str]) -> Path:
    """`<folder name>/<n>.jpg`, three photos of the test animal each folder name maps to."""
    for folder, animal in names.items():
        (root / folder).mkdir(parents=True)
        for n in range(3):
            (root / folder / f"{n}.jpg").write_bytes(animal_jpeg(animal, shift=3 * n))
    return root


@pytest.fixture
def bench_cli(monkeypatch, tmp_path):
    """Run `petmatch bench matching` in-process with the fake vision models and the shipped
    efficientnet_lite1 calibration (whose fitting identities are the real ones)."""
    from typer.testing import CliRunner

    import bot.pipeline
    from bot.cli import app
    from reid.calibration import packaged_calibration

    calibration = packaged_calibration("efficientnet_lite1")
    monkeypatch.setattr(bot.pipeline, "build_vision", lambda _settings: fake_vision())
    monkeypatch.setattr(bot.pipeline, "load_calibration", lambda _s, _e: calibration)
    env = {"PETMATCH_VAR_DIR": str(tmp_path / "var")}

    def invoke(folder: Path, *args: str):
        command = ["bench", "matching", "--photos", str(folder), "--identities", "4"]
        command += ["--seeds", "1", "--work-dir", str(tmp_path / "work"), *args]
        return CliRunner().invoke(app, command, env=env)

    return calibration, invoke


def test_bench_cli_refuses_a_folder_overlapping_the_calibration_fit_set(bench_cli, tmp_path):
    calibration, invoke = bench_cli
    fitted = calibration.fit_identities["dogfacenet"][0]
    folder = _animal_folder(
        tmp_path / "animals", {"ryzhik": "ryzhik", "sharik": "sharik", fitted: "murka"}
    )
    result = invoke(folder)
    assert result.exit_code != 0
    message = result.stderr.strip()
    assert "\n" not in message and "Traceback" not in result.output
    assert fitted in message and "fit the calibration" in message
    assert "ryzhik" not in message  # only the overlap is named
    # Asked for explicitly, the same folder is measured and labelled in-sample.
    labelled = invoke(folder, "--in-sample", "--json")
    assert labelled.exit_code == 0, labelled.output
    assert json.loads(labelled.stdout)["in_sample"] is True


def test_bench_cli_accepts_a_folder_the_calibration_never_saw(bench_cli, tmp_path):
    calibration, invoke = bench_cli
    assert not calibration.fitted_on(list(ANIMAL_COLOURS))
    folder = _animal_folder(tmp_path / "animals", {name: name for name in ANIMAL_COLOURS})
    result = invoke(folder, "--json")
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["in_sample"] is False and payload["pairs"] == 2
    assert payload["operating"]["wrong_comments"] == 0
