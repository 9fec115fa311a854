"""`petmatch demo`: the whole bot on a fake VK, with a scenario whose truth is known.

A fake VK server runs in-process; a few communities get lost and found posts (texts written
here for the demo) whose photos come from scikit-image's bundled `chelsea` cat photo, with
realistic changes of crop, light, angle and compression for the "found" posts, plus posts with
non-animal photos, an advert, an "отдам котят" post and a "нашлась" update. Or, with
`--photos DIR`, from any identity-labelled folder. The real pipeline runs on SQLite, and the
demo scores its own comments against the truth.
"""

from __future__ import annotations

import io
import random
import shutil
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from PIL import Image, ImageEnhance

from bot import storage
from bot.config import Settings
from bot.storage import pipeline as store

LOST_GROUP, FOUND_GROUP, CITY_GROUP = 1001, 1002, 1003


@dataclass(frozen=True)
class DemoPost:
    group_id: int
    text: str
    photos: tuple[bytes, ...]
    identity: str | None  # the animal shown, when there is one; None for non-animal photos
    hours_ago: float
    marked_as_ads: bool = False


@dataclass
class DemoSummary:
    posts: int = 0
    labels: dict[str, int] = field(default_factory=dict)
    photos: int = 0
    animals: int = 0
    matches: int = 0
    accepted_matches: int = 0
    comments: int = 0
    correct_comments: int = 0
    wrong_comments: int = 0
    missed_pairs: int = 0
    comment_lines: list[dict[str, Any]] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "posts": self.posts,
            "labels": self.labels,
            "photos": self.photos,
            "animals": self.animals,
            "matches": self.matches,
            "accepted_matches": self.accepted_matches,
            "comments": self.comments,
            "correct_comments": self.correct_comments,
            "wrong_comments": self.wrong_comments,
            "missed_pairs": self.missed_pairs,
            "comment_details": self.comment_lines,
            "failures": self.failures,
        }


# ---- photos -------------------------------------------------------------------------------


def _jpeg(image: Image.Image, quality: int = 90) -> bytes:
    out = io.BytesIO()
    image.convert("RGB").save(out, format="JPEG", quality=quality)
    return out.getvalue()


def vary_photo(image: Image.Image, rng: random.Random) -> Image.Image:
    """Another photo of the same animal: a different crop, light, angle and camera."""
    width, height = image.size
    keep = rng.uniform(0.8, 0.92)
    cw, ch = int(width * keep), int(height * keep)
    x0, y0 = rng.randint(0, width - cw), rng.randint(0, height - ch)
    varied = image.crop((x0, y0, x0 + cw, y0 + ch))
    varied = ImageEnhance.Brightness(varied).enhance(rng.uniform(0.75, 1.25))
    varied = ImageEnhance.Color(varied).enhance(rng.uniform(0.8, 1.15))
    varied = varied.rotate(rng.uniform(-8, 8), resample=Image.Resampling.BICUBIC, expand=False)
    if rng.random() < 0.5:
        varied = varied.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    scale = rng.uniform(0.8, 1.3)
    return varied.resize((int(cw * scale), int(ch * scale)), Image.Resampling.BILINEAR)


def builtin_scenario(seed: int = 7) -> list[DemoPost]:
    """The default scenario, from images that ship with scikit-image (no downloads)."""
    from skimage import data

    rng = random.Random(seed)
    cat = Image.fromarray(data.chelsea())
    coffee = Image.fromarray(data.coffee())
    rocket = Image.fromarray(data.rocket())
    return [
        DemoPost(
            LOST_GROUP,
            "ПРОПАЛА КОШКА! Москва, район Черёмушки, 3 дня назад выскользнула в подъезд. "
            "Рыжая полосатая, зовут Челси. Помогите найти!",
            (_jpeg(cat), _jpeg(vary_photo(cat, rng))),
            "chelsea",
            hours_ago=72,
        ),
        DemoPost(
            FOUND_GROUP,
            "Нашли кошку у подъезда на Профсоюзной улице, рыжая, ласковая, явно домашняя. "
            "Сейчас на передержке, ищем хозяев! Москва",
            (_jpeg(vary_photo(cat, rng), quality=70),),
            "chelsea",
            hours_ago=20,
        ),
        DemoPost(
            FOUND_GROUP,
            "Найдена собака в Москве, на фото место, где её видели. Чёрный пёс в ошейнике.",
            (_jpeg(coffee),),
            None,
            hours_ago=30,
        ),
        DemoPost(
            LOST_GROUP,
            "Пропал кот в Москве, район Марьино! Вот листовка, просим репост.",
            (_jpeg(rocket),),
            None,
            hours_ago=40,
        ),
        DemoPost(
            LOST_GROUP,
            "Отдам котят в добрые руки, 2 месяца, к лотку приучены. Москва.",
            (_jpeg(vary_photo(cat, rng)),),
            None,
            hours_ago=10,
        ),
        DemoPost(
            CITY_GROUP,
            "Наш Барсик нашёлся! Спасибо всем за репосты, он дома.",
            (),
            None,
            hours_ago=5,
        ),
        DemoPost(
            FOUND_GROUP,
            "Корм для кошек со скидкой 30% только сегодня! Доставка по Москве.",
            (_jpeg(coffee),),
            None,
            hours_ago=2,
            marked_as_ads=True,
        ),
    ]


def folder_scenario(
    folder: Path, *, identities: int = 12, species_word: str = "собака", seed: int = 7
) -> list[DemoPost]:
    """A scenario from an identity-labelled folder (sub-folders or `<id>_<n>.jpg`): for
    two thirds of the identities a lost post and a found post with different photos; for
    the rest a lost post only, so the bot has animals it must not match."""
    from reid.evaluation import list_labelled_images

    rng = random.Random(seed)
    by_identity: dict[str, list[Path]] = {}
    for item in list_labelled_images(folder):
        by_identity.setdefault(item.identity, []).append(item.path)
    eligible = sorted(i for i, paths in by_identity.items() if len(paths) >= 2)
    if not eligible:
        raise ValueError(f"{folder}: no identity has two or more photos")
    chosen = rng.sample(eligible, min(identities, len(eligible)))
    posts: list[DemoPost] = []
    pair_count = max(1, (2 * len(chosen)) // 3)
    for n, identity in enumerate(chosen):
        first, second = rng.sample(by_identity[identity], 2)
        posts.append(
            DemoPost(
                LOST_GROUP,
                f"Пропала {species_word}! Москва, потерялась {n + 2} дня назад, помогите найти.",
                (_read(first),),
                identity,
                hours_ago=72 + n,
            )
        )
        if n < pair_count:
            posts.append(
                DemoPost(
                    FOUND_GROUP,
                    f"Найдена {species_word} в Москве, сидит у магазина, ищем хозяев!",
                    (_read(second),),
                    identity,
                    hours_ago=24 - n * 0.5,
                )
            )
    return posts


def _read(path: Path) -> bytes:
    with Image.open(path) as image:
        return _jpeg(image)


# ---- the run ------------------------------------------------------------------------------


@contextmanager
def demo_environment(base: Settings, work_dir: Path) -> Iterator[tuple[Any, Settings]]:
    """A running fake VK and settings that point the whole bot at it, on SQLite in work_dir."""
    from bot.fakevk import FakeVkServer

    if work_dir.exists():
        shutil.rmtree(work_dir)
    work_dir.mkdir(parents=True)
    with FakeVkServer() as vk:
        settings = base.model_copy(
            update={
                "database_url": f"sqlite:///{work_dir / 'petmatch.db'}",
                "var_dir": work_dir,
                "photos_dir": work_dir / "photos",
                "index_dir": work_dir / "index",
                "models_dir": base.models_dir,
                "vk": base.vk.model_copy(
                    update={
                        "api_url": vk.api_url,
                        "token": _secret(vk.token),
                        "token_file": None,
                        "read_token": None,
                        "read_token_file": None,
                        "comment_token": None,
                        "comment_token_file": None,
                        "bot_group_id": None,
                        "photo_hosts": ("127.0.0.1",),
                        "backoff_base_seconds": 0.01,
                        "request_timeout_seconds": 5.0,
                        "rate_limit_per_second": 50.0,
                    }
                ),
                "commenting": base.commenting.model_copy(
                    update={"quiet_hours": None, "min_gap_seconds": 0.0, "dry_run": False}
                ),
            }
        )
        yield vk, settings


def _secret(value: str) -> Any:
    from pydantic import SecretStr

    return SecretStr(value)


def run_demo(
    base: Settings,
    *,
    work_dir: Path,
    posts: Sequence[DemoPost],
    now: datetime | None = None,
    vision: Any = None,
    progress: Callable[[str], None] | None = None,
) -> DemoSummary:
    """Seed a fake VK with `posts`, poll it, run the pipeline and score the comments."""
    from bot.pipeline import Pipeline
    from bot.polling import poll_cycle
    from bot.vk.gateway import VkApiGateway

    now = now or datetime.now(UTC)
    say = progress or (lambda _message: None)
    with demo_environment(base, work_dir) as (vk, settings):
        truth = _seed(vk, posts, now)
        engine = storage.open_database(settings.database_url)
        storage.upgrade_database(engine)
        sessions = storage.session_factory(engine)
        with VkApiGateway(settings.vk) as gateway:
            _add_groups(sessions, gateway, now)
            say("polling the fake VK…")
            poll = poll_cycle(sessions, gateway, settings, now=now)
            say(f"read {poll.new_posts} posts, stored {poll.photos_stored} photos; processing…")
            pipeline = Pipeline(settings, sessions, gateway, vision=vision)
            report = pipeline.process_pending(now=now)
        summary = _summarise(sessions, vk, truth, report)
        summary.failures.extend(_poll_failures(poll))
        engine.dispose()
    return summary


def _seed(vk: Any, posts: Sequence[DemoPost], now: datetime) -> dict[tuple[int, int], str | None]:
    vk.add_group(LOST_GROUP, "poteryashki_demo_msk", "Потеряшки Москвы (демо)")
    vk.add_group(FOUND_GROUP, "naydenyshi_demo_msk", "Найдёныши Москвы (демо)")
    vk.add_group(CITY_GROUP, "zhivotnye_demo_kzn", "Животные Казани (демо)")
    truth: dict[tuple[int, int], str | None] = {}
    for post in sorted(posts, key=lambda p: -p.hours_ago):
        date = int((now - timedelta(hours=post.hours_ago)).timestamp())
        post_id = vk.add_post(
            post.group_id,
            text=post.text,
            date=date,
            photos=list(post.photos),
            marked_as_ads=post.marked_as_ads,
        )
        truth[(-post.group_id, post_id)] = post.identity
    return truth


def _add_groups(sessions: Any, gateway: Any, now: datetime) -> None:
    cities = {LOST_GROUP: "Москва", FOUND_GROUP: "Москва", CITY_GROUP: "Казань"}
    with storage.session_scope(sessions) as session:
        for group_id, city in cities.items():
            info = gateway.resolve_group(str(group_id))
            storage.upsert_group(
                session,
                vk_id=info.id,
                screen_name=info.screen_name,
                title=info.name,
                now=now,
                city=city,
                comments_enabled=True,
            )


def _summarise(
    sessions: Any, vk: Any, truth: dict[tuple[int, int], str | None], report: Any
) -> DemoSummary:
    summary = DemoSummary(failures=list(report.failures))
    with storage.session_scope(sessions) as session:
        summary.posts = storage.count_posts(session)
        summary.photos = storage.count_photos(session)
        summary.labels = dict(report.labelled)
        summary.animals = report.animals
        matches = store.list_matches(session, limit=10_000)
        summary.matches = len(matches)
        summary.accepted_matches = sum(m.accepted for m in matches)
        posts_by_pk = {}
        for match in matches:
            for pk in (match.lost_post_pk, match.found_post_pk):
                posts_by_pk[pk] = _post_key(session, pk)
    comments = vk.comments
    summary.comments = len(comments)
    commented_pairs = set()
    for comment in comments:
        target = (comment["owner_id"], comment["post_id"])
        other = _linked_post(comment["text"])
        same = (
            other is not None
            and truth.get(target) is not None
            and (truth.get(target) == truth.get(other))
        )
        summary.correct_comments += same
        summary.wrong_comments += not same
        commented_pairs.add(frozenset((target, other)))
        summary.comment_lines.append(
            {
                "under": f"https://vk.com/wall{target[0]}_{target[1]}",
                "links": None if other is None else f"https://vk.com/wall{other[0]}_{other[1]}",
                "correct": same,
                "text": comment["text"],
            }
        )
    summary.missed_pairs = _missed_pairs(truth, commented_pairs)
    return summary


def _post_key(session: Any, pk: int) -> tuple[int, int]:

    post = storage.get_post_by_pk(session, pk)
    return post.owner_id, post.post_id


def _linked_post(text: str) -> tuple[int, int] | None:
    import re

    found = re.search(r"wall(-?\d+)_(\d+)", text)
    return None if found is None else (int(found.group(1)), int(found.group(2)))


def _missed_pairs(truth: dict[tuple[int, int], str | None], commented: set[frozenset]) -> int:
    """Lost/found pairs of one identity in different groups that got no comment."""
    by_identity: dict[str, list[tuple[int, int]]] = {}
    for key, identity in truth.items():
        if identity is not None:
            by_identity.setdefault(identity, []).append(key)
    missed = 0
    for keys in by_identity.values():
        lost = [k for k in keys if k[0] == -LOST_GROUP]
        found = [k for k in keys if k[0] == -FOUND_GROUP]
        if lost and found and not any(frozenset((a, b)) in commented for a in lost for b in found):
            missed += 1
    return missed


def _poll_failures(poll: Any) -> list[str]:
    failures = [f"{g.screen_name}: {g.error}" for g in poll.groups if g.error]
    if poll.photos_failed:
        failures.append(f"{poll.photos_failed} photo(s) could not be stored")
    return failures
