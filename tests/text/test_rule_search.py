"""`Rule.search` (guards checked after a fast scan) finds exactly what `pattern.search` finds."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.text.devset import written_rows
from text import _morph
from text._classify import _View
from text._normalize import normalize, split_hashtags, tokenize
from text._rules import KIND_RULES

# Words the rules look for, their negations and neighbours, and sentence breaks.
_WORDS = ("не пропасть убежать видимо видно что потеряться найти пропажа обнаружить с быть на "
         "передержка хозяин найтись_imp около 5 лет 1 год мес кто если нашли нашел весит "
         "адресник без в ошейник наш кот дома уже | мочь быть_inf помочь_imp найти_inf")
WORDS = _WORDS.split()


def _views(text: str) -> dict[str, str]:
    body, _ = split_hashtags(normalize(text))
    tokens = tokenize(body)
    return {"lemma": _View.build([_morph.lemma(t.text) for t in tokens], tokens).string,
            "surface": _View.build([t.text for t in tokens], tokens).string}


def _same(string: str, view: str) -> None:
    for rule in KIND_RULES:
        if rule.view != view:
            continue
        slow, fast = rule.pattern.search(string), rule.search(string)
        assert (slow and slow.span()) == (fast and fast.span()), (rule.name, string)


def test_written_posts() -> None:
    for row in written_rows():
        for view, string in _views(row["text"]).items():
            _same(string, view)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(WORDS), min_size=1, max_size=12))
def test_word_soup(words: list[str]) -> None:
    string = " ".join(words) + " "
    _same(string, "lemma")
    _same(string, "surface")
