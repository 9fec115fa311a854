"""Turn VK's JSON (API 5.199, as real VK sends it) into petmatch's frozen models."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from bot.vk.errors import MalformedResponseError
from bot.vk.models import GroupInfo, PhotoRef, VkComment, WallPage, WallPost

# Fallback order for old photos whose `sizes` carry no dimensions (width/height 0).
_LETTER_RANK = {letter: rank for rank, letter in enumerate("wzyxrqpoms")}


def unix_to_utc(value: Any) -> datetime:
    """A unix timestamp → an aware UTC datetime."""
    return datetime.fromtimestamp(int(value), tz=UTC)


def best_photo(photo: Mapping[str, Any]) -> PhotoRef | None:
    """The best URL of one `photo` object: `orig_photo`, else the largest of `sizes` by area,
    else by size letter (w > z > y > x > … > m > s). None when it has no URL at all."""
    owner_id = int(photo.get("owner_id", 0))
    photo_id = int(photo.get("id", 0))
    orig = photo.get("orig_photo")
    if isinstance(orig, Mapping) and orig.get("url"):
        return PhotoRef(
            owner_id=owner_id,
            photo_id=photo_id,
            url=str(orig["url"]),
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
        url=str(chosen["url"]),
        width=_dim(chosen.get("width")),
        height=_dim(chosen.get("height")),
    )


def _dim(value: Any) -> int | None:
    try:
        number = int(value)
    except (TypeError, ValueError):
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
        texts = [str(item.get("text") or "").strip()]
        photos = _photos_of(item.get("attachments") or ())
        history = [h for h in item.get("copy_history") or () if isinstance(h, Mapping)]
        for shared in history:
            texts.append(str(shared.get("text") or "").strip())
            photos.extend(_photos_of(shared.get("attachments") or ()))
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
        return WallPost(
            owner_id=int(item["owner_id"]),
            post_id=int(item["id"]),
            date=unix_to_utc(item["date"]),
            edited=unix_to_utc(edited) if edited else None,
            text="\n\n".join(merged),
            is_pinned=bool(item.get("is_pinned")),
            marked_as_ads=bool(item.get("marked_as_ads")),
            can_comment=can_comment,
            photos=tuple(unique),
            origin_owner_id=int(origin["owner_id"]) if origin else None,
            origin_post_id=int(origin["id"]) if origin else None,
        )
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise MalformedResponseError(
            f"wall.get: a post has an unexpected shape ({type(exc).__name__}: {exc})",
            method="wall.get",
        ) from exc


def parse_wall_page(owner_id: int, response: Any) -> WallPage:
    """The `response` of one `wall.get`."""
    if not isinstance(response, Mapping) or not isinstance(response.get("items"), list):
        raise MalformedResponseError(
            f"wall.get for {owner_id}: expected {{count, items}}, got {type(response).__name__}",
            method="wall.get",
        )
    posts = tuple(parse_post(item) for item in response["items"] if isinstance(item, Mapping))
    return WallPage(owner_id=owner_id, count=int(response.get("count", len(posts))), posts=posts)


def parse_group(group: Mapping[str, Any]) -> GroupInfo:
    """One community of `groups.getById`."""
    try:
        group_id = int(group["id"])
        return GroupInfo(
            id=group_id,
            screen_name=str(group.get("screen_name") or f"club{group_id}"),
            name=str(group.get("name") or ""),
            is_closed=int(group.get("is_closed") or 0),
            deactivated=group.get("deactivated"),
        )
    except (KeyError, TypeError, ValueError) as exc:
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
