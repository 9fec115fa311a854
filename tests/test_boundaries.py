"""The house's shape: core packages never reach outward, and `petmatch --help` stays light."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

WORLD = ("bot", "vk_api", "sqlalchemy", "apscheduler", "rich", "typer", "requests")


def _modules_after(statement: str) -> set[str]:
    code = f"import json, sys\n{statement}\nprint(json.dumps(sorted(sys.modules)))"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    return {name.split(".")[0] for name in json.loads(result.stdout.splitlines()[-1])}


@pytest.mark.parametrize(
    ("package", "forbidden"),
    [
        ("text", (*WORLD, "torch", "reid", "segmentation", "index", "faiss", "onnxruntime")),
        ("segmentation", (*WORLD, "torch", "reid", "index", "text")),
        ("reid", (*WORLD, "torch", "segmentation", "index", "text")),
        ("index", (*WORLD, "torch", "reid", "segmentation", "text", "onnxruntime")),
        ("index.matching", (*WORLD, "torch", "reid", "segmentation", "text")),
    ],
)
def test_core_packages_do_not_import_outward(package, forbidden):
    loaded = _modules_after(f"import {package}")
    assert not loaded & set(forbidden), f"{package} pulls in {sorted(loaded & set(forbidden))}"


def test_the_cli_root_imports_no_heavy_libraries():
    loaded = _modules_after("import bot.cli")
    heavy = {"torch", "onnxruntime", "faiss", "cv2", "sklearn", "pymorphy3"}
    assert not loaded & heavy, sorted(loaded & heavy)


@pytest.mark.parametrize("package", ["text", "segmentation", "reid", "index"])
def test_public_surface_is_explicit(package):
    module = __import__(package)
    assert module.__all__, f"{package} has no __all__"
    for name in module.__all__:
        assert hasattr(module, name), f"{package}.__all__ names {name}, which is missing"


def test_every_embedder_backend_registers_on_import():
    # regression: `osnet` was only registered once something imported `reid._osnet`
    loaded = subprocess.run(
        [sys.executable, "-c", "import reid; print(','.join(reid.available_embedders()))"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert loaded.stdout.strip().split(",") == [
        "efficientnet_lite0",
        "efficientnet_lite1",
        "efficientnet_lite2",
        "osnet",
    ]
