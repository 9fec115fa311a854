"""`petmatch text classify`: JSON lines in, JSON lines out, errors per line."""

from __future__ import annotations

import io
import json
from pathlib import Path

from typer.testing import CliRunner

from bot.cli import app
from bot.cli.text_cmd import classify_stream


def test_classify_file_with_a_malformed_line(tmp_path: Path) -> None:
    source = tmp_path / "posts.jsonl"
    source.write_text(
        '{"id": "a", "text": "Пропала кошка в Казани"}\n'
        "{not json\n"
        '{"id": "c", "text": "Найден пёс", "group_city": "Тула"}\n'
        '["no", "object"]\n',
        encoding="utf-8",
    )
    result = CliRunner().invoke(app, ["text", "classify", str(source)])
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    assert [r.get("id") for r in records] == ["a", None, "c", None]
    assert (records[0]["kind"], records[0]["species"], records[0]["city"]) == (
        "lost", "cat", "Казань")
    assert records[0]["evidence"] and records[0]["district"] is None
    assert records[1] == {"line": 2, "error": records[1]["error"]}
    assert (records[2]["city"], records[2]["city_source"]) == ("Тула", "group")
    assert records[3]["line"] == 4 and "error" in records[3]


def test_stream_is_lazy() -> None:
    # classify_stream pulls lines one at a time: output appears before input ends.
    out = io.StringIO()
    seen: list[int] = []

    def lines():
        for i in range(3):
            seen.append(len(out.getvalue().splitlines()))
            yield json.dumps({"id": i, "text": "Пропал кот"}) + "\n"

    records, errors = classify_stream(lines(), out)
    assert (records, errors) == (3, 0)
    assert seen == [0, 1, 2]


def test_missing_file_fails_cleanly(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["text", "classify", str(tmp_path / "nope.jsonl")])
    assert result.exit_code == 1
