"""`petmatch bench matching` on a tiny generated identity folder with the fake vision models:
the comments are counted on the fake VK and scored against the folder's identities."""

from __future__ import annotations

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
