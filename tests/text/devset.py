"""The labelled development set for `text/`: real posts from ../shared/data/text joined with
the labels in `real_labels.jsonl` (texts are never stored here), plus posts written here.

Also the scoring used by the tests and by `scripts/eval_text.py`.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
FIELDS = ("kind", "species", "city")


def _fold(s: str) -> str:
    return s.lower().replace("ё", "е")


def _read_jsonl(path: Path) -> list[dict]:
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            row = json.loads(line)
            if "_comment" not in row:
                rows.append(row)
    return rows


def _texts(shared: Path) -> dict[tuple[str, str], dict]:
    base = shared / "data" / "text"
    texts: dict[tuple[str, str], dict] = {}
    for card in json.loads((base / "poiskzoo_2022.json").read_text(encoding="utf-8")):
        texts["poiskzoo", str(card["id"])] = {"text": f"{card['title']}\n{card['text']}"}
    for card in json.loads((base / "pet911_2020.json").read_text(encoding="utf-8")):
        texts["pet911", card["art"]] = {"text": card["description"]}
    wall = json.loads((base / "vk_wall_get_example.json").read_text(encoding="utf-8"))
    for post in wall["response"]["items"]:
        parts = [post.get("text", "")]
        parts += [c.get("text", "") for c in post.get("copy_history", [])]
        texts["vk", str(post["id"])] = {"text": "\n".join(p for p in parts if p)}
    return texts


def names_city(text: str, city: str | None) -> bool:
    """Whether the text spells the gold city (its stem), checked mechanically, not by rules."""
    if not city:
        return False
    stem = _fold(city).replace("-", " ")
    stem = stem[: max(4, len(stem) - 2)]
    return stem in _fold(text).replace("-", " ")


def real_rows(shared: Path, split: str = "all") -> list[dict]:
    """Labelled real posts of one split (`dev`, `holdout` or `all`), texts from ../shared."""
    texts = _texts(shared)
    rows = []
    for label in _read_jsonl(HERE / "real_labels.jsonl"):
        if split != "all" and label["split"] != split:
            continue
        row = dict(label, **texts[label["source"], label["id"]])
        row["id"] = f"{label['source']}:{label['id']}"
        rows.append(row)
    return rows


def written_rows() -> list[dict]:
    """Posts written here (other/resolved and tricky cases), marked as such."""
    return [dict(r, source="written") for r in _read_jsonl(HERE / "written_posts.jsonl")]


@dataclass
class Report:
    """Per-field accuracy, the kind confusion matrix and per-class precision/recall."""

    n: int = 0
    correct: Counter = field(default_factory=Counter)
    counted: Counter = field(default_factory=Counter)
    confusion: Counter = field(default_factory=Counter)  # (gold, predicted) -> count
    species_confusion: Counter = field(default_factory=Counter)
    misses: list[tuple[str, str, str, str]] = field(default_factory=list)

    def accuracy(self, name: str) -> float:
        return self.correct[name] / self.counted[name] if self.counted[name] else float("nan")

    def precision(self, kind: str) -> float:
        predicted = sum(v for (g, p), v in self.confusion.items() if p == kind)
        return self.confusion[kind, kind] / predicted if predicted else float("nan")

    def recall(self, kind: str) -> float:
        gold = sum(v for (g, p), v in self.confusion.items() if g == kind)
        return self.confusion[kind, kind] / gold if gold else float("nan")


def evaluate(rows: Iterable[dict], predict: Callable[[dict], dict]) -> Report:
    """Score `predict(row) -> {"kind", "species", "city"}` against the rows' gold labels.

    City counts only where the text itself names the gold city (`names_city`). Species counts
    on posts whose text names a cat or a dog (`species_in_text`, labelled by reading, defaults
    to the gold species): a post that never says which animal it is can only be "unknown" to
    a text reader, and the pipeline takes species from the photos. `species_site` keeps the
    strict score against the source site's label on every cat and dog post.
    """
    report = Report()
    for row in rows:
        got = predict(row)
        report.n += 1
        report.confusion[row["kind"], got["kind"]] += 1
        report.counted["kind"] += 1
        report.correct["kind"] += got["kind"] == row["kind"]
        if row.get("species") in {"cat", "dog"}:
            report.counted["species_site"] += 1
            report.correct["species_site"] += got["species"] == row["species"]
        named = row.get("species_in_text", row.get("species"))
        if named in {"cat", "dog"}:
            report.counted["species"] += 1
            report.correct["species"] += got["species"] == named
            report.species_confusion[named, got["species"]] += 1
        city_counts = row.get("source") == "written" or names_city(row["text"], row.get("city"))
        if city_counts:
            report.counted["city"] += 1
            report.correct["city"] += got["city"] == row["city"]
        gold = {"kind": row.get("kind"), "species": named, "city": row.get("city")}
        # A post naming no animal has no species gold; city only where the text names it.
        listed = {
            "kind": "kind" in row,
            "species": named not in {None, "none"},
            "city": city_counts,
        }
        for name in FIELDS:
            if listed[name] and got[name] != gold[name]:
                report.misses.append((row["id"], name, str(gold[name]), str(got[name])))
    return report
