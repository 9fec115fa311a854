"""`text` is a core package: it imports nothing of the bot, the terminal or the database,
and its public surface is exactly `__all__`."""

from __future__ import annotations

import subprocess
import sys

import text

FORBIDDEN = ("bot", "vk_api", "sqlalchemy", "apscheduler", "rich", "typer", "torch")


def test_core_import_pulls_in_nothing_outward() -> None:
    code = (
        "import sys, text; text.classify_post('Пропала кошка в Москве');"
        f"print(','.join(m for m in {FORBIDDEN!r} if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == ""


def test_public_surface() -> None:
    assert sorted(text.__all__) == sorted([
        "CitySource", "Evidence", "PetSex", "PetSpecies", "PostKind", "PostLabel",
        "attribute_contradictions", "city_coordinates", "classify_post", "distance_km",
        "mask_phones",
    ])


def test_packaged_data_is_present() -> None:
    from importlib import resources

    data = resources.files("text") / "data"
    for name in ("cities.csv", "districts.json", "aliases.json", "README.md"):
        assert (data / name).is_file(), name
