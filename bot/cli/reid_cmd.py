"""`petmatch reid …` and `petmatch models …`: evaluation, training, export, model preparation.

`reid_app` is shared: `train_cmd` adds `reid train` / `reid export` to it.
"""

from __future__ import annotations

import typer

reid_app = typer.Typer(help="Re-identification models: evaluate, train, export.", no_args_is_help=True)
models_app = typer.Typer(help="Prepare the models the bot runs (ONNX export, cache).", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    """Add `reid` and `models` to the root app."""
    app.add_typer(reid_app, name="reid")
    app.add_typer(models_app, name="models")
