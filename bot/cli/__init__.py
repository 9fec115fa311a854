"""The `petmatch` command. Each sub-module registers its commands; heavy imports stay inside
the commands so that `petmatch --help` is instant."""

from __future__ import annotations

import typer

from bot.cli import (
    db_cmd,
    fakevk_cmd,
    groups_cmd,
    match_cmd,
    reid_cmd,
    run_cmd,
    text_cmd,
    train_cmd,
    worker_cmd,
)
from bot.cli._context import configure_logging
from bot.config import load_settings

app = typer.Typer(
    name="petmatch",
    help=(
        "Reunite lost pets with their owners: poll VK groups, read lost/found posts, "
        "match the animals in their photos and comment when sure.\n\n"
        "Example: petmatch groups add https://vk.com/poteryashki_msk --city Москва"
    ),
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


@app.callback()
def _root(
    ctx: typer.Context,
    log_level: str = typer.Option(None, help="Override the log level (DEBUG, INFO, …)."),
) -> None:
    settings = load_settings()
    ctx.obj = settings
    configure_logging(log_level or settings.log_level)


for _module in (db_cmd, groups_cmd, run_cmd, fakevk_cmd, text_cmd, reid_cmd, train_cmd, match_cmd):
    _module.register(app)
worker_cmd.register(app)


def main() -> None:
    app()
