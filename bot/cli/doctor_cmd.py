"""`petmatch doctor`, and `petmatch --version` (which names the data root)."""

from __future__ import annotations

import typer

from bot.cli._context import print_json, settings_from

_MARK = {"ok": "ok  ", "warn": "WARN", "fail": "FAIL"}


def register(app: typer.Typer) -> None:
    """Add `doctor` to the root app."""
    app.command("doctor")(doctor)


def show_version(value: bool) -> None:
    """`--version`: the package version and the data root, then exit."""
    if not value:
        return
    from importlib.metadata import PackageNotFoundError, version

    from bot.config import load_settings

    try:
        number = version("petmatch")
    except PackageNotFoundError:
        number = "unknown"
    typer.echo(f"petmatch {number}\ndata root: {load_settings().home}")
    raise typer.Exit()


def doctor(
    ctx: typer.Context,
    as_json: bool = typer.Option(False, "--json", help="Print the findings as one JSON object."),
) -> None:
    """Check what a run needs (configuration, data root, database, models and index, each VK
    token's kind and rights, the bot's community, commenting groups, quota) and say how to fix
    each miss. Exits 1 when something a run needs is missing.

    Example: petmatch doctor --json
    """
    from bot.doctor import Status, diagnose

    settings = settings_from(ctx)
    findings = diagnose(settings)
    failed = any(f.status is Status.FAIL for f in findings)
    if as_json:
        print_json(
            {
                "ok": not failed,
                "data_root": str(settings.home),
                "findings": [f.as_dict() for f in findings],
            }
        )
    else:
        width = max(len(f.check) for f in findings)
        for finding in findings:
            typer.echo(f"{_MARK[finding.status.value]}  {finding.check:<{width}}  {finding.detail}")
            if finding.fix and finding.status is not Status.OK:
                typer.echo(f"      {'':<{width}}  fix: {finding.fix}")
        typer.echo("a run needs the FAIL lines fixed" if failed else "ready to run")
    if failed:
        raise typer.Exit(1)
