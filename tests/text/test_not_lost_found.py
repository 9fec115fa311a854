"""Posts that are neither lost nor found, written to look like them (adoption, sales, memorials,
lost things, news, jokes) and resolved ones: a post read as lost or found can be matched and
commented on, so the share read that way must not grow.

The floors are the counts measured on 2026-12-04 (of 60 each; see the file's comment): set 1
14, set 2 18, set 3 15 (rules were written from these three), set 4 27 (held out from all of
them; 31 before). Real lost and found posts that share those words stay lost or found (below):
that cost a few written posts, and is the right trade (a pet left unread stays lost).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from text import PostKind, classify_post

ROWS = [
    row
    for line in (Path(__file__).parent / "written_not_lost_found.jsonl")
    .read_text("utf-8")
    .splitlines()
    if line.strip() and "_comment" not in (row := json.loads(line))
]
SIDES = {PostKind.LOST, PostKind.FOUND}


def _read_as_a_side(prefix: str) -> int:
    return sum(
        classify_post(row["text"]).kind in SIDES for row in ROWS if row["id"].startswith(prefix)
    )


@pytest.mark.parametrize(
    ("prefix", "at_most"), [("w1-", 14), ("w2-", 18), ("w3-", 15), ("w4-", 27)]
)
def test_few_posts_about_something_else_are_read_as_lost_or_found(prefix: str, at_most: int):
    assert sum(row["id"].startswith(prefix) for row in ROWS) == 60
    assert _read_as_a_side(prefix) <= at_most


@pytest.mark.parametrize(
    "text",
    [
        "ПОТЕРЯЛ ДОКУМЕНТЫ! Паспорт, СНИЛС и права в синей обложке. Нашедшему вознаграждение.",
        "Потерялись ключи, связка из 3 ключей, брелок-лапка. Если кто нашёл — верните",
        "Подскажите, у собаки пропал аппетит третий день, вялая. К какому врачу обратиться?",
        "Догхантеры в Заречном районе! Нашли разбросанные сосиски с таблетками, берегите собак",
        "Сегодня не стало нашего Графа. 14 лет он был рядом, встречал у двери.",
        "Уезжаю на вахту на 2 месяца, нужна передержка для моего кота Фунтика, кастрирован, 4 года",
        "Потерян паспорт на имя Сидоровой Анны, нашедшего просим вернуть",
        "Бесплатное чипирование! Чип поможет вернуть питомца, если он когда-нибудь потеряется",
    ],
)
def test_a_loss_or_find_of_something_else_is_not_a_lost_or_found_pet(text: str) -> None:
    assert classify_post(text).kind not in SIDES


@pytest.mark.parametrize(
    "text",
    [
        "Пропал кот, 8-926-123-45-67",
        "Номер телефона 89261234567 Пропал кот, ласковый, стерилизованный",
        "Вышел из дома и не вернулся. Рыжий кот, 3 года",
        "Потерялась собака, была в ошейнике с телефоном хозяина",
    ],
)
def test_a_pets_loss_near_a_phone_or_a_home_stays_lost(text: str) -> None:
    assert classify_post(text).kind is PostKind.LOST


@pytest.mark.parametrize(
    "text",
    ["Кот дома, спасибо всем за репосты ❤️", "Пёс вернулся сам! Всем спасибо, неактуально"],
)
def test_back_home_is_resolved(text: str) -> None:
    assert classify_post(text).kind is PostKind.RESOLVED


@pytest.mark.parametrize(
    "text",
    [
        "Собаку нашла бабушка у магазина, ищем хозяев",
        "Нашли пакет с котятами у мусорки, ищем хозяев",
        "Нашли сумку-переноску с котом у подъезда",
    ],
)
def test_a_find_with_a_person_or_a_bag_in_it_stays_found(text: str) -> None:
    # Real finders write these: people and containers are not "things" a post is about.
    assert classify_post(text).kind is PostKind.FOUND


def test_a_sleepless_owner_still_lost_a_pet() -> None:
    assert classify_post("Кот пропал 3 дня назад, у нас пропал сон").kind is PostKind.LOST


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        # Found by a review: real posts the rules for posts about something else took away.
        ("Пропала собака. Потеряла телефон пока бегала искать, пишите в личку!", PostKind.LOST),
        ("Найдена кошка рядом с потерянными ключами у подъезда, ищем хозяев", PostKind.FOUND),
        ("Пропала собака, той-терьер, кличка Игрушка. Потеряли Игрушку в парке", PostKind.LOST),
        ("Пропал кот. Без таблеток погибнет — забыли таблетки дать, а он выскочил", PostKind.LOST),
        ("Убежал пёс, испугался салюта. Дома ждём, вернулся бы скорее", PostKind.LOST),
        ("Кот вернулся домой на день и снова ушёл, неделю нет. Пропал рыжий кот", PostKind.LOST),
        ("Мы дома все обыскали, кот пропал. Возможно выскочил в подъезд", PostKind.LOST),
        ("Пропал кот. Его не стало видно во дворе с понедельника", PostKind.LOST),
        ("Пропала собака покойного дедушки, после похорон убежала со двора", PostKind.LOST),
        ("Потерялась собака, выскочила из такси на Ленина. Лабрадор палевый", PostKind.LOST),
        ("Пропала собака! На ошейнике GPS трекер, но батарея села", PostKind.LOST),
    ],
)
def test_real_posts_with_those_words_keep_their_side(text: str, kind: PostKind) -> None:
    assert classify_post(text).kind is kind
