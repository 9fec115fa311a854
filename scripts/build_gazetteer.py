"""Build `text/data/cities.csv`, the city table `text/` ships, from `../shared/data/gazetteer`.

The output is a table of facts (name, region, lat, lon, population) derived from two
CC BY-SA city lists; the source files themselves are never copied into the repository.

    python scripts/build_gazetteer.py [--shared ../shared] [--out text/data/cities.csv]
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
HEADER = [
    "# Russian cities: name, region, latitude, longitude, population.",
    "# Derived by scripts/build_gazetteer.py from pensnarik/russian-cities (ru.wikipedia, "
    "CC BY-SA) and hflabs/city (CC BY-SA 4.0).",
    "# This table is licensed CC BY-SA 4.0 as a derivative of those lists.",
]


def _fold(name: str) -> str:
    return name.replace("ё", "е").replace("Ё", "Е")


def build(shared: Path) -> list[tuple[str, str, float, float, int]]:
    """Merge both lists: the Wikipedia list first (it keeps ё), hflabs for cities it lacks."""
    rows: dict[str, tuple[str, str, float, float, int]] = {}
    wiki = json.loads((shared / "data/gazetteer/russian_cities.json").read_text(encoding="utf-8"))
    for item in wiki:
        key = _fold(item["name"]) + "|" + _fold(item["subject"])
        rows[key] = (
            item["name"],
            item["subject"],
            round(float(item["coords"]["lat"]), 5),
            round(float(item["coords"]["lon"]), 5),
            int(item["population"] or 0),
        )
    wiki_names = {_fold(r[0]) for r in rows.values()}
    with (shared / "data/gazetteer/hflabs_city.csv").open(encoding="utf-8") as fh:
        for item in csv.DictReader(fh):
            name = item["city"] or item["settlement"] or ""
            if not name and item["region_type"] == "г":
                name = item["region"]
            if not name or _fold(name) in wiki_names:
                continue
            region = f"{item['region']} {item['region_type']}".strip()
            rows[_fold(name) + "|" + region] = (
                name,
                region,
                round(float(item["geo_lat"]), 5),
                round(float(item["geo_lon"]), 5),
                int(item["population"] or 0),
            )
    return sorted(rows.values(), key=lambda r: (r[0], -r[4]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, default=REPO.parent / "shared")
    parser.add_argument("--out", type=Path, default=REPO / "text/data/cities.csv")
    args = parser.parse_args()
    rows = build(args.shared)
    with args.out.open("w", encoding="utf-8", newline="") as fh:
        fh.write("\n".join(HEADER) + "\n")
        writer = csv.writer(fh)
        writer.writerow(["name", "region", "lat", "lon", "population"])
        writer.writerows(rows)
    print(f"wrote {len(rows)} cities to {args.out}")


if __name__ == "__main__":
    main()
