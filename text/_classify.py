"""`classify_post`: one post's text in, a `PostLabel` out. Pure: no clock, no I/O after the
packaged tables are loaded once."""

from __future__ import annotations

import bisect
import logging
import re
from dataclasses import dataclass
from datetime import datetime

from text import _geo, _morph
from text._extract import find_colours, find_date, find_phones, find_sex
from text._models import CitySource, Evidence, PetSpecies, PostKind, PostLabel
from text._normalize import Token, normalize, split_hashtags, tokenize
from text._rules import (
    ANIMAL_WORDS,
    CONTACT_WORDS,
    IMPLIED_SPECIES,
    KIND_RULES,
    NAME_CUES,
    NOT_BEFORE_NAME,
    NOT_NAMES,
    NOT_THE_SUBJECT,
    PET_NAME,
    PET_WORDS,
    PLACE_ENDINGS,
    SPECIES_PAIRS,
    SPECIES_WORDS,
    STATEMENT_RULES,
    THING_RULE,
    Rule,
    stem_species,
)

logger = logging.getLogger("petmatch.text")

_KIND_THRESHOLD = 1.0  # below this score for every kind, a post is `other` (or `unknown`)
_SIDE_THRESHOLD = 1.5  # one weak cue (an age, "молодой", "ласковый") does not decide a side
_SIDE_MARGIN = 1.0  # a side must lead the opposite side by this much, else `unknown`
# A statement counts as one (`_decide_kind`) at its full weight: not a hashtag ("#пропала").
_STATEMENT_WEIGHT = 2.0
# Statements addressed to whoever found or lost something, which do not name it.
_ADDRESSING_RULES = frozenset({"lost.finder", "found.who_lost", "found.to_owner"})
_HEAD_BOOST = 1.5  # rules matching in the first sentence (the header) weigh more
# A post that opens with a short place line ("улица Некрасова, 18, Реутов. Пропала кошка!")
# has its header in the second sentence.
_PLACE_LINE_TOKENS = 8
_HASHTAG_FACTOR = 0.5  # hashtags are noisy: a lost post tags itself #найденсфинкс too
_SNIPPET_MAX = 80


@dataclass(frozen=True, slots=True)
class _View:
    """Words joined by spaces ("|" between sentences) and where each token starts in it."""

    string: str
    offsets: list[int]

    @classmethod
    def build(cls, words: list[str], tokens: list[Token]) -> _View:
        parts: list[str] = []
        offsets: list[int] = []
        pos = 0
        for i, (word, tok) in enumerate(zip(words, tokens, strict=True)):
            if i and tok.segment != tokens[i - 1].segment:
                parts.append("| ")
                pos += 2
            offsets.append(pos)
            parts.append(word + " ")
            pos += len(word) + 1
        return cls("".join(parts), offsets)

    def token_at(self, pos: int) -> int:
        return max(0, bisect.bisect_right(self.offsets, pos) - 1)


def _snippet(text: str, tokens: list[Token], first: int, last: int) -> str:
    if not tokens:
        return ""
    piece = text[tokens[first].start : tokens[last].end]
    return piece if len(piece) <= _SNIPPET_MAX else piece[: _SNIPPET_MAX - 1] + "…"


def _head_segments(tokens: list[Token]) -> int:
    """How many leading sentences form the header: one, or two after a short place line."""
    if not tokens:
        return 1
    first = sum(1 for t in tokens[:_PLACE_LINE_TOKENS + 1] if t.segment == 0)
    return 2 if first <= _PLACE_LINE_TOKENS else 1


def _run_rules(
    rules: tuple[Rule, ...],
    views: dict[str, _View],
    tokens: list[Token],
    text: str,
    factor: float,
    suffix: str,
) -> list[Evidence]:
    hits: list[Evidence] = []
    head = _head_segments(tokens)
    for rule in rules:
        view = views[rule.view]
        match = rule.search(view.string)
        if match is None:
            continue
        first = view.token_at(match.start())
        last = view.token_at(max(match.start(), match.end() - 2))
        weight = rule.weight * factor
        # Only explicit statements ("Пропала кошка!") gain from standing in the header.
        if tokens and tokens[first].segment < head and factor == 1.0 and rule.weight >= 2.0:
            weight *= _HEAD_BOOST
        hits.append(Evidence(field="kind", rule=rule.name + suffix, value=str(rule.value),
                             weight=round(weight, 3), snippet=_snippet(text, tokens, first, last)))
    return hits


def _pet_name(
    tokens: list[Token], lemmas: list[str], text: str, places: set[int]
) -> list[Evidence]:
    """The first capitalised word that reads as the pet's given name (see `PET_NAME`): not a
    place, not after a preposition or a contact word, not beside a phone number, not the
    second word of a capitalised pair ("Мусы Джалиля"); and tied to the animal (`_names_pet`).
    """
    head = _head_segments(tokens)
    for i, tok in enumerate(tokens):
        word = text[tok.start : tok.end]
        if (len(word) < 3 or not word[0].isupper() or not word[1:].islower()
                or not word.isalpha() or not _CYRILLIC.fullmatch(tok.text)):
            continue
        low = tok.text
        if (i in places or low in NOT_NAMES or low.endswith(PLACE_ENDINGS)
                or lemmas[i] in SPECIES_WORDS or low in SPECIES_WORDS
                or lemmas[i] in IMPLIED_SPECIES or lemmas[i] in ANIMAL_WORDS):
            continue
        if i and (tokens[i - 1].text in NOT_BEFORE_NAME or (
                text[tokens[i - 1].start].isupper() and tokens[i - 1].segment == tok.segment
                and lemmas[i - 1] not in SPECIES_WORDS)):
            continue
        near = tokens[max(0, i - 2) : i] + tokens[i + 1 : i + 3]
        if any(t.text == "телефон" or (t.text.isdigit() and len(t.text) >= 5) for t in near):
            continue
        if _names_pet(tokens, lemmas, i, head) and _morph.reads_as_pet_name(low):
            return [Evidence(field="kind", rule=PET_NAME[0], value=str(PostKind.LOST),
                             weight=PET_NAME[1], snippet=word)]
    return []


def _names_pet(tokens: list[Token], lemmas: list[str], i: int, head: int) -> bool:
    """Whether the name at `i` is the animal's, not the writer's: a finder signs off with
    their own name ("…у Пятёрочки. Ирина.", "Светлана ждёт звонка"). It must follow a naming
    word ("зовут", "кличка", "отзывается на имя"), or stand beside an animal word, a
    possessive or a pet word in its sentence, or open the post (its header); never when it
    ends the post or is its last sentence alone, nor with a contact word just after it."""
    segment = tokens[i].segment
    if any(lemmas[j] in NAME_CUES for j in range(max(0, i - 3), i)):
        return True
    alone = (i == 0 or tokens[i - 1].segment != segment) and (
        i + 1 == len(tokens) or tokens[i + 1].segment != segment)
    if i + 1 == len(tokens) or (alone and segment == tokens[-1].segment):
        return False
    after = [j for j in range(i + 1, min(len(tokens), i + 4)) if tokens[j].segment == segment]
    if any(lemmas[j] in CONTACT_WORDS or tokens[j].text in CONTACT_WORDS for j in after):
        return False
    beside = [j for j in range(max(0, i - 2), min(len(tokens), i + 3))
              if j != i and tokens[j].segment == segment]
    if any(lemmas[j] in SPECIES_WORDS or lemmas[j] in ANIMAL_WORDS or lemmas[j] in PET_WORDS
           for j in beside):
        return True
    opens = i == 0 or tokens[i - 1].segment != segment
    return opens and segment < head


_CYRILLIC = re.compile(r"[а-я]+")


def _decide_kind(hits: list[Evidence], describes_animal: bool) -> tuple[PostKind, float]:
    """The kind with the most weight. A post whose lost and found cues are absent, weak or
    close to each other is `unknown` when it describes an animal, else `other`."""
    scores = dict.fromkeys(PostKind, 0.0)
    for hit in hits:
        scores[PostKind(hit.value)] += hit.weight
    positive = sum(max(0.0, s) for s in scores.values())
    # An adoption, sale, fund-raising or advert post describes its animal as an owner would
    # (a name, a birthday, papers, "наш малыш", "очень ждём"): summed, those cues outweighed
    # "ищет дом" and made it `lost`, and the bot would comment on it. Implicit cues never
    # outvote such a post; only an explicit loss or find ("пропал", "нашли") does.
    stated = any(
        hit.rule in STATEMENT_RULES and hit.weight >= _STATEMENT_WEIGHT for hit in hits
    ) and max(scores[PostKind.LOST], scores[PostKind.FOUND]) >= _STATEMENT_WEIGHT
    # "Потерялись ключи", "нашли сосиски с таблетками": the statement is about a thing. Only
    # when every statement is inside that phrase: "Пропала собака. Потеряла телефон, пока
    # искала" is a lost dog, and the thing then counts for nothing.
    # Words to whoever found or lost "it" ("нашедшему вознаграждение", "кто потерял?") do not
    # say what "it" is, and a statement its side's negations cancel ("если кто нашёл") says
    # nothing either.
    things = [hit for hit in hits if hit.rule == THING_RULE.name]
    elsewhere = [
        hit
        for hit in hits
        if hit.rule in STATEMENT_RULES
        and hit.rule not in _ADDRESSING_RULES
        and scores[PostKind(hit.value)] >= _STATEMENT_WEIGHT
        and not any(hit.snippet in thing.snippet for thing in things)
    ]
    thing = bool(things) and not elsewhere
    if things and elsewhere:
        scores[PostKind.OTHER] -= sum(hit.weight for hit in things)
        positive = sum(max(0.0, s) for s in scores.values())
    if scores[PostKind.OTHER] >= _SIDE_THRESHOLD and (thing or not stated):
        best = max((PostKind.OTHER, PostKind.RESOLVED), key=lambda k: scores[k])
        return best, _confidence(scores[best], positive)
    best = max(scores, key=lambda k: scores[k])
    side, opposite = sorted((PostKind.LOST, PostKind.FOUND), key=lambda k: -scores[k])
    if best in {PostKind.OTHER, PostKind.RESOLVED} and scores[best] >= _KIND_THRESHOLD:
        return best, _confidence(scores[best], positive)
    if best is PostKind.OTHER and scores[best] > 0 and scores[side] < _KIND_THRESHOLD:
        return best, 0.5
    lead = scores[side] - max(0.0, scores[opposite])
    if scores[side] >= _SIDE_THRESHOLD and lead >= _SIDE_MARGIN:
        return side, _confidence(lead, positive)
    if describes_animal or scores[side] > 0:
        # Which side is uncertain: the confidence says how far apart the two sides are.
        return PostKind.UNKNOWN, round(0.5 - min(0.5, lead / (positive + 1.0)), 3)
    return PostKind.OTHER, 0.5


def _confidence(score: float, positive: float) -> float:
    confidence = score / (positive + 1.0) if positive else 0.5
    return round(min(1.0, max(0.0, confidence)), 3)


def _not_the_subject(tokens: list[Token], lemmas: list[str], i: int) -> bool:
    """Whether the animal word at `i` follows "боится", "лает на"… in its sentence (up to
    three words back): another animal, not the one the post describes."""
    return any(lemmas[j] in NOT_THE_SUBJECT and tokens[j].segment == tokens[i].segment
               for j in range(max(0, i - 3), i))


# No house cat weighs this much (a large Maine Coon, pet911:rl1083429, is 11 kg): "15 кг"
# is a dog (pet911:rl1077199 «13 лет, 15 кг»).
_DOG_KG = 13


def _heavy(tokens: list[Token], lemmas: list[str], i: int) -> bool:
    """Whether the token at `i` is "кг" after a weight only a dog has (or "20кг" in one)."""
    text = tokens[i].text
    if text.endswith("кг") and text[:-2].isdigit():
        return int(text[:-2]) >= _DOG_KG
    return (lemmas[i] == "кг" and i > 0 and tokens[i - 1].text.isdigit()
            and int(tokens[i - 1].text) >= _DOG_KG)


def _decide_species(
    tokens: list[Token], lemmas: list[str], text: str
) -> tuple[PetSpecies, float, list[Evidence]]:
    scores = dict.fromkeys(PetSpecies, 0.0)
    first_seen: dict[PetSpecies, int] = {}
    evidence: dict[PetSpecies, Evidence] = {}
    for i, lemma in enumerate(lemmas):
        rule = "species.word"
        species = SPECIES_WORDS.get(lemma) or SPECIES_WORDS.get(tokens[i].text)
        weight = 1.0
        if i and (lemmas[i - 1], lemma) in SPECIES_PAIRS:
            species, rule = SPECIES_PAIRS[lemmas[i - 1], lemma], "species.pair"
        elif species is None:
            species = IMPLIED_SPECIES.get(lemma) or IMPLIED_SPECIES.get(tokens[i].text)
            rule, weight = "species.implied", 0.5
            if species is None and _heavy(tokens, lemmas, i):
                species, rule, weight = PetSpecies.DOG, "species.weight", 0.5
            if species is None and (species := stem_species(tokens[i].text)) is not None:
                rule, weight = "species.stem", 1.0
        if species is None or _not_the_subject(tokens, lemmas, i):
            continue
        weight *= _HEAD_BOOST if tokens[i].segment == 0 else 1.0
        scores[species] += weight
        first_seen.setdefault(species, i)
        evidence.setdefault(species, Evidence(
            field="species", rule=f"{rule}:{lemma}", value=str(species), weight=weight,
            snippet=_snippet(text, tokens, i, i)))
    found = [s for s in scores if scores[s] > 0]
    if not found:
        return PetSpecies.UNKNOWN, 0.0, []
    best = max(found, key=lambda s: (scores[s], -first_seen[s]))
    confidence = scores[best] / sum(scores[s] for s in found)
    return best, round(confidence, 3), [evidence[s] for s in found]


def _decide_place(
    tokens: list[Token], text: str, group_city: str | None, mentions: list[_geo.Mention]
) -> tuple[str | None, CitySource, str | None, str | None, float, list[Evidence]]:
    evidence = [Evidence(field="city" if m.kind in {"city", "alias"} else "district",
                         rule=f"place.{m.kind}", value=m.name, weight=m.strength,
                         snippet=_snippet(text, tokens, m.start, m.end - 1)) for m in mentions]
    city_mentions = [m for m in mentions if m.kind in {"city", "alias"}]
    area_mentions = [m for m in mentions if m.kind not in {"city", "alias"}]
    group = _geo.resolve_city(group_city) if group_city else None
    city: str | None = None
    region: str | None = None
    source = CitySource.NONE
    confidence = 0.0
    if city_mentions:
        best = max(city_mentions, key=lambda m: (m.strength, -m.start))
        row = _geo.resolve_city(best.name, prefer_region=group.region if group else None)
        city = row.name if row else best.name
        region = row.region if row else None
        source = CitySource.TEXT
        confidence = min(1.0, 0.5 + best.strength / 4)
    district: str | None = None
    # A named district or settlement is more precise than an okrug code.
    area_mentions.sort(key=lambda m: (m.kind == "okrug", m.start))
    for mention in area_mentions:
        if city is None or mention.city == city or _near(mention.city, city):
            district = mention.name
            if city is None:
                row = _geo.resolve_city(mention.city or "")
                city = mention.city
                region = mention.region or (row.region if row else None)
                source = CitySource.TEXT
                confidence = 0.7
            break
    if city is not None and region in {"Москва", "Санкт-Петербург"} and city != region:
        # Зеленоград, Колпино, Пушкин: part of a federal city; report the city, keep the place.
        district = district or city
        city = region
    if city is None and group is not None:
        city, region, source, confidence = group.name, group.region, CitySource.GROUP, 0.5
    elif city is None and group_city:
        city, source, confidence = group_city, CitySource.GROUP, 0.4
    return city, source, district, region, round(confidence, 3), evidence


def _near(a: str | None, b: str, km: float = 60.0) -> bool:
    if a is None:
        return False
    distance = _geo.distance_km(a, b)
    return distance is not None and distance <= km


def classify_post(
    text: str, *, group_city: str | None = None, now: datetime | None = None
) -> PostLabel:
    """Read a post: kind, species, city/district, sex, colours, phones, date, with evidence.

    `group_city` is the group's default city, used when the post names none; `now` anchors
    relative dates ("вчера", "в субботу") and dates written without a year.
    """
    norm = normalize(text)
    body, hashtags = split_hashtags(norm)
    tokens = tokenize(body)
    lemmas = [_morph.lemma(t.text) for t in tokens]
    views = {
        "lemma": _View.build(lemmas, tokens),
        "surface": _View.build([t.text for t in tokens], tokens),
    }
    hits = _run_rules(KIND_RULES, views, tokens, text, 1.0, "")
    if hashtags:
        tag_tokens = tokenize(hashtags)
        tag_views = {
            "lemma": _View.build([_morph.lemma(t.text) for t in tag_tokens], tag_tokens),
            "surface": _View.build([t.text for t in tag_tokens], tag_tokens),
        }
        hits += _run_rules(KIND_RULES, tag_views, tag_tokens, hashtags, _HASHTAG_FACTOR, "#")
    mentions = _geo.find_places(tokens, text)
    places = {i for m in mentions for i in range(m.start, m.end)}
    hits += _pet_name(tokens, lemmas, text, places)
    species, species_conf, species_ev = _decide_species(tokens, lemmas, text)
    describes = species is not PetSpecies.UNKNOWN or not ANIMAL_WORDS.isdisjoint(lemmas)
    kind, kind_conf = _decide_kind(hits, describes)
    city, source, district, region, city_conf, place_ev = _decide_place(
        tokens, text, group_city, mentions)
    sex, sex_word = find_sex([t.text for t in tokens])
    colours = find_colours(lemmas)
    loss_date, date_snippet = find_date(body, now)
    evidence = list(hits) + species_ev + place_ev
    if sex_word:
        evidence.append(Evidence(field="sex", rule="sex.word", value=str(sex), weight=1.0,
                                 snippet=sex_word))
    if date_snippet and loss_date:
        evidence.append(Evidence(field="loss_date", rule="date.stated",
                                 value=loss_date.isoformat(), weight=1.0, snippet=date_snippet))
    return PostLabel(
        kind=kind,
        species=species,
        city=city,
        city_source=source,
        district=district,
        region=region,
        sex=sex,
        colours=colours,
        phones=find_phones(text),
        loss_date=loss_date,
        confidence={"kind": kind_conf, "species": species_conf, "city": city_conf},
        evidence=tuple(evidence),
    )
