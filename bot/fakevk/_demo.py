"""Demo content for manual runs: two Moscow communities with lost and found posts.

All texts are written here for the demo (not real posts); photos are drawn shapes.
"""

from __future__ import annotations

import io
import time

from bot.fakevk._state import FakeVk

__all__ = ["demo_photo", "seed_demo"]


def demo_photo(
    color: tuple[int, int, int], *, spots: int = 0, size: tuple[int, int] = (640, 480)
) -> bytes:
    """A JPEG with a coloured 'animal' blob (and `spots` darker spots) on grass."""
    from PIL import Image, ImageDraw

    image = Image.new("RGB", size, (96, 140, 72))
    draw = ImageDraw.Draw(image)
    w, h = size
    draw.ellipse((w * 0.25, h * 0.3, w * 0.75, h * 0.8), fill=color)
    draw.ellipse((w * 0.6, h * 0.15, w * 0.85, h * 0.45), fill=color)
    for i in range(spots):
        x = w * (0.32 + 0.08 * i)
        draw.ellipse((x, h * 0.45, x + w * 0.06, h * 0.53), fill=tuple(c // 3 for c in color))
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=90)
    return out.getvalue()


def seed_demo(vk: FakeVk, *, now: int | None = None) -> None:
    """Fill `vk` with two groups (ids 1001 and 1002) and a handful of posts."""
    now = int(now if now is not None else time.time())
    hour = 3600
    vk.add_group(1001, "poteryashki_demo_msk", "Потеряшки Москвы (демо)")
    vk.add_group(1002, "naydenysh_demo_msk", "Найдёныши Москвы (демо)")
    vk.add_group(1003, "closed_demo", "Закрытая группа (демо)", is_closed=1)
    ginger, black = (214, 120, 40), (30, 30, 30)
    vk.add_post(
        1001,
        text="Правила группы: публикуем только объявления о пропаже и находке животных.",
        date=now - 90 * 24 * hour,
        is_pinned=True,
    )
    lost = vk.add_post(
        1001,
        text="ПРОПАЛ кот! Рыжий, с белыми пятнами, Москва, район Тёплый Стан. "
        "Убежал 3 дня назад. Помогите найти! Тел. 8-900-000-00-00",
        date=now - 50 * hour,
        photos=[demo_photo(ginger, spots=3), demo_photo(ginger, spots=3, size=(480, 640))],
    )
    vk.add_post(
        1001,
        text="Потерялась собака, чёрный лабрадор, ошейник красный. Бутово.",
        date=now - 30 * hour,
        photos=[demo_photo(black)],
    )
    vk.add_post(
        1001, text="Реклама: корм для кошек со скидкой!", date=now - 20 * hour, marked_as_ads=True
    )
    found = vk.add_post(
        1002,
        text="Найден рыжий кот в пятнах у метро Тёплый Стан, сидит в подъезде. Ищем хозяев!",
        date=now - 10 * hour,
        photos=[demo_photo(ginger, spots=3, size=(800, 600))],
    )
    vk.add_post(1002, text="Репост: помогите найти!", date=now - 5 * hour, repost_of=(1001, lost))
    vk.add_post(
        1002,
        text="Найдена собака, чёрная, без ошейника. Комментарии закрыты, пишите в ЛС.",
        date=now - 2 * hour,
        photos=[demo_photo(black, size=(500, 500))],
        can_comment=False,
    )
    vk.add_comment(1002, found, "Похож на кота из соседней группы!", from_id=123456)
