"""Storage for the processing stages: labels, animals, embeddings, matches and comments.

Functions take a `Session` and return frozen records; the pipeline commits.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from pathlib import Path

import numpy as np
from sqlalchemy import and_, func, select
from sqlalchemy.orm import Session

from bot.storage._pipeline_schema import (
    AnimalRow,
    CaseResolutionRow,
    CommentRow,
    EmbeddingRow,
    MatchRow,
    PostLabelRow,
    SegmentationRow,
)
from bot.storage._schema import PostPhotoRow, PostRow

__all__ = [
    "AnimalRecord",
    "CommentRecord",
    "CommentState",
    "IndexEntry",
    "LabelRecord",
    "MatchRecord",
    "animals_of_post",
    "comment_for_pair",
    "comment_stats",
    "create_comment",
    "dataset_posts",
    "embeddings_of",
    "get_label",
    "get_match",
    "index_entries",
    "is_case_resolved",
    "is_segmented",
    "list_comments",
    "list_matches",
    "matches_of_post",
    "owners_of_animals",
    "record_segmentation",
    "resolve_case",
    "save_embeddings",
    "save_label",
    "unfinished_comments",
    "update_comment",
    "upsert_match",
]


class CommentState(StrEnum):
    PENDING = "pending"  # written before the VK call; a restart retries it with the same guid
    POSTED = "posted"
    DRY_RUN = "dry_run"
    SHADOW = "shadow"
    SKIPPED = "skipped"
    DEFERRED = "deferred"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class LabelRecord:
    post_pk: int
    kind: str
    species: str
    city: str | None
    city_source: str
    district: str | None
    evidence: dict


@dataclass(frozen=True, slots=True)
class AnimalRecord:
    id: int
    photo_pk: int
    photo_position: int  # position of the photo within the post asked about
    position: int  # animal number within the photo
    species: str
    score: float
    box: tuple[int, int, int, int]
    crop_path: str


@dataclass(frozen=True, slots=True)
class IndexEntry:
    """One animal as the index sees it: which partition it lives in."""

    animal_id: int
    species: str
    kind: str
    city: str | None


@dataclass(frozen=True, slots=True)
class AnimalOwner:
    animal_id: int
    post_pk: int
    case_id: int
    photo_position: int
    kind: str
    city: str | None
    date: datetime


@dataclass(frozen=True, slots=True)
class MatchRecord:
    id: int
    lost_case_id: int
    found_case_id: int
    lost_post_pk: int
    found_post_pk: int
    lost_photo_position: int
    found_photo_position: int
    similarity: float
    confidence: float
    accepted: bool
    reasons: tuple[str, ...]
    model_id: str
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class CommentRecord:
    id: int
    match_id: int
    owner_id: int
    post_id: int
    guid: str
    text: str
    state: CommentState
    reason: str
    vk_comment_id: int | None
    created_at: datetime
    posted_at: datetime | None


# --- labels and cases ---------------------------------------------------------------------


def save_label(session: Session, label: LabelRecord, *, now: datetime) -> None:
    """Store (or replace, after an edit) what the text stage read from a post."""
    row = session.get(PostLabelRow, label.post_pk) or PostLabelRow(post_id=label.post_pk)
    row.kind = label.kind
    row.species = label.species
    row.city = label.city
    row.city_source = label.city_source
    row.district = label.district
    row.evidence = json.dumps(label.evidence, ensure_ascii=False, default=str)
    row.labelled_at = now
    session.add(row)
    session.flush()


def get_label(session: Session, post_pk: int) -> LabelRecord | None:
    row = session.get(PostLabelRow, post_pk)
    if row is None:
        return None
    return LabelRecord(
        post_pk=row.post_id,
        kind=row.kind,
        species=row.species,
        city=row.city,
        city_source=row.city_source,
        district=row.district,
        evidence=json.loads(row.evidence),
    )


def resolve_case(session: Session, case_id: int, post_pk: int, *, now: datetime) -> None:
    """Close a case ("нашёлся", "дома"): no more matching or comments for it."""
    if session.get(CaseResolutionRow, case_id) is None:
        session.add(CaseResolutionRow(case_id=case_id, post_id=post_pk, resolved_at=now))
        session.flush()


def is_case_resolved(session: Session, case_id: int) -> bool:
    return session.get(CaseResolutionRow, case_id) is not None


# --- segmentation and embeddings ----------------------------------------------------------


def is_segmented(session: Session, photo_pk: int) -> bool:
    return session.get(SegmentationRow, photo_pk) is not None


def record_segmentation(
    session: Session,
    photo_pk: int,
    *,
    backend: str,
    animals: Sequence[tuple[str, float, tuple[int, int, int, int], str]],
    error: str | None,
    now: datetime,
) -> list[int]:
    """Store a photo's animals (species, score, box, crop path) once; returns their ids."""
    ids = []
    for position, (species, score, box, crop_path) in enumerate(animals):
        row = AnimalRow(
            photo_id=photo_pk,
            position=position,
            species=species,
            score=float(score),
            box=",".join(str(int(v)) for v in box),
            crop_path=crop_path,
            created_at=now,
        )
        session.add(row)
        session.flush()
        ids.append(row.id)
    session.add(
        SegmentationRow(
            photo_id=photo_pk, backend=backend, animals=len(animals), error=error, created_at=now
        )
    )
    session.flush()
    return ids


def animals_of_post(session: Session, post_pk: int) -> list[AnimalRecord]:
    """Every animal cut out of the post's photos, in photo order."""
    rows = session.execute(
        select(AnimalRow, PostPhotoRow.position)
        .join(PostPhotoRow, PostPhotoRow.photo_id == AnimalRow.photo_id)
        .where(PostPhotoRow.post_id == post_pk)
        .order_by(PostPhotoRow.position, AnimalRow.position)
    )
    return [_animal(row, photo_position) for row, photo_position in rows]


def _animal(row: AnimalRow, photo_position: int) -> AnimalRecord:
    x0, y0, x1, y1 = (int(v) for v in row.box.split(","))
    return AnimalRecord(
        id=row.id,
        photo_pk=row.photo_id,
        photo_position=photo_position,
        position=row.position,
        species=row.species,
        score=row.score,
        box=(x0, y0, x1, y1),
        crop_path=row.crop_path,
    )


def save_embeddings(
    session: Session,
    animal_ids: Sequence[int],
    vectors: np.ndarray,
    *,
    model_id: str,
    now: datetime,
) -> None:
    """Store one vector per animal for `model_id`; an animal already embedded is left alone."""
    have = set(
        session.scalars(
            select(EmbeddingRow.animal_id).where(
                EmbeddingRow.model_id == model_id, EmbeddingRow.animal_id.in_(list(animal_ids))
            )
        )
    )
    for animal_id, vector in zip(animal_ids, vectors, strict=True):
        if animal_id in have:
            continue
        session.add(
            EmbeddingRow(
                animal_id=animal_id,
                model_id=model_id,
                vector=np.asarray(vector, dtype=np.float32).tobytes(),
                created_at=now,
            )
        )
    session.flush()


def embeddings_of(
    session: Session, animal_ids: Iterable[int], *, model_id: str
) -> dict[int, np.ndarray]:
    rows = session.execute(
        select(EmbeddingRow.animal_id, EmbeddingRow.vector).where(
            EmbeddingRow.model_id == model_id, EmbeddingRow.animal_id.in_(list(animal_ids))
        )
    )
    return {animal_id: np.frombuffer(blob, dtype=np.float32) for animal_id, blob in rows}


# Kinds whose animals are indexed and matched; `unknown` posts describe an animal without
# saying lost or found and are matched against both sides.
INDEXED_KINDS = ("lost", "found", "unknown")


def index_entries(
    session: Session, *, model_id: str, batch: int = 5000
) -> Iterator[tuple[IndexEntry, np.ndarray]]:
    """Every embedded animal of a lost, found or unknown-side post of an open case, for a (re)build.

    An animal is filed under the first post (by id) that shows it."""
    first_post = (
        select(
            AnimalRow.id.label("animal_id"),
            func.min(PostPhotoRow.post_id).label("post_pk"),
        )
        .join(PostPhotoRow, PostPhotoRow.photo_id == AnimalRow.photo_id)
        .join(PostLabelRow, PostLabelRow.post_id == PostPhotoRow.post_id)
        .where(PostLabelRow.kind.in_(INDEXED_KINDS))
        .group_by(AnimalRow.id)
        .subquery()
    )
    query = (
        select(
            AnimalRow.id,
            AnimalRow.species,
            PostLabelRow.kind,
            PostLabelRow.city,
            EmbeddingRow.vector,
        )
        .join(first_post, first_post.c.animal_id == AnimalRow.id)
        .join(PostLabelRow, PostLabelRow.post_id == first_post.c.post_pk)
        .join(PostRow, PostRow.id == first_post.c.post_pk)
        .join(
            EmbeddingRow,
            and_(EmbeddingRow.animal_id == AnimalRow.id, EmbeddingRow.model_id == model_id),
        )
        .outerjoin(CaseResolutionRow, CaseResolutionRow.case_id == PostRow.case_id)
        .where(CaseResolutionRow.case_id.is_(None))
        .order_by(AnimalRow.id)
        .execution_options(yield_per=batch)
    )
    for animal_id, species, kind, city, blob in session.execute(query):
        yield (
            IndexEntry(animal_id=animal_id, species=species, kind=kind, city=city),
            np.frombuffer(blob, dtype=np.float32),
        )


def owners_of_animals(session: Session, animal_ids: Iterable[int]) -> list[AnimalOwner]:
    """Which labelled lost/found posts show these animals (an animal can be in several)."""
    rows = session.execute(
        select(
            AnimalRow.id,
            PostRow.id,
            PostRow.case_id,
            PostPhotoRow.position,
            PostLabelRow.kind,
            PostLabelRow.city,
            PostRow.date,
        )
        .join(PostPhotoRow, PostPhotoRow.photo_id == AnimalRow.photo_id)
        .join(PostRow, PostRow.id == PostPhotoRow.post_id)
        .join(PostLabelRow, PostLabelRow.post_id == PostRow.id)
        .where(AnimalRow.id.in_(list(animal_ids)), PostLabelRow.kind.in_(INDEXED_KINDS))
    )
    return [
        AnimalOwner(
            animal_id=a, post_pk=p, case_id=c, photo_position=pos, kind=k, city=city, date=d
        )
        for a, p, c, pos, k, city, d in rows
    ]


# --- matches and comments -----------------------------------------------------------------


def upsert_match(
    session: Session,
    *,
    lost_case_id: int,
    found_case_id: int,
    lost_post_pk: int,
    found_post_pk: int,
    lost_photo_position: int,
    found_photo_position: int,
    similarity: float,
    confidence: float,
    accepted: bool,
    reasons: Sequence[str],
    model_id: str,
    now: datetime,
) -> MatchRecord:
    """One row per (lost case, found case); a later, better look at the pair updates it.

    An accepted match stays accepted: a comment may already stand on it."""
    row = session.scalar(
        select(MatchRow).where(
            MatchRow.lost_case_id == lost_case_id, MatchRow.found_case_id == found_case_id
        )
    )
    if row is None:
        row = MatchRow(lost_case_id=lost_case_id, found_case_id=found_case_id, created_at=now)
        session.add(row)
    elif row.accepted and not accepted:
        return _match(row)
    row.lost_post_id = lost_post_pk
    row.found_post_id = found_post_pk
    row.lost_photo_position = lost_photo_position
    row.found_photo_position = found_photo_position
    row.similarity = float(similarity)
    row.confidence = float(confidence)
    row.accepted = accepted
    row.reasons = json.dumps(list(reasons), ensure_ascii=False)
    row.model_id = model_id
    row.updated_at = now
    session.flush()
    return _match(row)


def _match(row: MatchRow) -> MatchRecord:
    return MatchRecord(
        id=row.id,
        lost_case_id=row.lost_case_id,
        found_case_id=row.found_case_id,
        lost_post_pk=row.lost_post_id,
        found_post_pk=row.found_post_id,
        lost_photo_position=row.lost_photo_position,
        found_photo_position=row.found_photo_position,
        similarity=row.similarity,
        confidence=row.confidence,
        accepted=row.accepted,
        reasons=tuple(json.loads(row.reasons)),
        model_id=row.model_id,
        updated_at=row.updated_at,
    )


def get_match(session: Session, match_id: int) -> MatchRecord | None:
    row = session.get(MatchRow, match_id)
    return None if row is None else _match(row)


def matches_of_post(session: Session, post_pk: int, *, accepted_only: bool) -> list[MatchRecord]:
    """The matches in which `post_pk` is the lost or the found side."""
    query = select(MatchRow).where(
        (MatchRow.lost_post_id == post_pk) | (MatchRow.found_post_id == post_pk)
    )
    if accepted_only:
        query = query.where(MatchRow.accepted.is_(True))
    return [_match(r) for r in session.scalars(query.order_by(MatchRow.id))]


def list_matches(
    session: Session, *, accepted_only: bool = False, limit: int = 100
) -> list[MatchRecord]:
    query = select(MatchRow).order_by(MatchRow.updated_at.desc()).limit(limit)
    if accepted_only:
        query = query.where(MatchRow.accepted.is_(True))
    return [_match(r) for r in session.scalars(query)]


def comment_for_pair(
    session: Session, lost_case_id: int, found_case_id: int
) -> CommentRecord | None:
    row = session.scalar(
        select(CommentRow).where(
            CommentRow.lost_case_id == lost_case_id, CommentRow.found_case_id == found_case_id
        )
    )
    return None if row is None else _comment(row)


def create_comment(
    session: Session,
    match: MatchRecord,
    *,
    owner_id: int,
    post_id: int,
    guid: str,
    text: str,
    state: CommentState,
    reason: str,
    now: datetime,
) -> CommentRecord:
    """Record the comment for a pair before anything is sent; the unique pair refuses twins."""
    row = CommentRow(
        match_id=match.id,
        lost_case_id=match.lost_case_id,
        found_case_id=match.found_case_id,
        owner_id=owner_id,
        post_id=post_id,
        guid=guid,
        text=text,
        state=state,
        reason=reason,
        created_at=now,
    )
    session.add(row)
    session.flush()
    return _comment(row)


def update_comment(
    session: Session,
    comment_id: int,
    *,
    state: CommentState,
    reason: str,
    now: datetime,
    text: str | None = None,
    vk_comment_id: int | None = None,
) -> CommentRecord:
    row = session.get(CommentRow, comment_id)
    if row is None:
        raise KeyError(f"comment #{comment_id} does not exist")
    row.state = state
    row.reason = reason
    if text is not None:
        row.text = text
    if vk_comment_id is not None:
        row.vk_comment_id = vk_comment_id
    if state is CommentState.POSTED:
        row.posted_at = now
    session.flush()
    return _comment(row)


def unfinished_comments(session: Session) -> list[CommentRecord]:
    """Comments a crash or a pause left pending or deferred, oldest first."""
    rows = session.scalars(
        select(CommentRow)
        .where(CommentRow.state.in_((CommentState.PENDING, CommentState.DEFERRED)))
        .order_by(CommentRow.id)
    )
    return [_comment(r) for r in rows]


def comment_stats(session: Session, *, since: datetime) -> tuple[int, datetime | None]:
    """How many comments were posted since `since`, and when the last one was posted."""
    count = session.scalar(
        select(func.count(CommentRow.id)).where(
            CommentRow.state == CommentState.POSTED, CommentRow.posted_at >= since
        )
    )
    last = session.scalar(
        select(CommentRow.posted_at)
        .where(CommentRow.state == CommentState.POSTED)
        .order_by(CommentRow.posted_at.desc())
        .limit(1)
    )
    return int(count or 0), last


def list_comments(session: Session, *, limit: int = 100) -> list[CommentRecord]:
    rows = session.scalars(select(CommentRow).order_by(CommentRow.id.desc()).limit(limit))
    return [_comment(r) for r in rows]


def _comment(row: CommentRow) -> CommentRecord:
    return CommentRecord(
        id=row.id,
        match_id=row.match_id,
        owner_id=row.owner_id,
        post_id=row.post_id,
        guid=row.guid,
        text=row.text,
        state=CommentState(row.state),
        reason=row.reason,
        vk_comment_id=row.vk_comment_id,
        created_at=row.created_at,
        posted_at=row.posted_at,
    )


def dataset_posts(session: Session) -> list[tuple[str, list[Path]]]:
    """Each lost/found case once (reposts folded in), named `<group>-<post>` after its first
    post, with the stored photo files of all its posts in order."""
    from bot.storage._schema import PhotoRow

    rows = session.execute(
        select(PostRow.case_id, PostRow.owner_id, PostRow.post_id, PhotoRow.id, PhotoRow.file_path)
        .join(PostLabelRow, PostLabelRow.post_id == PostRow.id)
        .join(PostPhotoRow, PostPhotoRow.post_id == PostRow.id)
        .join(PhotoRow, PhotoRow.id == PostPhotoRow.photo_id)
        .where(
            PostLabelRow.kind.in_(("lost", "found")),
            PhotoRow.state == "stored",
            PhotoRow.file_path.is_not(None),
        )
        .order_by(PostRow.case_id, PostRow.date, PostRow.id, PostPhotoRow.position)
    )
    cases: dict[int, tuple[str, dict[int, Path]]] = {}
    for case_id, owner_id, post_id, photo_pk, file_path in rows:
        _, photos = cases.setdefault(case_id, (f"{abs(owner_id)}-{post_id}", {}))
        photos.setdefault(photo_pk, Path(file_path))
    return [(name, list(photos.values())) for name, photos in cases.values()]
