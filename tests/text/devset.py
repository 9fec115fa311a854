"""The labelled development set for `text/`: real posts from ../shared/data/text joined with
the labels in `real_labels.jsonl` (texts are never stored here), plus posts written here.

Also the scoring used by the tests and by `scripts/eval_text.py`.
"""

from __future__ import annotations

import hashlib
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


PET911_2025 = Path("data") / "text" / "pet911_2025_dev.jsonl"
BLIND_LABELS = HERE / "pet911_measure_blind_labels.jsonl"
RULES_BLIND_LABELS = HERE / "pet911_rules_blind_labels.jsonl"


def pet911_2025_part(post_id: object) -> str:
    """Which part of `pet911_2025_dev.jsonl` a post is in: "measure" (a third, by a hash of
    the id; its texts are never read while writing rules) or "rules". Fixed once, never
    tuned."""
    digest = int(hashlib.sha1(str(post_id).encode()).hexdigest(), 16)
    return "measure" if digest % 3 == 0 else "rules"


def blind_labels(part: str = "measure") -> dict[str, dict]:
    """Blind readers' labels of one part ("measure" or "rules"), keyed by post id (empty
    until made)."""
    path = BLIND_LABELS if part == "measure" else RULES_BLIND_LABELS
    if not path.is_file():
        return {}
    return {str(r["id"]): r for r in _read_jsonl(path)}


def pet911_2025_rows(shared: Path, part: str = "rules") -> list[dict]:
    """The 2025 pet911 cards of one part ("rules", "measure" or "all") as a VK post would
    read (`place + ". " + text`), gold kind and species from the site. Rows with a blind
    reader's label also carry `side` (lost/found/unclear) and `species_in_text`; measure rows
    read a second time carry `side_2` and `species_2` too."""
    blind = {part_name: blind_labels(part_name) for part_name in ("rules", "measure")}
    rows = []
    for line in (shared / PET911_2025).read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        card = json.loads(line)
        card_part = pet911_2025_part(card["id"])
        if part != "all" and card_part != part:
            continue
        row = {"id": f"pet911:{card['id']}", "source": "pet911_2025", "part": card_part,
               "text": f"{card['place']}. {card['text']}", "kind": card["kind"],
               "species": card["species"], "city": card["city"]}
        label = blind[card_part].get(str(card["id"]))
        if label is not None:
            row["side"] = label["side"]
            row["species_in_text"] = label["species"]
            if "side_2" in label:
                row["side_2"] = label["side_2"]
                row["species_2"] = label["species_2"]
        rows.append(row)
    return rows


def second_reading(rows: Iterable[dict]) -> list[dict]:
    """The rows read a second time, scored against that reading (`side_2`, `species_2`)."""
    return [dict(r, side=r["side_2"], species_in_text=r["species_2"]) for r in rows
            if "side_2" in r]


def written_rows() -> list[dict]:
    """Posts written here (other/resolved and tricky cases), marked as such."""
    return [dict(r, source="written") for r in _read_jsonl(HERE / "written_posts.jsonl")]


SIDES = ("lost", "found")


@dataclass
class Report:
    """Per-field accuracy, the kind confusion matrix and per-class precision/recall, and the
    side scores: real lost/found posts put in `other`, swapped, or left `unknown`."""

    n: int = 0
    correct: Counter = field(default_factory=Counter)
    counted: Counter = field(default_factory=Counter)
    confusion: Counter = field(default_factory=Counter)  # (gold, predicted) -> count
    side_confusion: Counter = field(default_factory=Counter)  # reader's side -> predicted
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

    def _real_sided(self) -> int:
        return sum(v for (g, _), v in self.confusion.items() if g in SIDES)

    def share_other(self) -> float:
        """Of the real lost and found posts, the share put in `other`."""
        n = self._real_sided()
        hits = sum(v for (g, p), v in self.confusion.items() if g in SIDES and p == "other")
        return hits / n if n else float("nan")

    def share_swapped(self) -> float:
        """Of the real lost and found posts, the share given the opposite side."""
        n = self._real_sided()
        hits = self.confusion["lost", "found"] + self.confusion["found", "lost"]
        return hits / n if n else float("nan")

    def share_unknown(self) -> float:
        """Of the posts a reader can side, the share left `unknown`."""
        n = sum(self.side_confusion.values())
        hits = sum(v for (_, p), v in self.side_confusion.items() if p == "unknown")
        return hits / n if n else float("nan")

    def side_recall(self, side: str) -> float:
        """Recall of one side on the posts a reader can side (gold: the reader's side)."""
        n = sum(v for (g, _), v in self.side_confusion.items() if g == side)
        return self.side_confusion[side, side] / n if n else float("nan")


def _gold_city(row: dict) -> tuple[bool, str | None]:
    """Whether city counts on this row, and its gold. pet911 2025 rows count where the
    card's locality is a gazetteer city and the text spells it."""
    if row.get("source") == "written":
        return True, row.get("city")
    if not names_city(row["text"], row.get("city")):
        return False, row.get("city")
    if row.get("source") != "pet911_2025":
        return True, row.get("city")
    from text import _geo

    city = _geo.resolve_city(row["city"])
    if city is None:
        return False, row["city"]
    return True, city.region if city.region in {"Москва", "Санкт-Петербург"} else city.name


def evaluate(rows: Iterable[dict], predict: Callable[[dict], dict]) -> Report:
    """Score `predict(row) -> {"kind", "species", "city"}` against the rows' gold labels.

    City counts only where the text itself names the gold city (`names_city`). Species counts
    on posts whose text names an animal (`species_in_text`, labelled by reading, defaults
    to the gold species): a post that never says which animal it is can only be "unknown" to
    a text reader, and the pipeline takes species from the photos. `species_site` keeps the
    strict score against the source site's label on every cat and dog post. `side` scores
    the kind where a reader can tell the side (the row's `side`, else its `kind`); `unknown`
    is wrong there.
    """
    report = Report()
    for row in rows:
        got = predict(row)
        report.n += 1
        report.confusion[row["kind"], got["kind"]] += 1
        report.counted["kind"] += 1
        report.correct["kind"] += got["kind"] == row["kind"]
        side = row.get("side", row["kind"])
        if side in SIDES:
            report.side_confusion[side, got["kind"]] += 1
            report.counted["side"] += 1
            report.correct["side"] += got["kind"] == side
        if row.get("species") in {"cat", "dog"}:
            report.counted["species_site"] += 1
            report.correct["species_site"] += got["species"] == row["species"]
        named = row.get("species_in_text", row.get("species"))
        if named in {"cat", "dog", "other"}:
            report.counted["species"] += 1
            report.correct["species"] += got["species"] == named
            report.species_confusion[named, got["species"]] += 1
        city_counts, city = _gold_city(row)
        if city_counts:
            report.counted["city"] += 1
            report.correct["city"] += got["city"] == city
        gold = {"kind": side if side in SIDES else row.get("kind"), "species": named,
                "city": city}
        # A post naming no animal has no species gold; city only where the text names it.
        listed = {
            "kind": "kind" in row and (side in SIDES or "side" not in row),
            "species": named not in {None, "none"},
            "city": city_counts,
        }
        for name in FIELDS:
            if listed[name] and got[name] != gold[name]:
                report.misses.append((row["id"], name, str(gold[name]), str(got[name])))
    return report
