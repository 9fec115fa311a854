"""Storage for the review desk: accounts, reviewers' decisions, the queue of candidate pairs
that need a person, and the counts the dashboard draws.

Functions take a `Session` and return frozen records; the caller commits.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from enum import StrEnum
from pathlib import Path

from sqlalchemy import and_, exists, func, or_, select
from sqlalchemy.orm import Session, aliased

from bot.storage import _convert
from bot.storage._pipeline_schema import (
    AnimalRow,
    CaseResolutionRow,
    CommentRow,
    MatchRow,
    PostLabelRow,
)
from bot.storage._review_schema import ReviewRow, UserRow
from bot.storage._schema import GroupRow, PhotoRow, PostPhotoRow, PostRow
from bot.storage.pipeline import CommentState, LabelRecord, MatchRecord, _match
from bot.storage.records import Group, Post

__all__ = [
    "HELD_COMMENT_STATES",
    "Bucket",
    "DailyCounts",
    "Decision",
    "PhotoView",
    "PostView",
    "QueueItem",
    "Review",
    "Role",
    "User",
    "add_user",
    "animal_crop_file",
    "confirmed_case_groups",
    "confirmed_pair_photos",
    "daily_counts",
    "find_user",
    "get_user",
    "label_cities",
    "latest_decision",
    "list_users",
    "photo_file",
    "post_views",
    "record_review",
    "remove_user",
    "review_queue",
    "reviewed_pairs",
    "reviews_of_match",
    "touch_login",
]


class Role(StrEnum):
    ADMIN = "admin"  # everything, including the groups page
    VOLUNTEER = "volunteer"  # the queue, posts, search and the dashboard


class Decision(StrEnum):
    SAME_COMMENT = "same_comment"  # same animal: post the comment (through the comment stage)
    SAME_MANUAL = "same_manual"  # same animal: the reviewer contacts the people themselves
    DIFFERENT = "different"
    SKIP = "skip"  # not sure: leaves this reviewer's queue, stays in the others'

    @property
    def is_same(self) -> bool | None:
        if self is Decision.SKIP:
            return None
        return self is not Decision.DIFFERENT


class Bucket(StrEnum):
    """Why a pair is in the queue."""

    UNCERTAIN = "uncertain"  # between the review threshold and the comment threshold
    HELD = "held"  # cleared the threshold, but no consent, shadow mode, caps or quiet hours
    SAMPLE = "sample"  # an automatic comment, to be judged after the fact


#: Comment states of an accepted pair that no comment reached the public with.
HELD_COMMENT_STATES = (
    CommentState.SKIPPED,
    CommentState.SHADOW,
    CommentState.DEFERRED,
    CommentState.DRY_RUN,
)


@dataclass(frozen=True, slots=True)
class User:
    id: int
    name: str
    role: Role
    password_hash: str
    created_at: datetime
    last_login_at: datetime | None


@dataclass(frozen=True, slots=True)
class Review:
    id: int
    match_id: int
    lost_case_id: int
    found_case_id: int
    user_id: int | None
    reviewer: str
    decision: Decision
    bucket: Bucket
    similarity: float
    confidence: float
    model_id: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class QueueItem:
    match: MatchRecord
    bucket: Bucket
    comment_state: CommentState | None
    comment_reason: str | None


@dataclass(frozen=True, slots=True)
class PhotoView:
    position: int
    photo_id: int
    available: bool
    animal_ids: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class PostView:
    post: Post
    label: LabelRecord | None
    group: Group | None
    photos: tuple[PhotoView, ...]


@dataclass(frozen=True, slots=True)
class DailyCounts:
    """Per-day counts over a range of days, for the dashboard."""

    days: tuple[date, ...]
    series: dict[str, tuple[int, ...]]
    sample_same: int
    sample_different: int

    @property
    def sample_precision(self) -> float | None:
        judged = self.sample_same + self.sample_different
        return self.sample_same / judged if judged else None


# --- accounts -----------------------------------------------------------------------------


def add_user(
    session: Session, name: str, *, role: Role, password_hash: str, now: datetime
) -> User:
    """Create an account; `ValueError` when the name is taken."""
    if find_user(session, name) is not None:
        raise ValueError(f"user {name!r} already exists")
    row = UserRow(name=name, role=role.value, password_hash=password_hash, created_at=now)
    session.add(row)
    session.flush()
    return _user(row)


def get_user(session: Session, user_id: int) -> User | None:
    row = session.get(UserRow, user_id)
    return None if row is None else _user(row)


def find_user(session: Session, name: str) -> User | None:
    row = session.scalar(select(UserRow).where(UserRow.name == name))
    return None if row is None else _user(row)


def list_users(session: Session) -> list[User]:
    return [_user(r) for r in session.scalars(select(UserRow).order_by(UserRow.name))]


def remove_user(session: Session, name: str) -> bool:
    """Delete an account (its reviews keep the reviewer's name); False when there is none."""
    row = session.scalar(select(UserRow).where(UserRow.name == name))
    if row is None:
        return False
    session.delete(row)
    session.flush()
    return True


def touch_login(session: Session, user_id: int, *, now: datetime) -> None:
    row = session.get(UserRow, user_id)
    if row is not None:
        row.last_login_at = now
        session.flush()


def _user(row: UserRow) -> User:
    return User(
        id=row.id,
        name=row.name,
        role=Role(row.role),
        password_hash=row.password_hash,
        created_at=row.created_at,
        last_login_at=row.last_login_at,
    )


# --- decisions ----------------------------------------------------------------------------


def record_review(
    session: Session,
    match: MatchRecord,
    *,
    user: User,
    decision: Decision,
    bucket: Bucket,
    now: datetime,
) -> Review:
    """Store who decided what about a pair, and when, with the scores they saw."""
    row = ReviewRow(
        match_id=match.id,
        lost_case_id=match.lost_case_id,
        found_case_id=match.found_case_id,
        user_id=user.id,
        reviewer=user.name,
        decision=decision.value,
        bucket=bucket.value,
        similarity=float(match.similarity),
        confidence=float(match.confidence),
        model_id=match.model_id,
        created_at=now,
    )
    session.add(row)
    session.flush()
    return _review(row)


def reviews_of_match(session: Session, match_id: int) -> list[Review]:
    rows = session.scalars(
        select(ReviewRow).where(ReviewRow.match_id == match_id).order_by(ReviewRow.id)
    )
    return [_review(r) for r in rows]


def latest_decision(session: Session, match_id: int) -> Review | None:
    """The newest decision other than "skip" on a pair, if anyone decided."""
    row = session.scalar(
        select(ReviewRow)
        .where(ReviewRow.match_id == match_id, ReviewRow.decision != Decision.SKIP.value)
        .order_by(ReviewRow.id.desc())
        .limit(1)
    )
    return None if row is None else _review(row)


def _review(row: ReviewRow) -> Review:
    return Review(
        id=row.id,
        match_id=row.match_id,
        lost_case_id=row.lost_case_id,
        found_case_id=row.found_case_id,
        user_id=row.user_id,
        reviewer=row.reviewer,
        decision=Decision(row.decision),
        bucket=Bucket(row.bucket),
        similarity=row.similarity,
        confidence=row.confidence,
        model_id=row.model_id,
        created_at=row.created_at,
    )


def reviewed_pairs(session: Session, *, model_id: str) -> list[tuple[int, float, bool]]:
    """(match id, similarity the reviewer saw, same animal?) for each pair decided under
    `model_id`; the newest decision on a pair counts."""
    rows = session.execute(
        select(ReviewRow.match_id, ReviewRow.similarity, ReviewRow.decision)
        .where(ReviewRow.model_id == model_id, ReviewRow.decision != Decision.SKIP.value)
        .order_by(ReviewRow.id)
    )
    newest: dict[int, tuple[float, bool]] = {}
    for match_id, similarity, decision in rows:
        newest[match_id] = (float(similarity), Decision(decision).is_same is True)
    return [(m, s, same) for m, (s, same) in sorted(newest.items())]


def confirmed_case_groups(session: Session) -> list[list[int]]:
    """Cases that reviewers said show one animal, joined transitively (a lost case confirmed
    against two found cases is one animal in three cases); newest decision per pair counts."""
    rows = session.execute(
        select(ReviewRow.match_id, ReviewRow.lost_case_id, ReviewRow.found_case_id,
               ReviewRow.decision)
        .where(ReviewRow.decision != Decision.SKIP.value)
        .order_by(ReviewRow.id)
    )
    newest: dict[int, tuple[int, int, bool]] = {}
    for match_id, lost, found, decision in rows:
        newest[match_id] = (lost, found, Decision(decision).is_same is True)
    parent: dict[int, int] = {}

    def root(case: int) -> int:
        while parent.setdefault(case, case) != case:
            parent[case] = parent[parent[case]]
            case = parent[case]
        return case

    for lost, found, same in newest.values():
        if same:
            parent[root(lost)] = root(found)
    groups: dict[int, list[int]] = {}
    for case in list(parent):
        groups.setdefault(root(case), []).append(case)
    return [sorted(g) for g in groups.values() if len(g) > 1]


def confirmed_pair_photos(session: Session) -> list[tuple[str, list[Path]]]:
    """One identity per animal reviewers confirmed: the matched photo of each side of its
    confirmed pairs (cases joined transitively), named `pair-<lowest case id>`."""
    groups = confirmed_case_groups(session)
    if not groups:
        return []
    group_of = {case: min(group) for group in groups for case in group}
    rows = session.execute(
        select(ReviewRow.match_id, ReviewRow.decision).where(
            ReviewRow.decision != Decision.SKIP.value
        ).order_by(ReviewRow.id)
    )
    newest = {match_id: Decision(decision) for match_id, decision in rows}
    confirmed = [m for m, d in newest.items() if d.is_same]
    photos: dict[int, dict[int, Path]] = {}
    for match in session.scalars(select(MatchRow).where(MatchRow.id.in_(confirmed))):
        for post_pk, position in (
            (match.lost_post_id, match.lost_photo_position),
            (match.found_post_id, match.found_photo_position),
        ):
            row = session.execute(
                select(PhotoRow.id, PhotoRow.file_path)
                .join(PostPhotoRow, PostPhotoRow.photo_id == PhotoRow.id)
                .where(
                    PostPhotoRow.post_id == post_pk,
                    PostPhotoRow.position == position,
                    PhotoRow.state == "stored",
                    PhotoRow.file_path.is_not(None),
                )
            ).first()
            if row is not None:
                bucket = photos.setdefault(group_of[match.lost_case_id], {})
                bucket.setdefault(row[0], Path(row[1]))
    return [(f"pair-{key}", list(paths.values())) for key, paths in sorted(photos.items())]


# --- the queue ----------------------------------------------------------------------------


def review_queue(
    session: Session,
    *,
    review_threshold: float,
    sample_every: int,
    user_id: int | None,
    city: str | None = None,
    species: str | None = None,
    limit: int = 50,
    offset: int = 0,
) -> tuple[list[QueueItem], int]:
    """The pairs that need a person, most promising (highest confidence) first, and how many
    there are in all. A pair leaves the queue once anyone decides it, and leaves one
    reviewer's queue when they skip it."""
    lost_label = aliased(PostLabelRow)
    found_label = aliased(PostLabelRow)
    decided = exists().where(
        ReviewRow.match_id == MatchRow.id,
        or_(ReviewRow.decision != Decision.SKIP.value, ReviewRow.user_id == user_id),
    )
    resolved = exists().where(
        CaseResolutionRow.case_id.in_((MatchRow.lost_case_id, MatchRow.found_case_id))
    )
    open_pair = and_(
        ~resolved,
        or_(
            and_(MatchRow.accepted.is_(False), MatchRow.confidence >= review_threshold),
            and_(
                MatchRow.accepted.is_(True),
                CommentRow.state.in_([s.value for s in HELD_COMMENT_STATES]),
            ),
        ),
    )
    sample = and_(
        CommentRow.state == CommentState.POSTED.value, MatchRow.id % sample_every == 0
    )
    conditions = [~decided, or_(open_pair, sample)]
    if city:
        conditions.append(or_(lost_label.city == city, found_label.city == city))
    if species:
        conditions.append(or_(lost_label.species == species, found_label.species == species))

    def base(*columns: object) -> object:
        return (
            select(*columns)
            .select_from(MatchRow)
            .outerjoin(CommentRow, CommentRow.match_id == MatchRow.id)
            .join(lost_label, lost_label.post_id == MatchRow.lost_post_id)
            .join(found_label, found_label.post_id == MatchRow.found_post_id)
            .where(*conditions)
        )

    total = int(session.scalar(base(func.count(MatchRow.id))) or 0)  # type: ignore[arg-type]
    query = (
        base(MatchRow, CommentRow.state, CommentRow.reason)
        .order_by(MatchRow.confidence.desc(), MatchRow.id)  # type: ignore[attr-defined]
        .limit(limit)
        .offset(offset)
    )
    items = []
    for row, state, reason in session.execute(query):  # type: ignore[call-overload]
        comment_state = CommentState(state) if state else None
        items.append(
            QueueItem(
                match=_match(row),
                bucket=_bucket(row.accepted, comment_state),
                comment_state=comment_state,
                comment_reason=reason,
            )
        )
    return items, total


def _bucket(accepted: bool, state: CommentState | None) -> Bucket:
    if state is CommentState.POSTED:
        return Bucket.SAMPLE
    return Bucket.HELD if accepted else Bucket.UNCERTAIN


def label_cities(session: Session) -> list[str]:
    """The cities posts were read as being in, for the queue's filter."""
    rows = session.scalars(
        select(PostLabelRow.city).where(PostLabelRow.city.is_not(None)).distinct()
    )
    return sorted(c for c in rows if c)


def post_views(session: Session, post_pks: Iterable[int]) -> dict[int, PostView]:
    """Everything a card shows about these posts, in five queries whatever their number."""
    pks = sorted(set(post_pks))
    if not pks:
        return {}
    posts = {r.id: _convert.post(r) for r in session.scalars(select(PostRow).where(
        PostRow.id.in_(pks)))}
    labels = {
        r.post_id: LabelRecord(
            post_pk=r.post_id,
            kind=r.kind,
            species=r.species,
            city=r.city,
            city_source=r.city_source,
            district=r.district,
            evidence=json.loads(r.evidence),
        )
        for r in session.scalars(select(PostLabelRow).where(PostLabelRow.post_id.in_(pks)))
    }
    photo_rows = session.execute(
        select(PostPhotoRow.post_id, PostPhotoRow.position, PhotoRow.id, PhotoRow.state,
               PhotoRow.file_path)
        .join(PhotoRow, PhotoRow.id == PostPhotoRow.photo_id)
        .where(PostPhotoRow.post_id.in_(pks))
        .order_by(PostPhotoRow.post_id, PostPhotoRow.position)
    ).all()
    photo_ids = {r[2] for r in photo_rows}
    animals: dict[int, list[int]] = {}
    for animal_id, photo_id in session.execute(
        select(AnimalRow.id, AnimalRow.photo_id)
        .where(AnimalRow.photo_id.in_(photo_ids))
        .order_by(AnimalRow.photo_id, AnimalRow.position)
    ):
        animals.setdefault(photo_id, []).append(animal_id)
    owners = {-p.owner_id for p in posts.values()}
    groups = {
        r.vk_id: _convert.group(r)
        for r in session.scalars(select(GroupRow).where(GroupRow.vk_id.in_(owners)))
    }
    photos: dict[int, list[PhotoView]] = {}
    for post_pk, position, photo_id, state, file_path in photo_rows:
        photos.setdefault(post_pk, []).append(
            PhotoView(
                position=position,
                photo_id=photo_id,
                available=state == "stored" and bool(file_path),
                animal_ids=tuple(animals.get(photo_id, ())),
            )
        )
    return {
        pk: PostView(
            post=post,
            label=labels.get(pk),
            group=groups.get(-post.owner_id),
            photos=tuple(photos.get(pk, ())),
        )
        for pk, post in posts.items()
    }


def photo_file(session: Session, photo_id: int) -> Path | None:
    """Where a stored photo's bytes are, by the photo's id (None when it has none)."""
    row = session.get(PhotoRow, photo_id)
    if row is None or row.state != "stored" or not row.file_path:
        return None
    return Path(row.file_path)


def animal_crop_file(session: Session, animal_id: int) -> Path | None:
    """Where an animal's crop is, by the animal's id."""
    row = session.get(AnimalRow, animal_id)
    return None if row is None or not row.crop_path else Path(row.crop_path)


# --- the dashboard ------------------------------------------------------------------------


def daily_counts(session: Session, days: Sequence[date]) -> DailyCounts:
    """Posts read, animals, candidates, automatic comments, reviews and confirmed reunions
    per UTC day, and the reviewers' verdict on the sampled automatic comments."""
    since = datetime(days[0].year, days[0].month, days[0].day, tzinfo=UTC)

    def per_day(column: object, *where: object) -> tuple[int, ...]:
        stamps = session.scalars(select(column).where(column >= since, *where))  # type: ignore[operator,arg-type]
        counts = Counter(s.date() for s in stamps)
        return tuple(counts.get(d, 0) for d in days)

    same_decisions = [Decision.SAME_COMMENT.value, Decision.SAME_MANUAL.value]
    confirmed = exists().where(
        ReviewRow.lost_case_id == CaseResolutionRow.case_id,
        ReviewRow.decision.in_(same_decisions),
    )
    series = {
        "posts": per_day(PostRow.first_seen_at),
        "animals": per_day(AnimalRow.created_at),
        "candidates": per_day(MatchRow.created_at),
        "auto_comments": per_day(
            CommentRow.posted_at, CommentRow.state == CommentState.POSTED.value
        ),
        "reviews": per_day(ReviewRow.created_at, ReviewRow.decision != Decision.SKIP.value),
        "reunions": per_day(CaseResolutionRow.resolved_at, confirmed),
    }
    verdicts = Counter(
        session.scalars(
            select(ReviewRow.decision).where(
                ReviewRow.bucket == Bucket.SAMPLE.value,
                ReviewRow.decision != Decision.SKIP.value,
            )
        )
    )
    return DailyCounts(
        days=tuple(days),
        series=series,
        sample_same=sum(verdicts.get(d, 0) for d in same_decisions),
        sample_different=verdicts.get(Decision.DIFFERENT.value, 0),
    )
