"""Places: the shipped city table, aliases, districts and settlements, and the look-up that
finds them in a tokenised post.

A mention is accepted only when its context allows it: a street marker before it
("улица Королёва", "ТЦ Москва", "ст. Пугачево") or a house number after it ("Чапаева 6")
rules it out, and names that are also ordinary words or surnames (Белый, Орёл, Чехов)
need a "г."/"город" or a preposition before them.
"""

from __future__ import annotations

import csv
import json
import math
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

from text import _morph
from text._normalize import Token, fold


def _words(spaced: str) -> frozenset[str]:
    return frozenset(spaced.split())

_DATA = resources.files("text") / "data"

# Lemmas of words that make the next name a street, a shop, a station or a house: not a city.
_STREET_BEFORE = _words(
    "ул улица пр прт проспект пер переулок ш шоссе б бульвар бр пл площадь наб набережная "
    "проезд тупик аллея мкр микрорайон тц трц тк кт кинотеатр магазин ст станция метро м "
    "жк снт днт кп парк гостиница отель рынок остановка им имени дк кафе ресторан клуб "
    "школа гимназия стадион санаторий д дом деревня дер спорткомплекс фитнес"
)
_STREET_AFTER = _words(
    "ул улица проспект пр шоссе ш переулок пер бульвар проезд наб набережная тупик"
)
_STRICT = _words("г гор город гп пгт")
_SOFT = _STRICT | _words("в во из под около возле близ район окрестность пригород")
_ABBREVIATIONS = _words("ул пр прт д ст м пл наб пер мкр ш б бр г гор им пос п с дер тц р обл")
_RAYON = frozenset(("район", "р", "рн", "районе", "района"))


@dataclass(frozen=True, slots=True)
class City:
    """One row of `data/cities.csv`."""

    name: str
    region: str
    lat: float
    lon: float
    population: int


@dataclass(frozen=True, slots=True)
class _Entry:
    words: tuple[frozenset[str], ...]  # accepted forms of each word after the first
    kind: str  # city | alias | district | settlement
    name: str  # canonical city name, or the district/settlement name
    city: str | None  # for districts and settlements: the city they belong to
    region: str | None
    strictness: str  # geo | surname | common
    needs_rayon: bool = False
    okrug: str | None = None


@dataclass(frozen=True, slots=True)
class Mention:
    """A place found in the text."""

    kind: str
    name: str
    city: str | None
    region: str | None
    strength: float
    start: int  # token index
    end: int
    okrug: str | None = None


def _split(name: str) -> list[str]:
    return [w for w in fold(name).replace("-", " ").replace(".", " ").split() if w]


@lru_cache(maxsize=1)
def cities() -> dict[str, tuple[City, ...]]:
    """Every city by folded name, most populous first."""
    table: dict[str, list[City]] = {}
    with (_DATA / "cities.csv").open(encoding="utf-8") as fh:
        rows = csv.DictReader(line for line in fh if not line.startswith("#"))
        for row in rows:
            city = City(
                row["name"], row["region"], float(row["lat"]), float(row["lon"]),
                int(row["population"]),
            )
            table.setdefault(fold(city.name), []).append(city)
    return {k: tuple(sorted(v, key=lambda c: -c.population)) for k, v in table.items()}


@lru_cache(maxsize=1)
def aliases() -> dict[str, str]:
    """Folded alias (words joined by spaces) → canonical city name."""
    raw = json.loads((_DATA / "aliases.json").read_text(encoding="utf-8"))
    return {k: v for k, v in raw.items() if not k.startswith("_")}


@lru_cache(maxsize=1)
def _districts_raw() -> dict:
    return json.loads((_DATA / "districts.json").read_text(encoding="utf-8"))


@lru_cache(maxsize=1)
def moscow_okrugs() -> dict[str, str]:
    """Folded okrug code (цао, юзао, …) → its code as written (ЦАО, ЮЗАО, …)."""
    return {fold(code): code for code in _districts_raw()["moscow_okrugs"]}


def _strictness(words: list[str]) -> str:
    """How much context a name needs: `geo` none, `surname` a preposition, `common` "г."."""
    tags = [("geo" if _morph.is_geo(w) else "surname" if _morph.is_surname(w) else "common")
            for w in words]
    if "geo" in tags:
        return "geo"
    # Two ordinary words in a row (Лосино-Петровский, Сосновый Бор) are rarely not the city.
    return "surname" if "surname" in tags or len(words) > 1 else "common"


def _word_forms(word: str) -> frozenset[str]:
    """The forms a place name is indexed under: only its place-name readings when it has any,
    so "Любим" is not indexed under "любить" (pet911 2025: "любит играть" read as Любим)."""
    return _morph.geo_forms(word)


@lru_cache(maxsize=1)
def _index() -> dict[str, tuple[_Entry, ...]]:
    index: dict[str, list[_Entry]] = {}

    def add(words: list[str], entry_args: dict) -> None:
        rest = tuple(_word_forms(w) | {w} for w in words[1:])
        entry = _Entry(words=rest, **entry_args)
        for form in _word_forms(words[0]) | {words[0]}:
            index.setdefault(form, []).append(entry)

    for key, group in cities().items():
        city = group[0]
        words = _split(key)
        strictness = _strictness(words)
        if strictness == "common" and city.population >= 100_000:
            # Курган, Орёл, Шахты, Находка: big enough that "в Кургане" means the city.
            strictness = "surname"
        add(words, {"kind": "city", "name": city.name, "city": city.name, "region": None,
                    "strictness": strictness})
    for key, target in aliases().items():
        # Aliases are exact: index only the literal words, not their inflections' neighbours.
        words = _split(key)
        add(words, {"kind": "alias", "name": target, "city": target, "region": None,
                    "strictness": "geo"})
    raw = _districts_raw()
    for row in raw["districts"]:
        words = _split(row["name"])
        add(words, {"kind": "district", "name": row["name"], "city": row["city"],
                    "region": None, "strictness": "geo", "needs_rayon": row["needs_rayon"],
                    "okrug": row["okrug"]})
    for row in raw["settlements"]:
        words = _split(row["name"])
        add(words, {"kind": "settlement", "name": row["name"], "city": row["city"],
                    "region": row["region"], "strictness": "geo"})
    # A form several places share goes first to the place whose own name it is: pymorphy3
    # reads "Орлов" also as "орлов" (eagles'), so "орел" listed Орлов (5 thousand people)
    # before Орёл (300 thousand) and "в Орле" resolved to the small town.
    return {
        k: tuple(sorted(v, key=lambda e, k=k: not (e.words == () and _split(e.name) == [k])))
        for k, v in index.items()
    }


def _lem(tokens: list[Token], i: int) -> str:
    if 0 <= i < len(tokens):
        return _morph.lemma(tokens[i].text)
    return ""


def _joined_before(tokens: list[Token], i: int, text: str) -> bool:
    """Whether token i-1 reads as part of the same phrase: only spaces between them, or the
    dot of an abbreviation ("ул. Королёва", "г. Омск"), not a comma or a sentence end."""
    if i == 0:
        return False
    gap = text[tokens[i - 1].end : tokens[i].start]
    if not gap.strip():
        return True
    return gap.strip() == "." and tokens[i - 1].text in _ABBREVIATIONS


def _joined_after(tokens: list[Token], i: int, text: str) -> bool:
    return i < len(tokens) and not text[tokens[i - 1].end : tokens[i].start].strip()


def _context_strength(
    tokens: list[Token], start: int, end: int, text: str, entry: _Entry
) -> float:
    """0 when the context rules the mention out; otherwise how sure the context makes it."""
    before = _lem(tokens, start - 1) if _joined_before(tokens, start, text) else ""
    before2 = _lem(tokens, start - 2)
    after = _lem(tokens, end) if _joined_after(tokens, end, text) else ""
    if before in _STREET_BEFORE or (before2 in _STREET_BEFORE and before in {"им", "имени"}):
        return 0.0
    if start > 0 and text[tokens[start].start - 1 : tokens[start].start] in {"«", '"', "“"}:
        return 0.0
    if entry.needs_rayon:
        return 1.5 if before in _RAYON or after in _RAYON else 0.0
    if entry.kind == "alias":
        return 2.0 if before in _STRICT else 1.5
    if after in _STREET_AFTER:
        return 0.0
    if after in _RAYON:
        # "в Ногинском районе": the district around the city, not the city itself.
        return 0.5
    if before in _STRICT:
        return 2.0
    line_end = end == len(tokens) or tokens[end].segment != tokens[end - 1].segment
    if entry.strictness == "common":
        # A capitalised name closing a line, as in a card title "Пропала собака Осинники".
        return 0.8 if line_end and text[tokens[start].start].isupper() else 0.0
    numeric_after = end < len(tokens) and tokens[end].text.isdigit()
    if entry.strictness == "surname":
        if numeric_after:
            return 0.0
        return 1.5 if before in _SOFT else (1.0 if line_end else 0.0)
    if numeric_after and entry.kind == "city":
        return 0.8
    return 1.5 if before in _SOFT else 1.0


def _rayon_city(tokens: list[Token], i: int) -> City | None:
    """The centre of an "Xский район" ("Солнечногорский район" → Солнечногорск)."""
    if _lem(tokens, i + 1) not in _RAYON:
        return None
    adjective = _lem(tokens, i)
    if not adjective.endswith("ский"):
        return None
    for stem in (adjective[:-3], adjective[:-3] + "ь", adjective[:-2]):
        group = cities().get(stem)
        if group:
            return group[0]
    return None


def _lower_function_word(token: Token, text: str) -> bool:
    return text[token.start].islower() and _morph.reads_as_function_word(token.text)


def find_places(tokens: list[Token], text: str) -> list[Mention]:
    """Every accepted place mention, longest match first at each position.

    `text` is the original post (same offsets as the tokens): capitals and quotes matter.
    """
    index = _index()
    okrugs = moscow_okrugs()
    mentions: list[Mention] = []
    i = 0
    while i < len(tokens):
        tok = tokens[i].text
        if tok in okrugs:
            mentions.append(Mention("okrug", okrugs[tok], "Москва", "Москва", 1.5, i, i + 1,
                                    okrugs[tok]))
            i += 1
            continue
        best: tuple[int, float, _Entry] | None = None
        # A lower-case pronoun or verb is never a place name (pet911 2025: "у неё" read as
        # Нея, "мы её любим" as Любим).
        forms = () if _lower_function_word(tokens[i], text) else _morph.forms(tok)
        for form in forms:
            for entry in index.get(form, ()):
                n = len(entry.words)
                if i + 1 + n > len(tokens):
                    continue
                if any(not (_morph.forms(tokens[i + 1 + j].text) & entry.words[j])
                       for j in range(n)):
                    continue
                strength = _context_strength(tokens, i, i + 1 + n, text, entry)
                if strength <= 0:
                    continue
                rank = (n, strength, entry)
                if best is None or (n, strength) > (best[0], best[1]):
                    best = rank
        if best is None:
            rayon = _rayon_city(tokens, i)
            if rayon is not None:
                mentions.append(
                    Mention("city", rayon.name, rayon.name, rayon.region, 0.5, i, i + 1)
                )
            i += 1
            continue
        n, strength, entry = best
        mentions.append(Mention(entry.kind, entry.name, entry.city, entry.region, strength,
                                i, i + 1 + n, entry.okrug))
        i += 1 + n
    return mentions


def resolve_city(name: str, prefer_region: str | None = None) -> City | None:
    """The table row for a canonical name or alias; on a tie of names, `prefer_region` wins."""
    key = fold(name).strip()
    key = fold(aliases().get(" ".join(_split(key)), name))
    group = cities().get(key)
    if not group:
        return None
    if prefer_region:
        for city in group:
            if city.region == prefer_region:
                return city
    return group[0]


def city_coordinates(name: str) -> tuple[float, float] | None:
    """(lat, lon) of a city by canonical name or alias; None when unknown."""
    city = resolve_city(name)
    return (city.lat, city.lon) if city else None


def distance_km(city_a: str, city_b: str) -> float | None:
    """Great-circle distance between two cities in km; None when either is unknown."""
    a = city_coordinates(city_a)
    b = city_coordinates(city_b)
    if a is None or b is None:
        return None
    return haversine_km(a, b)


def haversine_km(a: tuple[float, float], b: tuple[float, float]) -> float:
    """Great-circle distance between two (lat, lon) points on a 6371 km sphere."""
    lat1, lon1, lat2, lon2 = map(math.radians, (*a, *b))
    h = (math.sin((lat2 - lat1) / 2) ** 2
         + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2)
    return 2 * 6371.0088 * math.asin(math.sqrt(min(1.0, h)))
