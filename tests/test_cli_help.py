"""Every `petmatch` command teaches: its --help has a description and an example."""

from __future__ import annotations

import pytest
import typer
from typer.testing import CliRunner

from bot.cli import app


def _leaf_commands(group: object, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    found = []
    for name, command in sorted(group.commands.items()):
        path = (*prefix, name)
        if hasattr(command, "commands"):
            found.extend(_leaf_commands(command, path))
        else:
            found.append(path)
    return found


COMMANDS = _leaf_commands(typer.main.get_command(app))


def test_the_command_tree_is_complete():
    names = {" ".join(c) for c in COMMANDS}
    expected = {
        "demo",
        "poll",
        "run",
        "reindex",
        "search",
        "fake-vk",
        "db upgrade",
        "groups add",
        "groups list",
        "groups remove",
        "matches list",
        "comments list",
        "text classify",
        "reid eval",
        "reid train",
        "reid export",
        "dataset build",
        "models prepare",
        "doctor",
    }
    assert expected <= names, sorted(expected - names)


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_help_has_an_example(command):
    result = CliRunner().invoke(app, [*command, "--help"])
    assert result.exit_code == 0, result.output
    assert "Example" in result.output and "petmatch" in result.output, result.output
