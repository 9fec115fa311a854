"""Text contradictions on written pairs of posts (no real paired texts exist offline)."""

from __future__ import annotations

import pytest

from text import classify_post
from text.contradictions import attribute_contradictions

# (lost post, found post, expected contradiction fields). Written here, not real posts.
PAIRS = [
    (
        "Пропал кобель, чёрный, Москва, район Марьино",
        "Найдена девочка, чёрная, Москва, Марьино",
        {"sex"},
    ),
    (
        "Пропала кошка, рыжая, Казань",
        "Нашли кошку, серая, Казань",
        {"colour"},
    ),
    (
        "Пропал мальчик, белый пёс, Москва",
        "Найдена собака, рыжая, девочка, Москва",
        {"sex", "colour"},
    ),
    (  # a mixed coat is described differently by different people: no contradiction
        "Пропала трёхцветная кошка, Москва",
        "Нашли кошку, белая, Москва",
        set(),
    ),
    (  # several colours on one side: no contradiction
        "Пропал кот, чёрно-белый, Москва",
        "Найден белый кот в Москве",
        set(),
    ),
    (  # one side says nothing: no contradiction
        "Пропала собака в Москве, помогите",
        "Найдена девочка, рыжая, Москва",
        set(),
    ),
    (  # same facts in other words
        "Пропал кот, рыжий, мальчик, Москва",
        "Нашли рыжего кота, мальчик, Москва",
        set(),
    ),
]


@pytest.mark.parametrize(("lost", "found", "fields"), PAIRS)
def test_written_pairs(lost: str, found: str, fields: set[str]):
    reasons = attribute_contradictions(classify_post(lost), classify_post(found))
    named = {field for field in ("sex", "colour") if any(f"on {field}" in r for r in reasons)}
    assert named == fields, reasons


def test_contradiction_is_symmetric():
    a = classify_post("Пропал кобель, чёрный, Москва")
    b = classify_post("Найдена девочка, рыжая, Москва")
    assert len(attribute_contradictions(a, b)) == len(attribute_contradictions(b, a)) == 2
