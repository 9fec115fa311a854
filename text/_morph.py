"""pymorphy3 behind two cached look-ups: a token's lemma and all its normal forms.

Parsing is the expensive step; a post repeats words and posts repeat each other, so every
unique token is parsed once per process (functools.lru_cache).
"""

from __future__ import annotations

from functools import lru_cache

import pymorphy3

# Forms pymorphy3 ranks wrongly for our texts ("нашли" → imperative of "наслать") and common
# misspellings seen in pet posts.
_OVERRIDES = {
    "нашли": "найти",
    "нашла": "найти",
    "нашел": "найти",
    "нашол": "найти",
    "нашлась": "найтись",
    "нашелся": "найтись",
    "нашлись": "найтись",
    "нашолся": "найтись",
    "найдена": "найти",
    "найден": "найти",
    "найдены": "найти",
    "найдено": "найти",
    "найду": "найти_fut",  # "найдём хозяев", a pet named Найда: not "found"
    "найдем": "найти_fut",
    "найдет": "найти_fut",
    "найдут": "найти_fut",
    "найдется": "найтись_fut",  # "надеюсь найдется хозяин": a hope, not a closing update
    "найдутся": "найтись_fut",
    "придержите": "придержать_imp",  # pymorphy3 ranks the indicative first
    "верните": "вернуть_imp",
    "потерялася": "потеряться",
    "патерялась": "потеряться",
    "патерялся": "потеряться",
    "пропол": "пропасть",
    "прапала": "пропасть",
    "прапал": "пропасть",
    "сабака": "собака",
    "сабаку": "собака",
    "собачька": "собачка",
    "кошька": "кошка",
    "котенак": "котенок",
    "потеряшки": "потеряшка",
    "спб": "спб",
    "дома": "дома",  # keep the adverb "дома" (at home) apart from the noun "дом"
}


@lru_cache(maxsize=1)
def analyzer() -> pymorphy3.MorphAnalyzer:
    """The process-wide analyser (loading the dictionaries takes ~0.5 s)."""
    return pymorphy3.MorphAnalyzer()


def _fold(word: str) -> str:
    return word.replace("ё", "е")


@lru_cache(maxsize=200_000)
def lemma(token: str) -> str:
    """The token's lemma; infinitives get `_inf`, imperatives `_imp` and active participles
    `_prta` appended.

    The suffixes let rules tell "помогите найти" (a plea: lost) from "нашли" (found).
    """
    if token in _OVERRIDES:
        return _OVERRIDES[token]
    if token.isdigit() or len(token) < 2:
        return token
    parse = analyzer().parse(token)[0]
    base = _fold(parse.normal_form)
    tag = parse.tag
    if tag.POS == "INFN":
        return base + "_inf"
    if tag.mood == "impr":
        return base + "_imp"
    if tag.POS == "PRTF" and tag.voice == "actv":
        # "поиск пропавших животных" is about lost pets in general, not a loss.
        return base + "_prta"
    return base


@lru_cache(maxsize=200_000)
def forms(token: str) -> frozenset[str]:
    """Every normal form pymorphy3 offers for the token, plus the token itself."""
    if token.isdigit():
        return frozenset((token,))
    found = {token}
    if token in _OVERRIDES:
        found.add(_OVERRIDES[token])
    for parse in analyzer().parse(token):
        found.add(_fold(parse.normal_form))
    return frozenset(found)


def geo_forms(token: str) -> frozenset[str]:
    """The normal forms of the token's place-name parses (plus the token); every normal form
    when no parse is a place name."""
    parses = [p for p in analyzer().parse(token) if "Geox" in p.tag]
    if not parses:
        return forms(token)
    return frozenset({token, *(_fold(p.normal_form) for p in parses)})


_NOT_NAMES = frozenset({"NPRO", "VERB", "INFN", "GRND", "CONJ", "PREP", "PRCL", "INTJ"})


@lru_cache(maxsize=50_000)
def reads_as_function_word(token: str) -> bool:
    """Whether pymorphy3 reads the token as a pronoun, verb or other function word in any
    of its parses ("неё" is not Нея, "любим" is not Любим)."""
    parses = analyzer().parse(token)
    return parses[0].tag.POS in _NOT_NAMES or any(
        p.tag.POS in {"NPRO", "VERB"} for p in parses)


@lru_cache(maxsize=50_000)
def is_geo(token: str) -> bool:
    """Whether the token is a geographic name or no dictionary word at all (Йошкар, Ола)."""
    parse = analyzer().parse(token)[0]
    return "Geox" in parse.tag or not parse.is_known


@lru_cache(maxsize=50_000)
def is_surname(token: str) -> bool:
    """Whether pymorphy3's best parse is a surname/name (Королёв, Чехов, Пушкин)."""
    tag = analyzer().parse(token)[0].tag
    return "Surn" in tag or "Name" in tag or "Patr" in tag


_NOT_PET_NAMES = frozenset({"Geox", "Surn", "Patr", "Orgn", "Trad"})


@lru_cache(maxsize=50_000)
def reads_as_pet_name(token: str) -> bool:
    """Whether a capitalised token reads as a given name: pymorphy3's best parse is a first
    name, or it knows no such word and guesses a noun ("Барсик", "Тяма"); never when any
    parse makes it a place, surname, patronymic or organisation."""
    parses = analyzer().parse(token)
    if any(tag in p.tag for p in parses for tag in _NOT_PET_NAMES):
        return False
    top = parses[0]
    return "Name" in top.tag or (not top.is_known and top.tag.POS == "NOUN")
