"""The 2025 pet911 descriptions (../shared/data/text/pet911_2025_dev.jsonl), read as a VK post
would be (`place + ". " + text`), split once by a hash of the card id.

Rules were written on the `rules` part (gold: the site's section). The `measure` part was
only measured, against labels made blind by readers who saw the texts alone
(`pet911_measure_blind_labels.jsonl`); the rules part was read blind too, later
(`pet911_rules_blind_labels.jsonl`). The floors below are what was measured (see
text/README.md), not the issue's targets where those are missed.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.text.devset import (
    Report,
    blind_labels,
    evaluate,
    pet911_2025_part,
    pet911_2025_rows,
)
from text import PostKind, classify_post


def _predict(row: dict) -> dict:
    label = classify_post(row["text"], group_city=row.get("group_city"))
    return {"kind": label.kind.value, "species": label.species.value, "city": label.city}


def test_the_split_is_a_fixed_hash_of_the_id() -> None:
    labels = blind_labels()
    assert len(labels) == 305
    assert all(pet911_2025_part(post_id) == "measure" for post_id in labels)
    assert {pet911_2025_part(i) for i in ("rl1076681", "rl1079004", "rf1085232")} == {
        "measure", "rules"}
    assert {r["side"] for r in labels.values()} <= {"lost", "found", "unclear"}
    assert {r["species"] for r in labels.values()} <= {"cat", "dog", "other", "none"}


@pytest.mark.shared
def test_parts_cover_the_file_and_labels_cover_the_measure_part(shared_dir: Path) -> None:
    rules = pet911_2025_rows(shared_dir, "rules")
    measure = pet911_2025_rows(shared_dir, "measure")
    assert (len(rules), len(measure)) == (598, 305)
    assert all("side" in r and "side_2" in r for r in measure)
    assert all("side" in r and "side_2" not in r for r in rules)


def test_the_rules_part_was_read_blind_too() -> None:
    labels = blind_labels("rules")
    assert len(labels) == 598
    assert all(pet911_2025_part(post_id) == "rules" for post_id in labels)
    assert {r["side"] for r in labels.values()} <= {"lost", "found", "unclear"}
    assert {r["species"] for r in labels.values()} <= {"cat", "dog", "other", "none"}
    assert not any("cue" in r or "text" in r for r in labels.values())


@pytest.fixture(scope="module")
def rules_part(shared_dir: Path) -> Report:
    return evaluate(pet911_2025_rows(shared_dir, "rules"), _predict)


@pytest.fixture(scope="module")
def measure_part(shared_dir: Path) -> Report:
    return evaluate(pet911_2025_rows(shared_dir, "measure"), _predict)


@pytest.mark.shared
def test_rules_part(rules_part: Report) -> None:
    assert rules_part.share_other() <= 0.005, rules_part.misses
    assert rules_part.share_swapped() <= 0.005, rules_part.misses
    assert rules_part.recall("lost") >= 0.71 and rules_part.recall("found") >= 0.75
    assert rules_part.precision("lost") >= 0.99 and rules_part.precision("found") >= 0.99
    assert rules_part.accuracy("city") >= 0.98, rules_part.misses


@pytest.mark.shared
def test_rules_part_against_its_readers(rules_part: Report) -> None:
    # The rules were written on this part: these are fitted scores, not a measurement.
    assert rules_part.counted["side"] == 447
    assert rules_part.accuracy("side") >= 0.96, rules_part.misses
    assert rules_part.share_unknown() <= 0.03
    assert rules_part.side_recall("lost") >= 0.97 and rules_part.side_recall("found") >= 0.92
    assert rules_part.accuracy("species") >= 0.98


@pytest.mark.shared
def test_measure_part_blind(measure_part: Report) -> None:
    # Only the numbers: an assertion on the report itself would print the measure part's
    # misses, which are never read.
    scores = {
        "n": measure_part.n,
        "other": measure_part.share_other(),
        "swapped": measure_part.share_swapped(),
        "side": measure_part.accuracy("side"),
        "unknown": measure_part.share_unknown(),
        "lost": measure_part.side_recall("lost"),
        "found": measure_part.side_recall("found"),
        "species": measure_part.accuracy("species"),
        "city": measure_part.accuracy("city"),
    }
    assert scores["n"] == 305
    assert scores["other"] <= 0.01
    assert scores["swapped"] <= 0.03
    # Lowered after the review's false-positive fixes (0.783 → 0.775, lost 0.839 → 0.828):
    # a name or an owner's cue no longer outvotes an adoption post, nor sides a card alone.
    assert scores["side"] >= 0.774
    assert scores["unknown"] <= 0.19
    assert scores["lost"] >= 0.827
    assert scores["found"] >= 0.62
    assert scores["species"] >= 0.93
    assert scores["city"] >= 0.99


# Posts quoted in issue 12 that came out `other` before (from the 1,506 posts it measured).
ISSUE_LOST = [
    "Ночью ушла из дома на улице Станционной и не вернулась кошечка-подросток",
    "Ушел ночью гулять. Очень подвижный, ловкий. Умеет открывать дверь",
    "Отстегнулся ошейник, побежала за другой собакой",
    "Лилит вылетела в балкон вместе со второй птичкой",
]
ISSUE_FOUND = [
    "подбежала на улице, на ней был строгий ошейник",
    "бегал вдоль дороги под дождём, с людьми контактен",
    "несколько дней бегает собака, рыжего цвета",
    "Прибежал за прохожими на минус первый этаж",
    "Появился недавно. Пол не знаю, дал погладиться",
    "Явно домашняя кошка, очень напугана",
]


@pytest.mark.parametrize(("text", "kind"), [(t, "lost") for t in ISSUE_LOST]
                         + [(t, "found") for t in ISSUE_FOUND])
def test_issue_examples_are_sided(text: str, kind: str) -> None:
    label = classify_post(text)
    assert label.kind == PostKind(kind), label.evidence_for("kind")
    assert all(e.snippet for e in label.evidence_for("kind"))


@pytest.mark.parametrize(("word", "species"), [
    ("ягдтерьер", "dog"), ("шпиц", "dog"), ("йорк", "dog"), ("шарпей", "dog"), ("лайка", "dog"),
    ("спаниель", "dog"), ("бурма", "cat"), ("сфинкс", "cat"), ("саванна", "cat"),
    ("мейкун", "cat"), ("хорёк", "other"), ("кролик", "other"), ("попугай", "other"),
])
def test_breeds_name_the_species(word: str, species: str) -> None:
    assert classify_post(f"Потерялся {word}, Москва").species.value == species


@pytest.mark.parametrize(("text", "species"), [
    ("Серая, громко мяукает, белая грудка", "cat"),
    ("Рыжий, лает на чужих, сорвался с поводка", "dog"),
    ("Вылетел из клетки, перышки зелёные", "other"),
    ("Пропал британец, золотая шиншилла", "cat"),
    ("Очень разговорчивый, на хвосте кисточка", "cat"),
    ("Окрас чепрачный, уши висячие", "dog"),
    ("Тявкает, ходит на поводке", "dog"),
    ("Персидский колор пойнт", "cat"),
    ("Рыжий, шерсть на лбу в виде буквы М", "cat"),
    ("Серо-бежевый, 13 лет, 15 кг", "dog"),
    ("Крупный, 20кг", "dog"),
])
def test_implied_species(text: str, species: str) -> None:
    label = classify_post(text)
    assert label.species.value == species
    assert label.evidence_for("species")


@pytest.mark.parametrize(("text", "species"), [
    ("Рыжий, лает на кошек", "dog"),
    ("Кошка, боится собак", "cat"),
    ("Серый кот, ладит с собаками", "cat"),
    ("Боится людей. Собака рыжая", "dog"),
    ("Отстегнулся ошейник, побежала за другой собакой", "dog"),
])
def test_an_animal_it_fears_or_chases_is_not_the_one_described(text: str, species: str) -> None:
    assert classify_post(text).species.value == species


@pytest.mark.parametrize(("text", "kind"), [
    ("Крутится у подъезда рыжий кот", "found"),
    ("Увязалась за нами собака", "found"),
    ("Собака найдена, ищем хозяина", "found"),
    ("Рыжий кот, сидит у подъезда. Если хозяева не объявятся, будем пристраивать", "found"),
    ("Кот, кастрирован, чипирован, кончик хвоста белый", "lost"),
    ("Кот не выходил на улицу ни разу, пугливый", "lost"),
])
def test_second_pass_voices(text: str, kind: str) -> None:
    label = classify_post(text)
    assert label.kind == PostKind(kind), label.evidence_for("kind")


def test_a_cat_weight_implies_nothing() -> None:
    assert classify_post("Большой, весит 7 кг, боится всего").species.value == "unknown"
    assert classify_post("Мэй Кун, вес 11 кг").species.value == "cat"


def test_an_owner_telling_a_habit_is_not_a_finder_waiting() -> None:
    label = classify_post("Сам ходит гулять через окно и ждёт хозяина под дверью")
    assert "found.wait_owner" not in {e.rule for e in label.evidence_for("kind")}
    assert label.kind is not PostKind.FOUND


def test_a_description_without_a_side_is_unknown_not_other() -> None:
    label = classify_post("улица Некрасова, 18, Реутов. Серая ласковая девочка, в ошейнике")
    assert label.kind is PostKind.UNKNOWN
    assert classify_post("Всем привет, хорошего дня").kind is PostKind.OTHER


# Third pass: classes of cues, each example written here (not taken from the cards).
@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("Кот выкрутился из шлейки у подъезда", "lost"),
        ("Собака отвязалась у магазина", "lost"),
        ("Выскочил из переноски возле ветклиники", "lost"),
        ("Кошка выбежала, когда курьеру открыли дверь", "lost"),
        ("Убежала во время грозы, рыжая", "lost"),
        ("Кот 2015 года рождения, квартирный", "lost"),
        ("Дети плачут, очень ждём домой", "lost"),
        ("Щедро отблагодарим за любую информацию", "lost"),
        ("Увидите — придержите, пожалуйста, и позвоните", "lost"),
        ("Может кто-то приютил, очень ждём", "lost"),
        ("Может прятаться в подвалах, на кличку не отзывается", "lost"),
        ("Кот убижал из дома", "lost"),
        ("Пока живёт у нас на балконе, долго держать не можем", "found"),
        ("Ночует в подъезде, соседи подкармливают", "found"),
        ("Породу не знаем, возраст неизвестен", "found"),
        ("Кажется, девочка, судя по всему домашняя", "found"),
        ("Ваша собака? Хозяева, позвоните", "found"),
        ("Помогите найти хозяев! Собака сидит у магазина", "found"),
        ("Пришла к нам на дачу, ходит за людьми", "found"),
        ("Кто-нибудь узнаёт кота?", "found"),
        ("Падобрали котенка у школы", "found"),
    ],
)
def test_third_pass_classes(text: str, kind: str) -> None:
    label = classify_post(text)
    assert label.kind == PostKind(kind), label.evidence_for("kind")


@pytest.mark.parametrize(
    "text",
    [
        "Тишка, рыжий, 5 лет",
        "Рыжий кот Тишка, 5 лет",
        "Рыжий, 5 лет, откликается на имя Тишка",
        "Убежал наш Тишка, рыжий",
    ],
)
def test_a_given_name_is_an_owner_cue(text: str) -> None:
    named = classify_post(text).evidence_for("kind")
    assert any(e.rule == "lost.pet_name" and e.snippet == "Тишка" for e in named), named


# A place, a contact, a field name, and the finder signing off (written here).
@pytest.mark.parametrize(
    "text",
    [
        "Бегает у Битцы, рыжий",
        "Звонить Ольге, рыжий кот",
        "Пол: мальчик",
        "Рыжий, 5 лет. Тишка",
        "Кошка у подъезда, бегала возле Пятёрочки. Ирина.",
        "Собака на остановке, ищем хозяев. Наталья.",
        "Рыжий кот сидит у магазина. Светлана ждёт звонка",
        "Подобрали щенка у школы. Тимур.",
        "Серый кот у третьего подъезда. Марина, пишите в лс",
    ],
)
def test_a_place_contact_or_signature_is_not_the_pets_name(text: str) -> None:
    rules = {e.rule for e in classify_post(text).evidence_for("kind")}
    assert "lost.pet_name" not in rules, text


@pytest.mark.parametrize(
    ("text", "species"),
    [
        ("Пропал бедлингтон-терьер", "dog"),
        ("Метис шарпея, рыжая", "dog"),
        ("Нашли акиту у метро", "dog"),
        ("Кабель, чёрный", "dog"),
        ("Порода манчкин, коротколапый", "cat"),
        ("Норвежская лесная, пушистая", "cat"),
        ("Улетел жако, говорит", "other"),
        ("Соколиная гора, ласковая", "unknown"),
        ("Девонька, очень ласковая", "unknown"),
    ],
)
def test_breeds_of_general_knowledge(text: str, species: str) -> None:
    assert classify_post(text).species.value == species
