"""`petmatch text …`: read lost/found posts from the command line."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import IO, Any

import typer

text_app = typer.Typer(help="Read post texts: kind, species, city, district.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    """Add `text` to the root app."""
    app.add_typer(text_app, name="text")


def _record(line_no: int, line: str, classify: Any) -> dict[str, Any]:
    """One output record for one input line; an error record when the line is malformed."""
    try:
        item = json.loads(line, parse_constant=_refuse_constant)
    except json.JSONDecodeError as exc:
        return {"line": line_no, "error": f"invalid JSON: {exc.msg}"}
    except RecursionError:
        return {"line": line_no, "error": "invalid JSON: nested too deeply"}
    except ValueError as exc:  # NaN / Infinity: not JSON, and never written back out
        return {"line": line_no, "error": f"invalid JSON: {exc}"}
    if not isinstance(item, dict) or not isinstance(item.get("text"), str):
        return {
            "line": line_no,
            "id": item.get("id") if isinstance(item, dict) else None,
            "error": "expected an object with a string 'text'",
        }
    group_city = item.get("group_city")
    label = classify(item["text"], group_city=group_city if isinstance(group_city, str) else None)
    return {
        "id": item.get("id"),
        "kind": label.kind.value,
        "species": label.species.value,
        "city": label.city,
        "city_source": label.city_source.value,
        "district": label.district,
        "confidence": label.confidence,
        "evidence": [e.model_dump() for e in label.evidence],
    }


def _refuse_constant(name: str) -> None:
    raise ValueError(f"{name} is not a JSON number")


def _dumps(record: dict[str, Any], line_no: int) -> str:
    """One output line; a record that cannot be valid JSON becomes an error record."""
    try:
        return json.dumps(record, ensure_ascii=False, allow_nan=False)
    except (ValueError, TypeError, RecursionError) as exc:
        error = {"line": line_no, "error": f"the result is not valid JSON ({exc})"}
        return json.dumps(error, ensure_ascii=False)


def classify_stream(lines: IO[str], out: IO[str]) -> tuple[int, int]:
    """Classify JSON lines one at a time (bounded memory); returns (records, errors)."""
    from text import classify_post

    records = errors = 0
    for line_no, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        record = _record(line_no, line, classify_post)
        errors += "error" in record
        records += 1
        out.write(_dumps(record, line_no) + "\n")
    return records, errors


@text_app.command("classify")
def classify(
    source: str = typer.Argument("-", help="A JSON-lines file, or '-' for stdin."),
) -> None:
    """Classify posts given as JSON lines with `text` (and optional `id`, `group_city`).

    Writes one JSON line per input line: id, kind, species, city, district, evidence; a
    malformed line yields {"line": N, "error": ...} and the rest goes on.

    Example: echo '{"id": 1, "text": "Пропала кошка в Казани"}' | petmatch text classify -
    """
    if source == "-":
        records, errors = classify_stream(sys.stdin, sys.stdout)
    else:
        path = Path(source)
        if not path.is_file():
            from bot.cli._context import fail

            fail(f"no such file: {path}")
        with path.open(encoding="utf-8", errors="replace") as fh:
            records, errors = classify_stream(fh, sys.stdout)
    typer.echo(f"{records} records, {errors} errors", err=True)
