"""What every command shares: settings built once, logging, JSON output and one-line errors."""

from __future__ import annotations

import json
import logging
import sys
from typing import Any, NoReturn

import typer

from bot.config import Settings, load_settings


def settings_from(ctx: typer.Context) -> Settings:
    """The settings the root callback built (built on first use)."""
    root = ctx.find_root()
    if root.obj is None:
        root.obj = load_settings()
    return root.obj


def configure_logging(level: str) -> None:
    logging.basicConfig(
        level=level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    # Libraries that narrate their own loading at INFO drown the bot's own lines.
    for noisy in ("pymorphy3", "faiss", "faiss.loader", "alembic", "urllib3"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLogger().level))


def print_json(payload: Any) -> None:
    typer.echo(json.dumps(payload, ensure_ascii=False, default=str))


def fail(message: str, code: int = 1) -> NoReturn:
    """One clear line on stderr, no traceback."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)
