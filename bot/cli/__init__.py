"""The `petmatch` command. Each sub-module registers its commands; heavy imports stay inside
the commands so that `petmatch --help` is instant."""

from __future__ import annotations

import os

import typer

from bot.cli import (
    bench_cmd,
    db_cmd,
    doctor_cmd,
    fakevk_cmd,
    groups_cmd,
    match_cmd,
    problems_cmd,
    reid_cmd,
    run_cmd,
    text_cmd,
    train_cmd,
    web_cmd,
    worker_cmd,
)
from bot.cli._config_errors import (
    describe_config_error,
    describe_yaml_error,
    unknown_variables,
)
from bot.cli._context import configure_logging, fail
from bot.config import Settings, load_settings

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
    version: bool = typer.Option(
        False,
        "--version",
        callback=doctor_cmd.show_version,
        is_eager=True,
        help="Show the version and the data root, then exit.",
    ),
) -> None:
    settings = _load_settings_or_fail()
    ctx.obj = settings
    configure_logging(log_level or settings.log_level)


for _module in (db_cmd, groups_cmd, run_cmd, fakevk_cmd, text_cmd, reid_cmd, train_cmd, match_cmd):
    _module.register(app)
doctor_cmd.register(app)
problems_cmd.register(app)
web_cmd.register(app)
bench_cmd.register(app)
worker_cmd.register(app)


def _load_settings_or_fail() -> Settings:
    """The settings, or one line naming the bad key (never its value) and exit 1."""
    import yaml
    from pydantic import ValidationError
    from pydantic_settings import SettingsError

    for hint in unknown_variables(dict(os.environ), set(Settings.model_fields)):
        typer.echo(f"warning: {hint}", err=True)
    try:
        return load_settings()
    except ValidationError as exc:
        fail(describe_config_error(exc))
    except SettingsError as exc:  # a list or mapping variable that is not JSON
        fail(f"configuration error: {str(exc).splitlines()[0]}; the value is not shown")
    except yaml.YAMLError as exc:
        fail(f"configuration error: {describe_yaml_error(exc)}")


def main() -> None:
    app()
