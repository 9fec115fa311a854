"""Turn VK's JSON (API 5.199, as real VK sends it) into petmatch's frozen models.

Nothing upstream is trusted: ids must be integers that fit the database's 64-bit columns,
dates must fall in a plausible range, strings lose what no database stores (NUL, lone
surrogates). A `wall.get` item that fails is skipped with its reason and a bounded excerpt
(`WallPage.skipped`); the rest of the page goes on.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from bot.vk.errors import MalformedResponseError
from bot.vk.models import GroupInfo, PhotoRef, SkippedItem, VkComment, WallPage, WallPost

# Fallback order for old photos whose `sizes` carry no dimensions (width/height 0).
_LETTER_RANK = {letter: rank for rank, letter in enumerate("wzyxrqpoms")}
_INT64 = 2**63
_INT32 = 2**31
#: Unix seconds petmatch accepts as a post's date or edit time (2000-01-01 .. 2100-01-01).
_EARLIEST, _LATEST = 946_684_800, 4_102_444_800
_EXCERPT_CHARS = 500
#: Every failure a hostile item can raise while it is read; anything else is a petmatch bug.
_ITEM_ERRORS = (
    KeyError,
    TypeError,
    ValueError,
    AttributeError,
    OverflowError,
    OSError,
    RecursionError,
)


def unix_to_utc(value: Any) -> datetime:
    """A unix timestamp → an aware UTC datetime (ValueError when it is none, or absurd)."""
    seconds = _integer(value, "date")
    if not _EARLIEST <= seconds < _LATEST:
        raise ValueError(f"timestamp {seconds} is outside 2000..2100")
    return datetime.fromtimestamp(seconds, tz=UTC)


def _integer(value: Any, name: str, *, bits: int = 64) -> int:
    """A JSON integer (or a string of digits) that fits a signed `bits`-bit column."""
    if isinstance(value, bool):
        raise TypeError(f"{name} is a boolean")
    if isinstance(value, float):
        if not value.is_integer():
            raise ValueError(f"{name} is not an integer")
        value = int(value)
    elif isinstance(value, str):
        value = int(value.strip())
    elif not isinstance(value, int):
        raise TypeError(f"{name} is a {type(value).__name__}")
    if not -(2 ** (bits - 1)) <= value < 2 ** (bits - 1):
        raise ValueError(f"{name} {value} does not fit {bits} bits")
    return value


def _string(value: Any, name: str) -> str:
    """A JSON string (or nothing → ""), cleaned of what no database stores."""
    if value is None:
        return ""
    if not isinstance(value, str):
        raise TypeError(f"{name} is a {type(value).__name__}, not a string")
    return clean_text(value)


def clean_text(text: str) -> str:
    """PostgreSQL refuses NUL in text, and neither backend stores lone surrogates."""
    return text.replace("\x00", "").encode("utf-8", "replace").decode("utf-8")


def best_photo(photo: Mapping[str, Any]) -> PhotoRef | None:
    """The best URL of one `photo` object: `orig_photo`, else the largest of `sizes` by area,
    else by size letter (w > z > y > x > … > m > s). None when it has no URL at all."""
    owner_id = _integer(photo.get("owner_id", 0), "photo owner_id")
    photo_id = _integer(photo.get("id", 0), "photo id")
    orig = photo.get("orig_photo")
    if isinstance(orig, Mapping) and orig.get("url"):
        return PhotoRef(
            owner_id=owner_id,
            photo_id=photo_id,
            url=_string(orig["url"], "photo url"),
            width=_dim(orig.get("width")),
            height=_dim(orig.get("height")),
        )
    sizes = [s for s in photo.get("sizes") or () if isinstance(s, Mapping) and s.get("url")]
    if not sizes:
        return None

    def key(size: Mapping[str, Any]) -> tuple[int, int]:
        area = (_dim(size.get("width")) or 0) * (_dim(size.get("height")) or 0)
        letter_score = len(_LETTER_RANK) - _LETTER_RANK.get(
            str(size.get("type")), len(_LETTER_RANK)
        )
        return area, letter_score

    chosen = max(sizes, key=key)
    return PhotoRef(
        owner_id=owner_id,
        photo_id=photo_id,
        url=_string(chosen["url"], "photo url"),
        width=_dim(chosen.get("width")),
        height=_dim(chosen.get("height")),
    )


def _dim(value: Any) -> int | None:
    try:
        number = _integer(value, "size", bits=32)
    except (TypeError, ValueError, OverflowError):
        return None
    return number if number > 0 else None


def _photos_of(attachments: Iterable[Any]) -> list[PhotoRef]:
    photos = []
    for attachment in attachments or ():
        if not isinstance(attachment, Mapping) or attachment.get("type") != "photo":
            continue
        photo = attachment.get("photo")
        if isinstance(photo, Mapping):
            ref = best_photo(photo)
            if ref is not None:
                photos.append(ref)
    return photos


def parse_post(item: Mapping[str, Any]) -> WallPost:
    """One item of `wall.get`. A repost keeps its own id; `origin_*` names the original (the
    last entry of `copy_history`), and text and photos merge the repost's with the chain's."""
    try:
        texts = [_string(item.get("text"), "text").strip()]
        photos = _photos_of(_sequence(item.get("attachments"), "attachments"))
        history = [
            h for h in _sequence(item.get("copy_history"), "copy_history") if isinstance(h, Mapping)
        ]
        for shared in history:
            texts.append(_string(shared.get("text"), "text").strip())
            photos.extend(_photos_of(_sequence(shared.get("attachments"), "attachments")))
        origin = history[-1] if history else None
        merged: list[str] = []
        for text in texts:
            if text and text not in merged:
                merged.append(text)
        seen: set[tuple[int, int, str]] = set()
        unique = []
        for ref in photos:
            key = (ref.owner_id, ref.photo_id, ref.url)
            if key not in seen:
                seen.add(key)
                unique.append(ref)
        comments = item.get("comments")
        can_comment = bool(comments.get("can_post")) if isinstance(comments, Mapping) else False
        edited = item.get("edited")
        post_id = _integer(item["id"], "id")
        if post_id <= 0:
            raise ValueError(f"id {post_id} is not a post id")
        return WallPost(
            owner_id=_integer(item["owner_id"], "owner_id"),
            post_id=post_id,
            date=unix_to_utc(item["date"]),
            edited=unix_to_utc(edited) if edited else None,
            text="\n\n".join(merged),
            is_pinned=bool(item.get("is_pinned")),
            marked_as_ads=bool(item.get("marked_as_ads")),
            can_comment=can_comment,
            photos=tuple(unique),
            origin_owner_id=_integer(origin["owner_id"], "origin owner_id") if origin else None,
            origin_post_id=_integer(origin["id"], "origin id") if origin else None,
        )
    except _ITEM_ERRORS as exc:
        raise MalformedResponseError(
            f"wall.get: a post has an unexpected shape ({type(exc).__name__}: "
            f"{clean_text(str(exc))[:200]})",
            method="wall.get",
        ) from exc


def _sequence(value: Any, name: str) -> Iterable[Any]:
    if value is None or value == "":
        return ()
    if not isinstance(value, list | tuple):
        raise TypeError(f"{name} is a {type(value).__name__}, not a list")
    return value


def parse_wall_page(owner_id: int, response: Any) -> WallPage:
    """The `response` of one `wall.get`."""
    if not isinstance(response, Mapping) or not isinstance(response.get("items"), list):
        raise MalformedResponseError(
            f"wall.get for {owner_id}: expected {{count, items}}, got {type(response).__name__}",
            method="wall.get",
        )
    posts: list[WallPost] = []
    skipped: list[SkippedItem] = []
    for item in response["items"]:
        try:
            if not isinstance(item, Mapping):
                raise MalformedResponseError(
                    f"wall.get: an item is a {type(item).__name__}, not an object",
                    method="wall.get",
                )
            posts.append(parse_post(item))
        except MalformedResponseError as exc:
            skipped.append(_skipped(owner_id, item, str(exc)))
    try:
        count = _integer(response.get("count", len(response["items"])), "count")
    except _ITEM_ERRORS:
        count = len(response["items"])  # a bad total only stops paging early
    return WallPage(owner_id=owner_id, count=count, posts=tuple(posts), skipped=tuple(skipped))


def _skipped(owner_id: int, item: Any, reason: str) -> SkippedItem:
    """What is kept of an unreadable item: its id as sent, the reason, a bounded excerpt."""
    raw_id = item.get("id") if isinstance(item, Mapping) else None
    try:
        post_id: int | None = _integer(raw_id, "id")
    except _ITEM_ERRORS:
        post_id = None
    try:
        excerpt = json.dumps(item, ensure_ascii=False, default=repr)
    except _ITEM_ERRORS:
        excerpt = f"<{type(item).__name__} that does not serialise>"
    return SkippedItem(
        owner_id=owner_id,
        post_ref=clean_text(_excerpt_of(raw_id))[:64],
        post_id=post_id if post_id is not None and post_id > 0 else None,
        reason=reason,
        excerpt=clean_text(excerpt[: _EXCERPT_CHARS * 2])[:_EXCERPT_CHARS],
    )


def _excerpt_of(value: Any) -> str:
    if value is None:
        return ""
    try:
        return value if isinstance(value, str) else json.dumps(value, default=repr)[:64]
    except _ITEM_ERRORS:
        return type(value).__name__


def parse_group(group: Mapping[str, Any]) -> GroupInfo:
    """One community of `groups.getById`."""
    try:
        group_id = _integer(group["id"], "group id")
        if group_id <= 0:
            raise ValueError(f"group id {group_id} is not positive")
        return GroupInfo(
            id=group_id,
            screen_name=clean_text(str(group.get("screen_name") or f"club{group_id}"))[:255],
            name=clean_text(str(group.get("name") or ""))[:1024],
            is_closed=int(group.get("is_closed") or 0),
            deactivated=group.get("deactivated"),
        )
    except _ITEM_ERRORS as exc:
        raise MalformedResponseError(
            f"groups.getById: unexpected group shape ({exc})", method="groups.getById"
        ) from exc


def parse_comments(response: Any, *, method: str = "wall.getComments") -> list[VkComment]:
    """The `response` of `wall.getComments` (or of the gateway's comment-paging `execute`)."""
    if not isinstance(response, Mapping) or not isinstance(response.get("items"), list):
        raise MalformedResponseError(f"{method}: expected {{count, items}}", method=method)
    comments = []
    for item in response["items"]:
        if not isinstance(item, Mapping) or item.get("deleted"):
            continue
        try:
            comments.append(
                VkComment(
                    id=int(item["id"]),
                    from_id=int(item.get("from_id", 0)),
                    text=str(item.get("text") or ""),
                    date=unix_to_utc(item.get("date", 0)),
                )
            )
        except (KeyError, TypeError, ValueError, OverflowError, OSError):
            continue  # one unreadable comment must not hide the others
    return comments
