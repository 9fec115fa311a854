"""Clear contradictions between what two posts' texts say about their animal.

Only statements that rule a match out are reported: both texts name the sex and they differ,
or both name a solid coat of one colour family and the families differ ("чёрный" vs "рыжий").
Mixed coats and patterns (трёхцветный, тигровый, пятнистый, …) and several colours in one
post never contradict: a photo of a black-and-white cat can be described as "чёрная" by one
person and "белая" by another.

No real pairs of texts about one animal exist offline, so this is tested on written pairs only
(tests/text/test_contradictions.py). The bot's match stage (`bot/text_checks.py`) lowers the
confidence of a pair whose texts contradict each other and never comments on it by itself.
"""

from __future__ import annotations

from text._models import PetSex, PostLabel

__all__ = ["COLOUR_FAMILIES", "attribute_contradictions"]

#: Canonical colour lemma (text._extract) → family. Words absent here are patterns or mixes.
COLOUR_FAMILIES: dict[str, str] = {
    "черный": "black",
    "белый": "white",
    "рыжий": "ginger",
    "персиковый": "ginger",
    "абрикосовый": "ginger",
    "золотистый": "ginger",
    "серый": "grey",
    "голубой": "grey",
    "дымчатый": "grey",
    "серебристый": "grey",
    "коричневый": "brown",
    "шоколадный": "brown",
}


def _solid_family(colours: tuple[str, ...]) -> str | None:
    """The one colour family of a solid coat, or None when mixed, patterned or unstated."""
    if not colours or any(c not in COLOUR_FAMILIES for c in colours):
        return None
    families = {COLOUR_FAMILIES[c] for c in colours}
    return families.pop() if len(families) == 1 else None


def attribute_contradictions(a: PostLabel, b: PostLabel) -> tuple[str, ...]:
    """Reasons (English, for the match log) why the two texts cannot describe one animal."""
    reasons = []
    if PetSex.UNKNOWN not in (a.sex, b.sex) and a.sex != b.sex:
        reasons.append(f"the texts disagree on sex: {a.sex.value} vs {b.sex.value}")
    family_a, family_b = _solid_family(a.colours), _solid_family(b.colours)
    if family_a and family_b and family_a != family_b:
        reasons.append(
            f"the texts disagree on colour: {', '.join(a.colours)} vs {', '.join(b.colours)}"
        )
    return tuple(reasons)
