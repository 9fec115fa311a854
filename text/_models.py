"""The typed result of reading one post: `PostLabel` and its vocabularies."""

from __future__ import annotations

from datetime import date
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field


class PostKind(StrEnum):
    """What a post is about."""

    LOST = "lost"
    FOUND = "found"
    RESOLVED = "resolved"  # a closing update: the pet is home / the owner was found
    OTHER = "other"  # about something else: adoption, sales, fund-raising, adverts, news
    UNKNOWN = "unknown"  # describes a lost or found animal but does not say which side


class PetSpecies(StrEnum):
    """Which animal a post is about."""

    CAT = "cat"
    DOG = "dog"
    OTHER = "other"
    UNKNOWN = "unknown"


class PetSex(StrEnum):
    """The animal's sex, when the post states it."""

    MALE = "male"
    FEMALE = "female"
    UNKNOWN = "unknown"


class CitySource(StrEnum):
    """Where `PostLabel.city` came from."""

    TEXT = "text"  # named in the post (a city, an alias, a district or a settlement)
    GROUP = "group"  # the group's default city, because the post names none
    NONE = "none"


class Evidence(BaseModel):
    """One rule that fired: which field it voted for, its weight and the text it matched."""

    model_config = ConfigDict(frozen=True)

    field: str
    rule: str
    value: str
    weight: float
    snippet: str


class PostLabel(BaseModel):
    """Everything `classify_post` read from a post, with a confidence and evidence per field."""

    model_config = ConfigDict(frozen=True)

    kind: PostKind
    species: PetSpecies
    city: str | None = None
    city_source: CitySource = CitySource.NONE
    district: str | None = None
    region: str | None = None
    sex: PetSex = PetSex.UNKNOWN
    colours: tuple[str, ...] = ()
    phones: tuple[str, ...] = ()
    loss_date: date | None = None
    confidence: dict[str, float] = Field(default_factory=dict)
    evidence: tuple[Evidence, ...] = ()

    def evidence_for(self, field: str) -> tuple[Evidence, ...]:
        """The evidence that voted on one field (`kind`, `species`, `city`, …)."""
        return tuple(e for e in self.evidence if e.field == field)
