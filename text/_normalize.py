"""Text normalisation and tokenisation shared by every rule.

Posts are noisy: capitals, ё/е, stretched letters ("пропалааа"), Latin look-alikes inside
Cyrillic words, emoji, hashtags glued into one word and reposted headers. Everything below
works on a normalised copy; snippets in the evidence come from that copy too.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_LATIN_TO_CYR = str.maketrans("aceopxyk", "асеорхук")
_WORD = re.compile(r"[а-яa-z0-9]+")
_STRETCH = re.compile(r"([а-я])\1{2,}")
_HASHTAG = re.compile(r"#([а-яa-z0-9_]+)")
_BREAK = re.compile(r"[.!?;\n|…]+")
_MIXED = re.compile(r"[а-я][a-z]|[a-z][а-я]")

# Hashtags glue words together (#пропалкот, #потерялсякотенок, #нашликота); split them on
# the words that matter so the same rules can read them.
_HASHTAG_WORDS = (
    "пропал", "пропала", "пропали", "потерялся", "потерялась", "потерялись", "потеряшка",
    "найден", "найдена", "найдены", "нашли", "нашел", "нашла", "нашлась", "нашелся", "ищу",
    "ищем", "помогите", "найти", "хозяин", "хозяина", "хозяев", "отдам", "пристрой",
    "кот", "кота", "котенок", "котенка", "кошка", "кошку", "собака", "собаку", "собаки",
    "пес", "щенок", "сфинкс", "сфинксы", "найдись", "дома", "в", "добрые", "руки",
)
_HASHTAG_SPLIT = re.compile("(" + "|".join(sorted(_HASHTAG_WORDS, key=len, reverse=True)) + ")")


def fold(text: str) -> str:
    """Lower-case, ё→е: the form every lookup key uses."""
    return text.lower().replace("ё", "е")


def _fix_token(match: re.Match[str]) -> str:
    word = match.group(0)
    if _MIXED.search(word):
        word = word.translate(_LATIN_TO_CYR)
    return word


def normalize(text: str) -> str:
    """Fold case and ё and Latin look-alikes; the result has the same length as `text`, so
    offsets into it are offsets into the original (stretched letters are undone per token)."""
    folded = fold(text)
    if len(folded) != len(text):
        folded = "".join(c if len(c.lower()) != 1 else fold(c) for c in text)
    if _MIXED.search(folded) is None:
        return folded
    return _WORD.sub(_fix_token, folded)


def split_hashtags(text: str) -> tuple[str, str]:
    """Return (text without hashtags, the hashtags as space-separated words)."""
    tags: list[str] = []

    def _take(match: re.Match[str]) -> str:
        body = match.group(1).replace("_", " ")
        tags.append(" ".join(w for w in _HASHTAG_SPLIT.split(body) if w.strip()))
        return " " * len(match.group(0))  # keep offsets aligned with the original

    body = _HASHTAG.sub(_take, text)
    return body, " | ".join(tags)


@dataclass(frozen=True, slots=True)
class Token:
    """One word of the normalised text and where it is."""

    text: str
    start: int
    end: int
    segment: int  # index of the sentence/line it belongs to


def tokenize(text: str) -> list[Token]:
    """Words of an already normalised text, each tagged with its sentence number."""
    tokens: list[Token] = []
    breaks = [m.start() for m in _BREAK.finditer(text)]
    breaks.append(len(text) + 1)
    stretched = _STRETCH.search(text) is not None
    segment = 0
    next_break = 0
    for match in _WORD.finditer(text):
        start = match.start()
        if breaks[next_break] < start:
            segment += 1 if tokens else 0
            while breaks[next_break] < start:
                next_break += 1
        word = match.group(0)
        if stretched and len(word) > 2:
            word = _STRETCH.sub(r"\1", word)
        tokens.append(Token(word, start, match.end(), segment))
    return tokens
