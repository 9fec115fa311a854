"""Small extractors: phone numbers, sex, colours and the date of the event."""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta

from text._models import PetSex


def _words(spaced: str) -> frozenset[str]:
    return frozenset(spaced.split())


def _words_list(spaced: str) -> list[str]:
    return spaced.split()

# A run of digits and separators; `_phone_digits` keeps it when it is a Russian number:
# +7/8/7 then 10 digits, or a bare 10-digit 9xx mobile ("+7 (903) 22-87-222",
# "8-926-123-45-67", "89261234567").
_PHONE = re.compile(r"(?<![\w+])\+?\d[\d\s\-()]{8,20}\d(?!\w)")


def _phone_digits(raw: str) -> str | None:
    digits = re.sub(r"\D", "", raw)
    if len(digits) == 11 and digits[0] in "78":
        return "+7" + digits[1:]
    if len(digits) == 10 and digits[0] in "9":
        return "+7" + digits
    return None


def find_phones(text: str) -> tuple[str, ...]:
    """Russian phone numbers in the text, normalised to +7XXXXXXXXXX, in order, unique."""
    seen: dict[str, None] = {}
    for match in _PHONE.finditer(text):
        number = _phone_digits(match.group(0))
        if number:
            seen.setdefault(number, None)
    return tuple(seen)


def mask_phones(text: str, mask: str = "<телефон>") -> str:
    """The text with every phone number replaced by `mask`."""

    def _sub(match: re.Match[str]) -> str:
        raw = match.group(0)
        return mask if _phone_digits(raw) else raw

    return _PHONE.sub(_sub, text)


_MALE = _words("мальчик мальчика мальчишка кобель кобеля кобелек самец кастрат кастрирован "
                  "кастрированный кастрированного")
_FEMALE = _words("девочка девочку девочки девчонка сука суку сучка самка стерилизована "
                    "стерилизованная стерилизованную кошечка кошечку")


def find_sex(words: list[str]) -> tuple[PetSex, str | None]:
    """Male/female from explicit words (мальчик, кобель, девочка, стерилизована…)."""
    male = [w for w in words if w in _MALE]
    female = [w for w in words if w in _FEMALE]
    if len(male) > len(female):
        return PetSex.MALE, male[0]
    if len(female) > len(male):
        return PetSex.FEMALE, female[0]
    return PetSex.UNKNOWN, None


_COLOURS = {
    "черный": "черный", "черно": "черный", "белый": "белый", "бело": "белый",
    "рыжий": "рыжий", "рыже": "рыжий", "серый": "серый", "серо": "серый",
    "коричневый": "коричневый", "коричнево": "коричневый", "бежевый": "бежевый",
    "палевый": "палевый", "тигровый": "тигровый", "трехцветный": "трехцветный",
    "черепаховый": "черепаховый", "полосатый": "полосатый", "пятнистый": "пятнистый",
    "голубой": "голубой", "кремовый": "кремовый", "абрикосовый": "абрикосовый",
    "персиковый": "персиковый", "золотистый": "золотистый", "песочный": "песочный",
    "чепрачный": "чепрачный", "дымчатый": "дымчатый", "шоколадный": "шоколадный",
    "мраморный": "мраморный", "пегий": "пегий", "серебристый": "серебристый",
    "биколор": "биколор", "триколор": "трехцветный", "рыжик": "рыжий",
}


def find_colours(lemmas: list[str]) -> tuple[str, ...]:
    """Colour words (canonical masculine lemma), in order of first mention."""
    seen: dict[str, None] = {}
    for lemma in lemmas:
        colour = _COLOURS.get(lemma)
        if colour:
            seen.setdefault(colour, None)
    return tuple(seen)


_MONTHS = {m: i for i, m in enumerate(
    _words_list("январ феврал март апрел ма июн июл август сентябр октябр ноябр декабр"), start=1)}
_MONTH_RE = (r"(январ[яь]|феврал[яь]|марта?|апрел[яь]|ма[яй]|июн[яь]|июл[яь]|августа?|"
             r"сентябр[яь]|октябр[яь]|ноябр[яь]|декабр[яь])")
_NUMERIC = re.compile(r"(?<![\d.,:])(\d{1,2})[.,/]\s?(\d{1,2})[.,/]\s?(\d{4}|\d{2})(?![\d:])")
_DAY_MONTH = re.compile(r"(?<![\d.,:])(?<!в )(\d{1,2})\.(\d{1,2})(?![\d.,:])")
_WORDS = re.compile(rf"(?<!\d)(\d{{1,2}})(?:-?(?:го|ое|е))?\s+{_MONTH_RE}(?:\s+(\d{{4}}))?")
_RELATIVE = re.compile(r"\b(позавчера|вчера|сегодня|этой ночью)\b")
_WEEKDAY = re.compile(r"\bв (понедельник|вторник|среду|четверг|пятницу|субботу|воскресенье)\b")
_WEEKDAYS = ("понедельник", "вторник", "среду", "четверг", "пятницу", "субботу", "воскресенье")


def _month(word: str) -> int:
    for stem, number in _MONTHS.items():
        if word.startswith(stem):
            return number
    return 0


def _make(year: int | None, month: int, day: int, now: datetime | None) -> date | None:
    if year is None:
        if now is None:
            return None
        year = now.year
        try:
            candidate = date(year, month, day)
        except ValueError:
            return None
        return candidate if candidate <= now.date() else date(year - 1, month, day)
    if year < 100:
        year += 2000
    try:
        return date(year, month, day)
    except ValueError:
        return None


def find_date(norm: str, now: datetime | None) -> tuple[date | None, str | None]:
    """The first date the post states (26.11.2020, 8го октября, вчера, в субботу), or None.

    Dates without a year and relative ones need `now`; dates after `now` are ignored.
    """
    found: list[tuple[int, date, str]] = []
    for match in _NUMERIC.finditer(norm):
        d = _make(int(match.group(3)), int(match.group(2)), int(match.group(1)), now)
        if d:
            found.append((match.start(), d, match.group(0)))
    for match in _WORDS.finditer(norm):
        year = int(match.group(3)) if match.group(3) else None
        d = _make(year, _month(match.group(2)), int(match.group(1)), now)
        if d:
            found.append((match.start(), d, match.group(0)))
    if not found:
        for match in _DAY_MONTH.finditer(norm):
            d = _make(None, int(match.group(2)), int(match.group(1)), now)
            if d:
                found.append((match.start(), d, match.group(0)))
    if now is not None:
        for match in _RELATIVE.finditer(norm):
            back = {"позавчера": 2, "вчера": 1}.get(match.group(1), 0)
            found.append((match.start(), now.date() - timedelta(days=back), match.group(0)))
        for match in _WEEKDAY.finditer(norm):
            wanted = _WEEKDAYS.index(match.group(1))
            back = (now.weekday() - wanted) % 7 or 7
            found.append((match.start(), now.date() - timedelta(days=back), match.group(0)))
        found = [f for f in found if f[1] <= now.date()]
    if not found:
        return None, None
    _, d, snippet = min(found, key=lambda f: f[0])
    return d, snippet
