"""Property tests: the kind and species of a post ignore case, ё/е and punctuation."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.text.devset import written_rows
from text import classify_post

TEXTS = [row["text"] for row in written_rows()] + [
    "Пропала собака! Помогите найти, вознаграждение",
    "Найдена кошка у подъезда, ищем хозяев",
    "Котёнок нашёлся, уже дома, спасибо всем",
]


def _key(text: str) -> tuple[str, str]:
    label = classify_post(text)
    return label.kind.value, label.species.value


def _recase(text: str, flips: list[bool]) -> str:
    return "".join(c.swapcase() if flips[i % len(flips)] else c for i, c in enumerate(text))


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(TEXTS), st.lists(st.booleans(), min_size=1, max_size=7))
def test_case_does_not_matter(text: str, flips: list[bool]) -> None:
    assert _key(_recase(text, flips)) == _key(text)


@settings(max_examples=30, deadline=None)
@given(st.sampled_from(TEXTS))
def test_yo_and_ye_are_the_same(text: str) -> None:
    assert _key(text.replace("ё", "е").replace("Ё", "Е")) == _key(text)
    assert _key(text.replace("е", "ё")) == _key(text.replace("ё", "е")) or "е" not in text


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(TEXTS), st.sampled_from(["!", "!!!", "...", ",", " ", "?!", "❗"]))
def test_punctuation_does_not_matter(text: str, mark: str) -> None:
    # Repeating or swapping sentence punctuation, and emoji, leave the label alone.
    noisy = re.sub(r"[!.?]+", mark if mark.strip(" ,") else "!", text)
    noisy = re.sub(r",", mark if mark in {",", " "} else ",", noisy)
    assert _key(noisy) == _key(text)
