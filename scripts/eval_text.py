"""Score `text.classify_post` on a labelled JSON-lines file: confusion matrix, per-field
accuracy and per-class precision/recall.

Each line: {"id", "text", "kind", "species", "city"[, "group_city", "species_in_text",
"side"]}; `kind` is the real side (lost/found from the site) or other/resolved, `side` what a
blind reader can tell from the text (lost/found/unclear; defaults to `kind`). Reported: the
kind confusion matrix, the share of real lost/found posts put in `other`, the share swapped
between lost and found, kind accuracy, `unknown` share and lost/found recall where a reader
can tell the side, species where the text names or implies the animal (`species_in_text`,
else `species`; also against `species` on every cat/dog row, "the site's label"), and city
where the text spells a gazetteer city (rows with "source": "written" always score it).

    python scripts/eval_text.py FILE.jsonl
    python scripts/eval_text.py --pet911 rules|measure   # pet911 2025 cards in ../shared

pet911 2025 cards are scored against blind readers' labels of their part
(tests/text/pet911_{rules,measure}_blind_labels.jsonl); the measure part, read twice, is
also scored against its second reading.
    python scripts/eval_text.py --real dev|holdout|all   # the older real posts in ../shared
    python scripts/eval_text.py --written                # the posts written in tests/text
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.text.devset import (  # noqa: E402
    FIELDS,
    evaluate,
    pet911_2025_rows,
    real_rows,
    second_reading,
    written_rows,
)
from text import PetSpecies, PostKind, classify_post  # noqa: E402


def _predict(row: dict) -> dict:
    label = classify_post(row["text"], group_city=row.get("group_city"))
    return {"kind": label.kind.value, "species": label.species.value, "city": label.city}


def _matrix(title: str, confusion: dict, classes: list[str]) -> None:
    print(f"\n{title} (rows gold, columns predicted)")
    print(" " * 10 + "".join(f"{c:>10}" for c in classes))
    for gold in classes:
        print(f"{gold:>10}" + "".join(f"{confusion.get((gold, p), 0):>10}" for p in classes))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("file", nargs="?", type=Path)
    parser.add_argument("--real", choices=["dev", "holdout", "all"])
    parser.add_argument("--pet911", choices=["rules", "measure", "all"])
    parser.add_argument("--written", action="store_true")
    parser.add_argument("--no-misses", action="store_true", help="do not list the misses")
    parser.add_argument("--shared", type=Path, default=REPO.parent / "shared")
    args = parser.parse_args()
    if args.pet911:
        rows = pet911_2025_rows(args.shared, args.pet911)
    elif args.real:
        rows = real_rows(args.shared, args.real)
    elif args.written:
        rows = written_rows()
    elif args.file:
        rows = [json.loads(line) for line in args.file.open(encoding="utf-8") if line.strip()]
        rows = [r for r in rows if "text" in r]
        for i, row in enumerate(rows):
            row.setdefault("id", str(i))
    else:
        parser.error("give a FILE, --pet911 PART, --real SPLIT or --written")
    report = evaluate(rows, _predict)
    print(f"posts: {report.n}")
    for name in FIELDS:
        print(f"{name:>8} accuracy: {report.accuracy(name):.3f} (n={report.counted[name]})")
    print(f"species against the site's label, every cat/dog post: "
          f"{report.accuracy('species_site'):.3f} (n={report.counted['species_site']})")
    print(f"real lost/found put in other: {report.share_other():.3f}; swapped: "
          f"{report.share_swapped():.3f}")
    print(f"where a reader can tell the side: kind accuracy {report.accuracy('side'):.3f} "
          f"(n={report.counted['side']}), unknown {report.share_unknown():.3f}, "
          f"lost recall {report.side_recall('lost'):.3f}, "
          f"found recall {report.side_recall('found'):.3f}")
    again = second_reading(rows)
    if again:
        second = evaluate(again, _predict)
        print(f"second reading: kind accuracy {second.accuracy('side'):.3f} "
              f"(n={second.counted['side']}), unknown {second.share_unknown():.3f}, "
              f"lost recall {second.side_recall('lost'):.3f}, "
              f"found recall {second.side_recall('found'):.3f}, "
              f"species {second.accuracy('species'):.3f} (n={second.counted['species']})")
    _matrix("kind", report.confusion, [k.value for k in PostKind])
    for kind in PostKind:
        print(f"{kind.value:>10}  precision {report.precision(kind):.3f}  "
              f"recall {report.recall(kind):.3f}")
    _matrix("species", report.species_confusion, [s.value for s in PetSpecies])
    if report.misses and not args.no_misses:
        print("\nmisses (id, field, gold, predicted):")
        for miss in report.misses:
            print("  ", *miss)


if __name__ == "__main__":
    main()
