"""The fake VK's world: groups, posts, photos, comments, injected faults and a call log.

`FakeVk.handle_method` answers one API call the way VK 5.199 does (same JSON shapes, same
error envelope); the HTTP layer in `_server.py` only moves bytes.
"""

from __future__ import annotations

import io
import re
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from bot.fakevk._tokens import (
    ApiFailure,
    FakeToken,
    TokenKind,
    access_failure,
    comment_author,
    token_methods,
)

__all__ = ["DEFAULT_TOKEN", "ERROR_MESSAGES", "OFFSITE_PHOTO_URL", "FakeVk", "Fault", "Response"]

DEFAULT_TOKEN = "fake-vk-token-0123456789abcdef"

ERROR_MESSAGES: dict[int, str] = {
    1: "Unknown error occurred",
    5: "User authorization failed: invalid access_token (4).",
    6: "Too many requests per second",
    8: "Invalid request: v (version) is required",
    9: "Flood control",
    10: "Internal server error",
    12: "Unable to compile code",
    13: "Runtime error occurred during code invocation",
    14: "Captcha needed",
    15: "Access denied: this wall available only for community members",
    17: "Validation required",
    18: "User was deleted or banned",
    19: "Content blocked",
    27: "Group authorization failed: method is unavailable with group auth.",
    29: "Rate limit reached",
    30: "This profile is private",
    100: "One of the parameters specified was missing or invalid",
    113: "Invalid user id",
    203: "Access to group denied",
    212: "Access to post comments denied",
    213: "Access denied: no access to comments",
    222: "Hyperlinks are forbidden",
    223: "Too many replies",
}

_TRANSPORT_FAULTS = {"http500", "http502", "timeout", "slow", "truncated", "not_json", "trickle"}
_TRANSPORT_FAULTS |= {"trickle_head"}
_PHOTO_FAULTS = {"corrupt", "huge", "not_image", "404", "http500", "timeout", "slow", "redirect"}
_PHOTO_FAULTS |= {"trickle", "trickle_head"}
#: Where the "redirect" photo fault points: off any allowlist (and never resolvable).
OFFSITE_PHOTO_URL = "http://photos.example.invalid/cat.jpg"
_WALL_GET_CALL = re.compile(
    r'API\.wall\.get\(\{"owner_id": (-?\d+), "offset": (\d+), "count": (\d+)\}\)'
)
_EXECUTE_CODE = re.compile(r"^return \[(.*)\];$", re.S)
#: The gateway's comment-paging script (`bot.vk.gateway.all_comments_code`), recognised by its
#: first line and its fixed body.
_COMMENTS_CODE = re.compile(
    r"^var offset = 0;\nvar page = API\.wall\.getComments\(\{"
    r'"owner_id": (-?\d+), "post_id": (\d+), "offset": offset, "count": 100, "sort": "asc"'
    r"\}\);\n(.*)$",
    re.S,
)
_LINK = re.compile(r"https?://|\bvk\.(?:com|ru|cc|me)/|\b[\w-]+\.(?:ru|com|рф|org|net)\b", re.I)
_SIZE_LETTERS = (("s", 75), ("m", 130), ("x", 604), ("y", 807), ("z", 1080), ("w", 2560))


@dataclass
class Fault:
    """One injected failure. `times=None` means forever."""

    target: str
    fault: int | str
    times: int | None = 1
    owner_id: int | None = None


@dataclass
class Response:
    """What the HTTP layer sends: a status, headers and a body (or a streamed body)."""

    status: int
    body: bytes = b""
    content_type: str = "application/json; charset=utf-8"
    delay: float = 0.0
    stream_bytes: int = 0  # > 0: stream this many bytes with no Content-Length ("huge")
    location: str | None = None
    trickle_seconds: float = 0.0  # > 0: send the body one byte every this many seconds
    trickle_head: bool = False  # trickle the status line and headers too


@dataclass
class _Photo:
    owner_id: int
    photo_id: int
    data: bytes
    width: int
    height: int


@dataclass
class _Group:
    id: int
    screen_name: str
    name: str
    is_closed: int = 0
    deactivated: str | None = None
    links_allowed: bool = True


@dataclass
class _Post:
    owner_id: int
    id: int
    date: int
    text: str
    photos: list[_Photo] = field(default_factory=list)
    is_pinned: bool = False
    marked_as_ads: bool = False
    can_comment: bool = True
    repost_of: tuple[int, int] | None = None
    edited: int | None = None
    with_orig_photo: bool = True


@dataclass
class _Comment:
    id: int
    owner_id: int
    post_id: int
    from_id: int
    text: str
    date: int
    guid: str | None = None
    created: bool = False


class FakeVk:
    """State and behaviour of the fake VK. Thread-safe; the clock is the real one unless
    `date=` is given."""

    def __init__(
        self,
        *,
        token: str = DEFAULT_TOKEN,
        hang_seconds: float = 2.0,
        slow_seconds: float = 0.2,
        huge_bytes: int = 64 * 1024 * 1024,
        bot_user_id: int = 424242,
        trickle_seconds: float = 0.5,
    ):
        self.token = token
        self.hang_seconds = hang_seconds
        self.slow_seconds = slow_seconds
        self.huge_bytes = huge_bytes
        self.bot_user_id = bot_user_id  # the user the token belongs to (`users.get`)
        self.trickle_seconds = trickle_seconds
        self._item_mutations: dict[tuple[int, int], Callable[[dict[str, Any]], Any]] = {}
        self.photo_base_url = "http://127.0.0.1/photos/"
        self.calls: Counter[str] = Counter()
        self.call_log: list[tuple[str, dict[str, str]]] = []
        self.execute_wall_gets = 0
        self._lock = threading.RLock()
        self._groups: dict[int, _Group] = {}
        self._posts: dict[int, dict[int, _Post]] = {}
        self._photos: dict[str, _Photo] = {}
        self._comments: list[_Comment] = []
        self._faults: list[Fault] = []
        self._next_photo_id = 456239000
        self._next_comment_id = 1
        self._tokens: dict[str, FakeToken] = {}

    @property
    def state(self) -> FakeVk:
        return self

    # ---- tokens (see bot/fakevk/README.md) ----------------------------------------------

    def add_token(
        self,
        value: str,
        kind: TokenKind | str = TokenKind.USER,
        *,
        user_id: int | None = None,
        group_id: int | None = None,
        rights: Sequence[str] | None = None,
        admin_of: Sequence[int] = (),
        dead: bool = False,
    ) -> FakeToken:
        """Make the fake accept `value` as a user token, the app's service key or a community
        key. A user token gets `wall` and `offline` unless `rights` says otherwise; a
        community key gets `manage`."""
        kind = TokenKind(kind)
        if rights is None:
            rights = {
                TokenKind.USER: ("wall", "offline"),
                TokenKind.SERVICE: (),
                TokenKind.COMMUNITY: ("manage",),
            }[kind]
        if kind is TokenKind.COMMUNITY and group_id is None:
            raise ValueError("a community key needs group_id")
        token = FakeToken(
            value,
            kind,
            user_id=user_id if user_id is not None else (100 + len(self._tokens)),
            group_id=abs(group_id) if group_id is not None else None,
            rights=frozenset(rights),
            admin_of=frozenset(abs(g) for g in admin_of),
            dead=dead,
        )
        with self._lock:
            self._tokens[value] = token
        return token

    def kill_token(self, value: str) -> None:
        """The token stops working (error 5 from now on)."""
        with self._lock:
            self.token_for(value)  # the main token becomes an explicit entry first
            self._tokens[value].dead = True

    def token_for(self, value: str | None) -> FakeToken | None:
        """The live token with this value, or None (VK answers error 5). `self.token` is a
        user token with the `wall` right whose comments come from `bot_user_id`."""
        if not value:
            return None
        with self._lock:
            token = self._tokens.get(value)
            if token is None and value == self.token:
                token = self._tokens[value] = FakeToken(
                    value, TokenKind.USER, user_id=self.bot_user_id, rights=frozenset({"wall"})
                )
        return None if token is None or token.dead else token

    # ---- building the world -----------------------------------------------------------

    def add_group(
        self,
        group_id: int,
        screen_name: str,
        name: str,
        *,
        is_closed: int = 0,
        deactivated: str | None = None,
        links_allowed: bool = True,
    ) -> None:
        """A community with a positive id; its wall owner is -group_id."""
        with self._lock:
            self._groups[abs(group_id)] = _Group(
                abs(group_id), screen_name, name, is_closed, deactivated, links_allowed
            )
            self._posts.setdefault(abs(group_id), {})

    def add_post(
        self,
        group_id: int,
        *,
        text: str,
        date: int | None = None,
        photos: Sequence[bytes] = (),
        post_id: int | None = None,
        is_pinned: bool = False,
        marked_as_ads: bool = False,
        can_comment: bool = True,
        repost_of: tuple[int, int] | None = None,
        edited: int | None = None,
        with_orig_photo: bool = True,
    ) -> int:
        """A post on the group's wall; returns its id. `repost_of=(group_id, post_id)` names
        an existing post that lands in `copy_history`. `date`/`edited` are unix seconds."""
        gid = abs(group_id)
        with self._lock:
            if gid not in self._groups:
                raise KeyError(f"no group {gid}: add_group first")
            wall = self._posts[gid]
            if post_id is None:
                post_id = max(wall, default=0) + 1
            if post_id in wall:
                raise ValueError(f"post {post_id} already exists on wall -{gid}")
            if repost_of is not None:
                src_gid, src_pid = abs(repost_of[0]), repost_of[1]
                if src_pid not in self._posts.get(src_gid, {}):
                    raise KeyError(f"no post {src_pid} on wall -{src_gid} to repost")
                repost_of = (src_gid, src_pid)
            stored = [self._store_photo(-gid, data) for data in photos]
            wall[post_id] = _Post(
                owner_id=-gid,
                id=post_id,
                date=int(date if date is not None else time.time()),
                text=text,
                photos=stored,
                is_pinned=is_pinned,
                marked_as_ads=marked_as_ads,
                can_comment=can_comment,
                repost_of=repost_of,
                edited=edited,
                with_orig_photo=with_orig_photo,
            )
            return post_id

    def edit_post(
        self, group_id: int, post_id: int, *, text: str, edited: int | None = None
    ) -> None:
        with self._lock:
            post = self._posts[abs(group_id)][post_id]
            post.text = text
            post.edited = int(edited if edited is not None else time.time())

    def delete_post(self, group_id: int, post_id: int) -> None:
        with self._lock:
            del self._posts[abs(group_id)][post_id]

    def add_comment(self, group_id: int, post_id: int, text: str, *, from_id: int = 1) -> int:
        """A comment someone else left (for `wall.getComments`)."""
        with self._lock:
            return self._record_comment(
                -abs(group_id), post_id, text, from_id, None, created=False
            ).id

    def photo_urls(self, group_id: int, post_id: int) -> list[str]:
        """The best (orig_photo) URLs of a post's photos, as the gateway would choose them."""
        with self._lock:
            post = self._posts[abs(group_id)][post_id]
            return [self._photo_url(p, "orig") for p in post.photos]

    def mutate_item(
        self, group_id: int, post_id: int, mutate: Callable[[dict[str, Any]], Any]
    ) -> None:
        """Serve post `post_id` through `mutate`: it gets the item's JSON (a fresh copy) and
        returns what `wall.get` puts in its place, anything at all. This is how tests send a
        malformed item inside an otherwise valid response."""
        with self._lock:
            if post_id not in self._posts.get(abs(group_id), {}):
                raise KeyError(f"no post {post_id} on wall -{abs(group_id)}")
            self._item_mutations[(abs(group_id), post_id)] = mutate

    def inject_fault(
        self,
        method: str,
        fault: int | str,
        *,
        times: int | None = 1,
        owner_id: int | None = None,
    ) -> None:
        """Make the next `times` calls of `method` fail (None = forever). `method` is a VK
        method name, `"photo"` for any photo, or one photo URL. `owner_id` limits a
        `wall.get` fault to one wall (also inside `execute`, where an int code lands in
        `execute_errors`)."""
        if isinstance(fault, str) and fault not in _TRANSPORT_FAULTS | _PHOTO_FAULTS:
            raise ValueError(f"unknown fault {fault!r}")
        with self._lock:
            self._faults.append(Fault(method, fault, times, owner_id))

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    @property
    def comments(self) -> list[dict[str, Any]]:
        """Comments created through `wall.createComment` (each guid once)."""
        with self._lock:
            return [
                {
                    "id": c.id,
                    "owner_id": c.owner_id,
                    "post_id": c.post_id,
                    "from_id": c.from_id,
                    "text": c.text,
                    "date": c.date,
                    "guid": c.guid,
                }
                for c in self._comments
                if c.created
            ]

    # ---- serving ----------------------------------------------------------------------

    def handle_method(self, method: str, params: Mapping[str, str]) -> Response:
        """Answer one API call."""
        with self._lock:
            self.calls[method] += 1
            self.call_log.append((method, dict(params)))
            fault = self._take_fault(method, params, nested=False)
        if fault is not None:
            transport = self._transport_fault(fault, method, params)
            if transport is not None:
                return transport
        token = self.token_for(params.get("access_token"))
        if token is None:
            return self._error(5, method, params)
        if not params.get("v"):
            return self._error(8, method, params)
        if isinstance(fault, int):
            return self._error(fault, method, params)
        handler = _HANDLERS.get(method)
        if handler is None:
            return self._error(3, method, params, "Unknown method passed")
        with self._lock:
            try:
                denied = access_failure(token, method, params)
                if denied is not None:
                    raise denied
                result = handler(self, params)
            except (_VkFailure, ApiFailure) as failure:
                return self._error(failure.code, method, params, failure.message)
            except (KeyError, ValueError):
                return self._error(100, method, params)
        payload = (
            result if isinstance(result, dict) and "response" in result else {"response": result}
        )
        response = _json_response(payload)
        if fault == "slow":
            response.delay = self.slow_seconds
        if fault in ("trickle", "trickle_head"):
            response.trickle_seconds = self.trickle_seconds
            response.trickle_head = fault == "trickle_head"
        return response

    def handle_photo(self, path: str, url: str) -> Response:
        """Serve `/photos/<owner>_<id>...` bytes."""
        with self._lock:
            self.calls["photo"] += 1
            fault = self._take_photo_fault(url)
            match = re.match(r"^/photos/(-?\d+_\d+)", path)
            photo = self._photos.get(match.group(1)) if match else None
        if fault == "404" or photo is None:
            return Response(404, b"<html><body>404 Not Found</body></html>", "text/html")
        if fault == "http500":
            return Response(500, b"<html>500</html>", "text/html")
        if fault == "not_image":
            return Response(200, b"<html><body>You are being redirected</body></html>", "text/html")
        if fault == "corrupt":
            return Response(200, b"\xff\xd8\xff\xe0" + b"\x13\x37" * 2048, "image/jpeg")
        if fault == "redirect":
            return Response(302, b"", "text/html", location=OFFSITE_PHOTO_URL)
        if fault == "huge":
            return Response(200, b"\xff\xd8\xff\xe0", "image/jpeg", stream_bytes=self.huge_bytes)
        if fault in ("trickle", "trickle_head"):
            return Response(
                200,
                photo.data,
                "image/jpeg",
                trickle_seconds=self.trickle_seconds,
                trickle_head=fault == "trickle_head",
            )
        delay = (
            self.hang_seconds
            if fault == "timeout"
            else self.slow_seconds
            if fault == "slow"
            else 0.0
        )
        return Response(200, photo.data, "image/jpeg", delay=delay)

    # ---- internals --------------------------------------------------------------------

    def _take_fault(
        self, method: str, params: Mapping[str, str], *, nested: bool
    ) -> int | str | None:
        owner = params.get("owner_id")
        for fault in self._faults:
            if fault.target != method:
                continue
            if fault.owner_id is not None and str(fault.owner_id) != str(owner):
                continue
            if nested and not isinstance(fault.fault, int):
                continue
            if fault.times is not None:
                fault.times -= 1
                if fault.times <= 0:
                    self._faults.remove(fault)
            return fault.fault
        return None

    def _take_photo_fault(self, url: str) -> str | None:
        for fault in self._faults:
            if fault.target == "photo" or (
                fault.target.startswith("http") and url.startswith(fault.target)
            ):
                if fault.times is not None:
                    fault.times -= 1
                    if fault.times <= 0:
                        self._faults.remove(fault)
                return str(fault.fault)
        return None

    def _transport_fault(
        self, fault: int | str, method: str, params: Mapping[str, str]
    ) -> Response | None:
        if fault == "http500":
            return Response(
                500, b"<html><body>500 Internal Server Error</body></html>", "text/html"
            )
        if fault == "http502":
            return Response(502, b"<html><body>502 Bad Gateway</body></html>", "text/html")
        if fault == "timeout":
            return Response(200, b'{"response": []}', delay=self.hang_seconds)
        if fault == "not_json":
            return Response(200, b"<html><body>Service unavailable</body></html>", "text/html")
        if fault == "truncated":
            body = _json_response(
                {"response": {"count": 1, "items": [{"id": 1, "text": "x"}]}}
            ).body
            return Response(200, body[: len(body) // 2])
        return None

    def _error(
        self, code: int, method: str, params: Mapping[str, str], message: str | None = None
    ) -> Response:
        # request_params echo what was sent, access_token included: harsher than VK,
        # so the adapter's scrubbing is tested against the worst case.
        request_params = [{"key": "method", "value": method}, {"key": "oauth", "value": "1"}]
        request_params += [{"key": k, "value": str(v)} for k, v in params.items()]
        error: dict[str, Any] = {
            "error_code": code,
            "error_msg": message or ERROR_MESSAGES.get(code, f"Error {code}"),
            "request_params": request_params,
        }
        if code == 14:
            error["captcha_sid"] = "238482302573"
            error["captcha_img"] = "https://api.vk.ru/captcha.php?sid=238482302573&s=1"
        return _json_response({"error": error})

    def _store_photo(self, owner_id: int, data: bytes) -> _Photo:
        width, height = _image_size(data)
        self._next_photo_id += 1
        photo = _Photo(owner_id, self._next_photo_id, bytes(data), width, height)
        self._photos[f"{owner_id}_{photo.photo_id}"] = photo
        return photo

    def _photo_url(self, photo: _Photo, kind: str, width: int = 0, height: int = 0) -> str:
        key = f"{photo.owner_id}_{photo.photo_id}"
        if kind == "orig":
            return f"{self.photo_base_url}{key}.jpg?quality=96&from=bu"
        return f"{self.photo_base_url}{key}.jpg?size={width}x{height}&quality=95&type={kind}"

    def _photo_json(self, photo: _Photo, post: _Post) -> dict[str, Any]:
        sizes = []
        for letter, limit in _SIZE_LETTERS:
            scale = min(1.0, limit / max(photo.width, photo.height))
            w, h = max(1, round(photo.width * scale)), max(1, round(photo.height * scale))
            sizes.append(
                {
                    "height": h,
                    "type": letter,
                    "width": w,
                    "url": self._photo_url(photo, letter, w, h),
                }
            )
        data: dict[str, Any] = {
            "album_id": -7,
            "date": post.date,
            "id": photo.photo_id,
            "owner_id": photo.owner_id,
            "access_key": "c0ffee0123456789ab",
            "post_id": post.id,
            "sizes": sizes,
            "text": "",
            "user_id": 100,
            "web_view_token": "0123456789abcdef01",
            "has_tags": False,
        }
        if post.with_orig_photo:
            data["orig_photo"] = {
                "height": photo.height,
                "type": "base",
                "url": self._photo_url(photo, "orig"),
                "width": photo.width,
            }
        return data

    def _post_core(self, post: _Post) -> dict[str, Any]:
        return {
            "inner_type": "wall_wallpost",
            "type": "post",
            "attachments": [
                {"type": "photo", "photo": self._photo_json(p, post)} for p in post.photos
            ],
            "date": post.date,
            "from_id": post.owner_id,
            "id": post.id,
            "owner_id": post.owner_id,
            "post_source": {"type": "vk"},
            "post_type": "post",
            "text": post.text,
        }

    def _post_json(self, post: _Post) -> dict[str, Any]:
        item = self._post_core(post)
        count = sum(
            1 for c in self._comments if c.owner_id == post.owner_id and c.post_id == post.id
        )
        item.update(
            {
                "donut": {"is_donut": False},
                "comments": {
                    "can_post": int(post.can_comment),
                    "can_view": 1,
                    "count": count,
                    "groups_can_post": True,
                },
                "marked_as_ads": int(post.marked_as_ads),
                "hash": f"h{post.owner_id}x{post.id}",
                "likes": {
                    "can_like": 1,
                    "count": 0,
                    "user_likes": 0,
                    "can_publish": 1,
                    "repost_disabled": False,
                },
                "reaction_set_id": "reactions",
                "reposts": {"count": 0, "user_reposted": 0},
                "views": {"count": 100},
            }
        )
        if post.is_pinned:
            item["is_pinned"] = 1
        if post.edited is not None:
            item["edited"] = post.edited
        if post.repost_of is not None:
            history = []
            source: tuple[int, int] | None = post.repost_of
            while source is not None:
                original = self._posts.get(source[0], {}).get(source[1])
                if original is None:
                    break
                history.append(self._post_core(original))
                source = original.repost_of
            item["copy_history"] = history
        return item

    def _record_comment(
        self,
        owner_id: int,
        post_id: int,
        text: str,
        from_id: int,
        guid: str | None,
        *,
        created: bool,
    ) -> _Comment:
        comment = _Comment(
            self._next_comment_id, owner_id, post_id, from_id, text, int(time.time()), guid, created
        )
        self._next_comment_id += 1
        self._comments.append(comment)
        return comment

    def _wall_get(self, owner_id: int, offset: int, count: int) -> dict[str, Any]:
        if count > 100 or count < 0 or offset < 0:
            raise _VkFailure(100, "One of the parameters specified was missing or invalid: count")
        group = self._groups.get(-owner_id) if owner_id < 0 else None
        if group is None:
            raise _VkFailure(
                100, "One of the parameters specified was missing or invalid: owner_id is undefined"
            )
        if group.deactivated:
            raise _VkFailure(15, "Access denied: group is blocked")
        if group.is_closed:
            raise _VkFailure(15)
        posts = sorted(
            self._posts[group.id].values(), key=lambda p: (not p.is_pinned, -p.date, -p.id)
        )
        return {
            "count": len(posts),
            "items": [self._served_item(p) for p in posts[offset : offset + count]],
        }

    def _served_item(self, post: _Post) -> Any:
        """A post's `wall.get` item, passed through its mutation when a test set one."""
        item = self._post_json(post)
        mutate = self._item_mutations.get((-post.owner_id, post.id))
        return item if mutate is None else mutate(item)

    def _group_by_ref(self, ref: str) -> _Group | None:
        ref = ref.strip()
        match = re.fullmatch(r"(?:club|public|event)?(\d+)", ref)
        if match:
            return self._groups.get(int(match.group(1)))
        for group in self._groups.values():
            if group.screen_name == ref:
                return group
        return None


class _VkFailure(Exception):
    def __init__(self, code: int, message: str | None = None):
        super().__init__(code)
        self.code = code
        self.message = message or ERROR_MESSAGES.get(code, f"Error {code}")


def _json_response(payload: Any) -> Response:
    import json

    try:
        body = json.dumps(payload, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate travels escaped, as "\ud800"
        body = json.dumps(payload).encode("ascii")
    return Response(200, body)


def _image_size(data: bytes) -> tuple[int, int]:
    try:
        from PIL import Image

        with Image.open(io.BytesIO(data)) as image:
            return image.size
    except Exception:  # test bytes need not be a real image
        return 1280, 960


def _int(params: Mapping[str, str], key: str, default: int | None = None) -> int:
    value = params.get(key)
    if value is None or value == "":
        if default is None:
            raise _VkFailure(
                100, f"One of the parameters specified was missing or invalid: {key} is undefined"
            )
        return default
    try:
        return int(value)
    except ValueError as exc:
        raise _VkFailure(
            100, f"One of the parameters specified was missing or invalid: {key} not integer"
        ) from exc


def _m_wall_get(vk: FakeVk, params: Mapping[str, str]) -> Any:
    return vk._wall_get(
        _int(params, "owner_id"), _int(params, "offset", 0), _int(params, "count", 20)
    )


def _m_execute(vk: FakeVk, params: Mapping[str, str]) -> Any:
    code = (params.get("code") or "").strip()
    if _COMMENTS_CODE.match(code):
        return _m_execute_comments(vk, code)
    match = _EXECUTE_CODE.match(code)
    calls = _WALL_GET_CALL.findall(match.group(1)) if match else []
    if not match or len(calls) != match.group(1).count("API."):
        raise _VkFailure(
            12, "Unable to compile code: the fake VK understands only the wall.get batch"
        )
    if len(calls) > 25:
        raise _VkFailure(13, "Runtime error occurred during code invocation: Too many API calls")
    results: list[Any] = []
    errors: list[dict[str, Any]] = []
    for owner, offset, count in calls:
        vk.execute_wall_gets += 1
        fault = vk._take_fault("wall.get", {"owner_id": owner}, nested=True)
        try:
            if isinstance(fault, int):
                raise _VkFailure(fault)
            results.append(vk._wall_get(int(owner), int(offset), int(count)))
        except _VkFailure as failure:
            results.append(False)
            errors.append(
                {"method": "wall.get", "error_code": failure.code, "error_msg": failure.message}
            )
    payload: dict[str, Any] = {"response": results}
    if errors:
        payload["execute_errors"] = errors
    return payload


def _m_groups_get_by_id(vk: FakeVk, params: Mapping[str, str]) -> Any:
    refs = (params.get("group_ids") or params.get("group_id") or "").split(",")
    groups = []
    for ref in refs:
        if not ref.strip():
            continue
        group = vk._group_by_ref(ref)
        if group is None:
            raise _VkFailure(
                100,
                "One of the parameters specified was missing or invalid: group_ids is undefined",
            )
        item: dict[str, Any] = {
            "id": group.id,
            "name": group.name,
            "screen_name": group.screen_name,
            "is_closed": group.is_closed,
            "type": "group",
            "photo_50": f"{vk.photo_base_url}avatar_{group.id}_50.jpg",
            "photo_100": f"{vk.photo_base_url}avatar_{group.id}_100.jpg",
            "photo_200": f"{vk.photo_base_url}avatar_{group.id}_200.jpg",
        }
        if group.deactivated:
            item["deactivated"] = group.deactivated
        groups.append(item)
    if not groups:
        raise _VkFailure(
            100, "One of the parameters specified was missing or invalid: group_ids is undefined"
        )
    return {"groups": groups, "profiles": []}


def _m_resolve_screen_name(vk: FakeVk, params: Mapping[str, str]) -> Any:
    name = (params.get("screen_name") or "").strip()
    if not name:
        raise _VkFailure(
            100, "One of the parameters specified was missing or invalid: screen_name is undefined"
        )
    group = vk._group_by_ref(name)
    if group is None:
        if re.fullmatch(r"id\d+", name):
            return {"object_id": int(name[2:]), "type": "user"}
        return []
    return {"object_id": group.id, "type": "group"}


def _find_post(vk: FakeVk, params: Mapping[str, str]) -> _Post:
    owner_id, post_id = _int(params, "owner_id"), _int(params, "post_id")
    group = vk._groups.get(-owner_id) if owner_id < 0 else None
    if group is None:
        raise _VkFailure(
            100, "One of the parameters specified was missing or invalid: owner_id is undefined"
        )
    if group.is_closed or group.deactivated:
        raise _VkFailure(15)
    post = vk._posts[group.id].get(post_id)
    if post is None:
        raise _VkFailure(
            100, "One of the parameters specified was missing or invalid: post_id is undefined"
        )
    return post


def _comment_json(comment: _Comment) -> dict[str, Any]:
    return {
        "id": comment.id,
        "from_id": comment.from_id,
        "date": comment.date,
        "text": comment.text,
        "post_id": comment.post_id,
        "owner_id": comment.owner_id,
        "parents_stack": [],
        "thread": {
            "count": 0,
            "items": [],
            "can_post": True,
            "show_reply_button": True,
            "groups_can_post": True,
        },
    }


def _m_get_comments(vk: FakeVk, params: Mapping[str, str]) -> Any:
    post = _find_post(vk, params)
    offset, count = _int(params, "offset", 0), _int(params, "count", 10)
    if count > 100:
        raise _VkFailure(100, "One of the parameters specified was missing or invalid: count")
    mine = [c for c in vk._comments if c.owner_id == post.owner_id and c.post_id == post.id]
    if params.get("sort") == "desc":
        mine.reverse()
    return {
        "count": len(mine),
        "items": [_comment_json(c) for c in mine[offset : offset + count]],
        "current_level_count": len(mine),
        "can_post": post.can_comment,
        "show_reply_button": True,
        "groups_can_post": True,
    }


def _m_create_comment(vk: FakeVk, params: Mapping[str, str]) -> Any:
    post = _find_post(vk, params)
    message = params.get("message") or ""
    guid = params.get("guid") or None
    if guid is not None:
        for comment in vk._comments:
            if (
                comment.guid == guid
                and comment.owner_id == post.owner_id
                and comment.post_id == post.id
            ):
                return {"comment_id": comment.id, "parents_stack": []}
    if not post.can_comment:
        raise _VkFailure(213)
    if not message.strip():
        raise _VkFailure(
            100, "One of the parameters specified was missing or invalid: message is undefined"
        )
    group = vk._groups[-post.owner_id]
    if not group.links_allowed and _LINK.search(message):
        raise _VkFailure(222)
    author = vk.token_for(params.get("access_token"))
    from_id = vk.bot_user_id if author is None else comment_author(author, params, vk.bot_user_id)
    comment = vk._record_comment(post.owner_id, post.id, message, from_id, guid, created=True)
    return {"comment_id": comment.id, "parents_stack": []}


def _m_execute_comments(vk: FakeVk, code: str) -> Any:
    """The gateway's comment-paging script: every top-level comment of one post, as VK's
    `execute` would assemble it from up to 25 `wall.getComments` pages."""
    match = _COMMENTS_CODE.match(code)
    assert match is not None  # checked by the caller
    if "API.wall.getComments(" not in match.group(3):
        raise _VkFailure(12, "Unable to compile code: unexpected comment script")
    post = _find_post(vk, {"owner_id": match.group(1), "post_id": match.group(2)})
    vk.calls["execute:wall.getComments"] += 1
    mine = [c for c in vk._comments if c.owner_id == post.owner_id and c.post_id == post.id]
    return {"count": len(mine), "items": [_comment_json(c) for c in mine[:2500]]}


def _m_users_get(vk: FakeVk, params: Mapping[str, str]) -> Any:
    """`users.get` without ids: the user the token belongs to."""
    token = vk.token_for(params.get("access_token"))
    user_id = token.user_id if token is not None and token.user_id is not None else vk.bot_user_id
    return [
        {
            "id": user_id,
            "first_name": "Петмэтч",
            "last_name": "Бот",
            "can_access_closed": True,
            "is_closed": False,
        }
    ]


_HANDLERS = {
    "wall.get": _m_wall_get,
    "execute": _m_execute,
    "groups.getById": _m_groups_get_by_id,
    "utils.resolveScreenName": _m_resolve_screen_name,
    "wall.getComments": _m_get_comments,
    "wall.createComment": _m_create_comment,
    "users.get": _m_users_get,
}
_HANDLERS.update(token_methods(_m_groups_get_by_id))
