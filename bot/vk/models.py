"""Data that crosses the VK seam, and the `VkGateway` protocol the rest of `bot/` uses."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

from pydantic import BaseModel, ConfigDict


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True)


class GroupInfo(_Frozen):
    """A community as `groups.getById` describes it; `id` is positive (the wall owner is -id)."""

    id: int
    screen_name: str
    name: str
    is_closed: int = 0
    deactivated: str | None = None


class PhotoRef(_Frozen):
    """One photo of a post, with the best URL already chosen (orig_photo > largest size)."""

    owner_id: int
    photo_id: int
    url: str
    width: int | None = None
    height: int | None = None


class WallPost(_Frozen):
    """One wall post. For a repost, `origin_*` names the original post in `copy_history`,
    and `text`/`photos` merge the repost's own text with the original's."""

    owner_id: int
    post_id: int
    date: datetime
    edited: datetime | None = None
    text: str = ""
    is_pinned: bool = False
    marked_as_ads: bool = False
    can_comment: bool = True
    photos: tuple[PhotoRef, ...] = ()
    origin_owner_id: int | None = None
    origin_post_id: int | None = None

    @property
    def url(self) -> str:
        return f"https://vk.com/wall{self.owner_id}_{self.post_id}"


class SkippedItem(_Frozen):
    """An item of a `wall.get` page that could not be read as a post: recorded, not stored.
    `post_ref` is its id as sent (maybe no integer), `post_id` that id when it is one."""

    owner_id: int
    post_ref: str
    post_id: int | None = None
    reason: str
    excerpt: str


class WallPage(_Frozen):
    """One page of `wall.get` for one wall; `skipped` are its items that were not posts."""

    owner_id: int
    count: int
    posts: tuple[WallPost, ...]
    skipped: tuple[SkippedItem, ...] = ()

    @property
    def items_read(self) -> int:
        """How many items the page held, readable or not."""
        return len(self.posts) + len(self.skipped)


class WallRequest(_Frozen):
    """One `wall.get` call inside a batched `execute`."""

    owner_id: int
    offset: int = 0
    count: int = 100


class VkComment(_Frozen):
    id: int
    from_id: int
    text: str
    date: datetime


class VkGateway(Protocol):
    """What petmatch needs from VK. The `vk_api` adapter is the one real implementation."""

    def resolve_group(self, ref: str) -> GroupInfo:
        """Turn a URL, screen name or numeric id into a group (`utils.resolveScreenName` +
        `groups.getById`)."""
        ...

    def fetch_walls(self, requests: Sequence[WallRequest]) -> dict[int, WallPage | Exception]:
        """Read up to 25 walls in one `execute` call; a failed wall maps to its VkError."""
        ...

    def download_photo(self, url: str) -> bytes:
        """Fetch a photo from an allow-listed host, with size and content checks."""
        ...

    def get_comments(self, owner_id: int, post_id: int) -> list[VkComment]: ...

    def create_comment(self, owner_id: int, post_id: int, message: str, *, guid: str) -> int:
        """Post a comment; `guid` makes a retried call idempotent on VK's side."""
        ...
