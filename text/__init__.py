"""Reading Russian lost/found pet posts: kind, species, city and district, and details.

    >>> from text import classify_post
    >>> label = classify_post("Пропала кошка в Казани, звоните 8 900 123-45-67")
    >>> label.kind, label.species, label.city
    (<PostKind.LOST: 'lost'>, <PetSpecies.CAT: 'cat'>, 'Казань')
"""

from text._classify import classify_post
from text._extract import mask_phones
from text._geo import city_coordinates, distance_km
from text._models import CitySource, Evidence, PetSex, PetSpecies, PostKind, PostLabel
from text.contradictions import attribute_contradictions

__all__ = [
    "CitySource",
    "Evidence",
    "PetSex",
    "PetSpecies",
    "PostKind",
    "PostLabel",
    "attribute_contradictions",
    "city_coordinates",
    "classify_post",
    "distance_km",
    "mask_phones",
]
