"""`petmatch search`: rank stored posts for a photo a volunteer has at hand."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from bot import storage
from bot.config import Settings
from bot.storage import pipeline as store


@dataclass(frozen=True)
class SearchResult:
    url: str
    kind: str
    city: str | None
    similarity: float
    confidence: float
    photo_position: int

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def search_photo(
    settings: Settings,
    sessions: storage.SessionFactory,
    photo: Path,
    *,
    city: str | None = None,
    species: str | None = None,
    kind: str | None = None,
    top: int = 10,
    vision: Any = None,
) -> list[SearchResult]:
    """Cut the animals out of `photo` (the whole photo when none is found: a fragment works),
    embed them, and return the best post per case across the partitions that fit the filters.
    `vision` (a `bot.pipeline.VisionModels`) lets a long-running caller load the models once."""
    from bot.pipeline import Pipeline
    from text import distance_km

    rgb = _read_photo(photo, max_pixels=settings.vk.max_photo_pixels)
    pipeline = Pipeline(settings, sessions, gateway=None, vision=vision)
    vision = pipeline.vision
    crops = vision.segmenter.segment(rgb)
    images = [c.crop for c in crops] or [rgb]
    species_set = {species} if species else ({c.species.value for c in crops} or {"cat", "dog"})
    keys = [
        info.key
        for info in pipeline.index.partitions()
        if info.key.species in species_set
        and (kind is None or info.key.kind == kind)
        and _city_fits(info.key.city, city, settings.matching.max_distance_km, distance_km)
    ]
    if not keys:
        return []
    vectors = vision.embedder.embed(images).vectors
    hits = pipeline.index.search(vectors, keys, k=max(top * 5, 20))
    best: dict[int, tuple[float, int]] = {}
    for row in hits:
        for hit in row:
            if hit.similarity > best.get(hit.id, (-2.0, 0))[0]:
                best[hit.id] = (hit.similarity, hit.id)
    results: dict[int, SearchResult] = {}
    with storage.session_scope(sessions) as session:
        owners = store.owners_of_animals(session, best)
        for owner in owners:
            similarity = best[owner.animal_id][0]
            if owner.case_id in results and results[owner.case_id].similarity >= similarity:
                continue
            post = storage.get_post_by_pk(session, owner.post_pk)
            results[owner.case_id] = SearchResult(
                url=post.url,
                kind=owner.kind,
                city=owner.city,
                similarity=round(similarity, 4),
                confidence=round(vision.match_policy.confidence(similarity), 4),
                photo_position=owner.photo_position,
            )
    return sorted(results.values(), key=lambda r: -r.similarity)[:top]


def _read_photo(photo: Path, *, max_pixels: int) -> np.ndarray:
    """The photo's pixels; one that is over `max_pixels` is refused from its header, before
    anything is decoded (ValueError)."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            image = Image.open(photo)
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            raise ValueError(f"the photo is too large to decode ({exc})") from exc
    with image:
        width, height = image.size
        if width * height > max_pixels:
            raise ValueError(
                f"the photo has {width}x{height} pixels, over the cap of {max_pixels} "
                "(vk.max_photo_pixels)"
            )
        return np.asarray(image.convert("RGB"))


def _city_fits(candidate: str | None, wanted: str | None, max_km: float, distance: Any) -> bool:
    if wanted is None or candidate is None or candidate == wanted:
        return True
    km = distance(candidate, wanted)
    return km is not None and km <= max_km
