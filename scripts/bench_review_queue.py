"""Time the review desk's first queue page with a backlog of pending pairs in a real database.

    .venv/bin/python scripts/bench_review_queue.py [--pairs 10000] [--database-url URL] [--runs 7]

Fills a fresh database (a SQLite file in a temporary folder unless --database-url names an
empty, migratable one) with `--pairs` candidate pairs in the review band, each between a lost
and a found post with a photo and an animal, logs a volunteer in and requests `/queue` through
the real application (Starlette's test client: routing, session, queries, the comment stage's
preview for every card, Jinja rendering). Prints the first and the median time of the page.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def fill(engine: Any, pairs: int, now: datetime) -> None:
    """`pairs` lost/found post pairs (two cases each) and one candidate pair per couple."""
    from sqlalchemy import insert

    from bot.storage._pipeline_schema import AnimalRow, MatchRow, PostLabelRow
    from bot.storage._schema import CaseRow, GroupRow, PhotoRow, PostPhotoRow, PostRow

    rows: dict[str, list[dict]] = {k: [] for k in ("cases", "posts", "labels", "photos", "links",
                                                   "animals", "matches")}
    cities = ["Москва", "Казань", "Тула", "Тверь"]
    for n in range(2 * pairs):
        pk = n + 1
        group = 1 + n % 2  # lost posts in group 1, found in group 2
        date = now - timedelta(hours=n % 500)
        rows["cases"].append(
            {"id": pk, "origin_owner_id": -group, "origin_post_id": pk, "created_at": now}
        )
        rows["posts"].append({
            "id": pk, "owner_id": -group, "post_id": pk, "date": date, "text": f"Пост {pk}",
            "is_pinned": False, "marked_as_ads": False, "can_comment": True, "case_id": pk,
            "state": "done", "stage": "done", "first_seen_at": now, "updated_at": now,
        })
        rows["labels"].append({
            "post_id": pk, "kind": "lost" if group == 1 else "found",
            "species": "dog" if n % 3 else "cat", "city": cities[(n // 2) % 4],
            "city_source": "text", "district": None, "evidence": "{}", "labelled_at": now,
        })
        rows["photos"].append({
            "id": pk, "vk_owner_id": -group, "vk_photo_id": pk, "source_url": "http://x/",
            "sha256": f"{pk:064x}", "state": "stored", "file_path": f"/nonexistent/{pk}.jpg",
            "attempts": 1, "created_at": now, "updated_at": now,
        })
        rows["links"].append({"post_id": pk, "photo_id": pk, "position": 0})
        rows["animals"].append({
            "id": pk, "photo_id": pk, "position": 0, "species": "dog", "score": 0.9,
            "box": "0,0,10,10", "crop_path": f"/nonexistent/{pk}.png", "created_at": now,
        })
    for m in range(pairs):
        lost, found = 2 * m + 1, 2 * m + 2
        rows["matches"].append({
            "lost_case_id": lost, "found_case_id": found, "lost_post_id": lost,
            "found_post_id": found, "lost_photo_position": 0, "found_photo_position": 0,
            "similarity": 0.6 + 0.1 * (m % 997) / 997, "confidence": 0.2 + 0.5 * (m % 991) / 991,
            "accepted": False, "reasons": json.dumps(["best pair similarity"]),
            "model_id": "bench", "created_at": now, "updated_at": now,
        })
    with engine.begin() as connection:
        connection.execute(insert(GroupRow), [
            {"vk_id": g, "screen_name": f"g{g}", "title": f"Группа {g}", "city": "Москва",
             "comments_enabled": g == 1, "shadow_mode": False, "cursor_post_id": 0,
             "accessible": True, "created_at": now}
            for g in (1, 2)
        ])
        for table, key in ((CaseRow, "cases"), (PostRow, "posts"), (PostLabelRow, "labels"),
                           (PhotoRow, "photos"), (PostPhotoRow, "links"),
                           (AnimalRow, "animals"), (MatchRow, "matches")):
            connection.execute(insert(table), rows[key])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", type=int, default=10_000)
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()

    from starlette.testclient import TestClient

    from bot import storage
    from bot.config import Settings
    from bot.storage import reviews
    from bot.web import create_app
    from bot.web.security import hash_password

    folder = Path(tempfile.mkdtemp(prefix="bench-review-queue-"))
    url = args.database_url or f"sqlite:///{folder / 'bench.db'}"
    engine = storage.open_database(url)
    storage.upgrade_database(engine)
    now = datetime.now(UTC)
    started = time.perf_counter()
    fill(engine, args.pairs, now)
    sessions = storage.session_factory(engine)
    with storage.session_scope(sessions) as session:
        reviews.add_user(session, "bench", role=reviews.Role.VOLUNTEER,
                         password_hash=hash_password("bench-password"), now=now)
    fill_seconds = time.perf_counter() - started
    settings = Settings(database_url=url, var_dir=folder / "var",
                        commenting={"quiet_hours": None})
    app = create_app(settings, sessions=sessions)
    with TestClient(app, base_url="http://127.0.0.1") as client:
        page = client.get("/login").text
        token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
        client.post("/login", data={"name": "bench", "password": "bench-password",
                                    "csrf_token": token})
        times = []
        for _ in range(args.runs):
            t0 = time.perf_counter()
            response = client.get("/queue")
            times.append(time.perf_counter() - t0)
            assert response.status_code == 200
        cards = response.text.count('class="card"')
        total = re.search(r'class="count">(\d+)<', response.text).group(1)
    engine.dispose()
    print(json.dumps({
        "database": engine.dialect.name,
        "pending_pairs": int(total),
        "cards_on_page": cards,
        "fill_seconds": round(fill_seconds, 2),
        "first_page_seconds": round(times[0], 3),
        "median_page_seconds": round(statistics.median(times), 3),
        "max_page_seconds": round(max(times), 3),
        "runs": args.runs,
        "html_kb": round(len(response.text) / 1024, 1),
    }, ensure_ascii=False, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
