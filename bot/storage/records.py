"""Frozen records the storage functions return (never ORM rows)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum
from pathlib import Path

__all__ = [
    "Group",
    "Pause",
    "Photo",
    "PhotoState",
    "Post",
    "PostState",
    "VkCallCount",
]


class PostState(StrEnum):
    """Where a post is in the pipeline; later stages move it on (`stage` says which)."""

    PENDING = "pending"  # new or edited: waits for text / vision / matching
    PROCESSING = "processing"
    DONE = "done"
    FAILED = "failed"
    SKIPPED = "skipped"


class PhotoState(StrEnum):
    PENDING = "pending"  # known from a post, not downloaded yet
    STORED = "stored"  # bytes on disk under photos_dir, sha256 and phash known
    FAILED = "failed"  # could not be used; `error` says why
    MERGED = "merged"  # same bytes as `duplicate_of`; its posts link to that photo now


@dataclass(frozen=True, slots=True)
class Group:
    id: int
    vk_id: int
    screen_name: str
    title: str
    city: str | None
    comments_enabled: bool
    shadow_mode: bool
    cursor_post_id: int
    last_polled_at: datetime | None
    last_error: str | None
    accessible: bool
    inaccessible_since: datetime | None
    next_check_at: datetime | None
    created_at: datetime
    kind: str | None = None  # what the group publishes: lost | found | mixed (None)

    @property
    def owner_id(self) -> int:
        """The wall owner id VK uses for a community (negative)."""
        return -self.vk_id


@dataclass(frozen=True, slots=True)
class Post:
    id: int
    owner_id: int
    post_id: int
    date: datetime
    edited: datetime | None
    text: str
    is_pinned: bool
    marked_as_ads: bool
    can_comment: bool
    origin_owner_id: int | None
    origin_post_id: int | None
    case_id: int
    state: PostState
    stage: str | None
    error: str | None
    first_seen_at: datetime
    updated_at: datetime

    @property
    def url(self) -> str:
        return f"https://vk.com/wall{self.owner_id}_{self.post_id}"


@dataclass(frozen=True, slots=True)
class Photo:
    id: int
    vk_owner_id: int
    vk_photo_id: int
    source_url: str
    sha256: str | None
    phash: str | None
    width: int | None
    height: int | None
    bytes: int | None
    file_path: Path | None
    state: PhotoState
    error: str | None
    attempts: int
    duplicate_of: int | None


@dataclass(frozen=True, slots=True)
class VkCallCount:
    day: date
    method: str
    count: int


@dataclass(frozen=True, slots=True)
class Pause:
    id: int
    scope: str
    until: datetime
    reason: str
