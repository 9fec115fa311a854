"""`VkApiGateway`: the one real `VkGateway`, built on `vk_api` and `requests`.

Every failure is translated into `bot.vk.errors` in one place (`_translate` and
`error_for_code`), retried (bounded, exponential backoff with jitter) when it is transient,
and scrubbed of the access token before anyone can print it.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, date, datetime
from typing import Any
from urllib.parse import urljoin

import requests
import vk_api
from jconfig.memory import MemoryConfig
from pydantic import SecretStr
from vk_api.exceptions import CAPTCHA_ERROR_CODE

from bot.config import VkSettings
from bot.vk._deadline import DeadlineAdapter, DeadlineExceededError, chunks_within
from bot.vk._parse import parse_comments, parse_group, parse_wall_page
from bot.vk._photo import host_allowed, sniff_image_type, url_host
from bot.vk._refs import parse_group_ref
from bot.vk.errors import (
    CaptchaError,
    CommentRejectedError,
    GroupAccessError,
    GroupNotFoundError,
    LinkRejectedError,
    MalformedResponseError,
    MethodPausedError,
    PhotoDownloadError,
    TokenError,
    TransientVkError,
    VkBugError,
    VkError,
)
from bot.vk.models import GroupInfo, VkComment, WallPage, WallRequest

__all__ = [
    "MAX_COMMENT_PAGES",
    "VK_METHOD_URL",
    "PhotoDownloader",
    "VkApiGateway",
    "all_comments_code",
    "error_for_code",
    "wall_get_code",
]

logger = logging.getLogger("petmatch.vk")

#: Where `vk_api` sends every method call (hard-coded in `VkApi.method`); we re-route it.
VK_METHOD_URL = "https://api.vk.ru/method/"

_CODE_TO_ERROR: dict[int, type[VkError]] = {
    1: TransientVkError,
    6: TransientVkError,
    10: TransientVkError,
    5: TokenError,
    17: TokenError,
    27: TokenError,
    28: TokenError,
    9: CaptchaError,
    14: CaptchaError,
    15: GroupAccessError,
    18: GroupAccessError,
    19: GroupAccessError,
    30: GroupAccessError,
    203: GroupAccessError,
    29: MethodPausedError,
    8: VkBugError,
    12: VkBugError,
    13: VkBugError,
    100: VkBugError,
    113: VkBugError,
    212: CommentRejectedError,
    213: CommentRejectedError,
    223: CommentRejectedError,
    222: LinkRejectedError,
}

#: What a role-bound gateway refuses: the reader never comments, the commenter never polls.
_REFUSED_BY_ROLE = {"read": {"wall.createComment"}, "comment": {"wall.get", "execute"}}

_USER_AGENT = "petmatch/0.1 (+https://github.com/petmatch)"
_MAX_REDIRECTS = 3
_CHUNK = 64 * 1024


def error_for_code(code: int, message: str, *, method: str | None) -> VkError:
    """VK's `error_code` → petmatch's error (not raised; the caller chains it)."""
    cls = _CODE_TO_ERROR.get(code, VkError)
    where = f"{method}: " if method else ""
    return cls(f"{where}VK error {code}: {message}", code=code, method=method)


def wall_get_code(requests_: Sequence[WallRequest]) -> str:
    """The VKScript the gateway sends to `execute`: one `API.wall.get` per wall, in a fixed
    form (the fake VK server parses exactly this)."""
    calls = ", ".join(
        f'API.wall.get({{"owner_id": {r.owner_id}, "offset": {r.offset}, "count": {r.count}}})'
        for r in requests_
    )
    return f"return [{calls}];"


#: `execute` allows 25 API calls: one comment-reading `execute` pages through 2,500 comments.
MAX_COMMENT_PAGES = 25


def all_comments_code(owner_id: int, post_id: int) -> str:
    """The VKScript that pages through a post's top-level comments in one `execute` call
    (100 a page, oldest first), in a fixed form the fake VK server parses."""
    page = (
        f'API.wall.getComments({{"owner_id": {int(owner_id)}, "post_id": {int(post_id)}, '
        '"offset": offset, "count": 100, "sort": "asc"})'
    )
    return (
        "var offset = 0;\n"
        f"var page = {page};\n"
        "var items = page.items;\n"
        "var total = page.current_level_count;\n"
        "var calls = 1;\n"
        f"while (calls < {MAX_COMMENT_PAGES} && offset + 100 < total) {{\n"
        "  offset = offset + 100;\n"
        f"  items = items + {page}.items;\n"
        "  calls = calls + 1;\n"
        "}\n"
        'return {"count": total, "items": items};'
    )


class _ApiAdapter(DeadlineAdapter):
    """Re-routes `https://api.vk.ru/method/...` to the configured API URL, applies a default
    timeout (vk_api passes none) and reads the body against an overall deadline."""

    def __init__(self, api_url: str, timeout: float, deadline: float | None = None):
        super().__init__(deadline)
        self._api_url = api_url if api_url.endswith("/") else api_url + "/"
        self._timeout = timeout
        self._deadline = deadline

    def send(self, request, stream=False, timeout=None, verify=True, cert=None, proxies=None):  # type: ignore[override]
        if request.url and request.url.startswith(VK_METHOD_URL):
            request.url = self._api_url + request.url[len(VK_METHOD_URL) :]
        started = time.monotonic()
        response = super().send(
            request,
            stream=stream or self._deadline is not None,
            timeout=self._timeout if timeout is None else timeout,
            verify=verify,
            cert=cert,
            proxies=proxies,
        )
        if stream or self._deadline is None:
            return response
        try:
            body = b"".join(chunks_within(response.raw, deadline=started + self._deadline))
        except BaseException:
            response.close()
            raise
        response._content = body
        response._content_consumed = True
        response.raw.release_conn()
        return response


def _refuse_captcha(captcha: Exception) -> None:
    """petmatch never solves captchas: re-raise so the call fails with CaptchaError."""
    raise captcha


class _RateLimiter:
    """At most `rate` requests per second: consecutive requests are spaced 1/rate apart."""

    def __init__(self, rate: float, clock: Callable[[], float], sleep: Callable[[float], Any]):
        self._interval = 1.0 / rate
        self._clock = clock
        self._sleep = sleep
        self._next = float("-inf")
        self._lock = threading.Lock()

    def wait(self) -> None:
        with self._lock:
            now = self._clock()
            if now < self._next:
                self._sleep(self._next - now)
                now = self._clock()
            self._next = max(now, self._next) + self._interval


class VkApiGateway:
    """petmatch's `VkGateway` over `vk_api` (API 5.199).

    `sleep`, `clock` and `rng` are injectable so tests control rate limiting and backoff;
    `today` (UTC date by default) decides when `calls_today` starts over.
    """

    def __init__(
        self,
        settings: VkSettings,
        *,
        session: requests.Session | None = None,
        sleep: Callable[[float], Any] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
        today: Callable[[], date] | None = None,
        token: SecretStr | None = None,
        from_group: int | None = None,
        role: str | None = None,
    ):
        if token is None:
            from bot.vk.credentials import read_credential

            token = read_credential(settings).secret
        self._settings = settings
        self._token = token.get_secret_value()
        # Comments go out as this community (`from_group`); None: as the token's owner.
        self.from_group = from_group
        self._role = role
        self._sleep = sleep
        self._rng = rng if rng is not None else random.Random()
        self._today = today or (lambda: datetime.now(UTC).date())
        self._limiter = _RateLimiter(settings.rate_limit_per_second, clock, sleep)
        self._owns_session = session is None
        self._http = session if session is not None else requests.Session()
        self._http.headers.setdefault("User-Agent", _USER_AGENT)
        photo_adapter = DeadlineAdapter(settings.photo_deadline_seconds)
        for scheme in ("http://", "https://"):
            self._http.mount(scheme, photo_adapter)  # photo hosts: heads end at the deadline
        self._http.mount(
            VK_METHOD_URL,
            _ApiAdapter(
                settings.api_url,
                settings.request_timeout_seconds,
                settings.call_deadline_seconds,
            ),
        )
        self._photos = PhotoDownloader(settings, session=self._http, sleep=sleep, rng=self._rng)
        self._vk = vk_api.VkApi(
            token=self._token,
            api_version=settings.api_version,
            session=self._http,
            config=MemoryConfig,
            captcha_handler=_refuse_captcha,
        )
        # Our limiter replaces vk_api's fixed 0.34 s wall-clock delay.
        self._vk.RPS_DELAY = 0
        # vk_api retries error 6 forever and hands 17 to a stub: keep only a captcha
        # handler that refuses, so everything else reaches `_translate`.
        self._vk.error_handlers = {CAPTCHA_ERROR_CODE: _refuse_captcha}
        self._counter_lock = threading.Lock()
        self.calls_day: date = self._today()
        self.calls_today: Counter[str] = Counter()
        self._own_user_id: int | None = None
        self._own_user_checked = False

    def __repr__(self) -> str:
        role = f", role={self._role!r}" if self._role else ""
        return f"VkApiGateway(api_url={self._settings.api_url!r}{role})"

    def close(self) -> None:
        """Close the HTTP session if the gateway created it."""
        if self._owns_session:
            self._http.close()

    def __enter__(self) -> VkApiGateway:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # ---- the VkGateway protocol -------------------------------------------------------

    def resolve_group(self, ref: str) -> GroupInfo:
        """A URL, screen name or numeric id → the community (ValueError for a bad reference)."""
        parsed = parse_group_ref(ref)
        if isinstance(parsed, str):
            found = self._call("utils.resolveScreenName", {"screen_name": parsed})
            if not isinstance(found, Mapping) or not found:
                raise GroupNotFoundError(f"no VK community is called {parsed!r}")
            kind = found.get("type")
            if kind not in ("group", "page", "event"):
                raise GroupNotFoundError(f"{parsed!r} is a VK {kind}, not a community")
            group_id = int(found["object_id"])
        else:
            group_id = parsed
        try:
            response = self._call("groups.getById", {"group_id": group_id})
        except VkBugError as exc:
            raise GroupNotFoundError(
                f"no VK community with id {group_id} ({exc})", code=exc.code, method=exc.method
            ) from exc
        groups = response.get("groups") if isinstance(response, Mapping) else response
        if not isinstance(groups, list):
            raise MalformedResponseError(
                "groups.getById: expected {groups: [...]}", method="groups.getById"
            )
        if not groups:
            raise GroupNotFoundError(f"no VK community with id {group_id}")
        return parse_group(groups[0])

    def fetch_wall(self, owner_id: int, offset: int = 0, count: int = 100) -> WallPage:
        """One `wall.get` page (newest first; a pinned post comes first on page one)."""
        response = self._call("wall.get", {"owner_id": owner_id, "offset": offset, "count": count})
        return parse_wall_page(owner_id, response)

    def fetch_walls(self, requests: Sequence[WallRequest]) -> dict[int, WallPage | Exception]:
        """Up to `walls_per_execute` walls in one `execute`; a failed wall maps to its
        VkError while the others still come back. The whole call raises only when
        `execute` itself fails."""
        batch = list(requests)
        if not batch:
            return {}
        if len(batch) > self._settings.walls_per_execute:
            raise ValueError(
                f"{len(batch)} walls in one execute; the limit is "
                f"{self._settings.walls_per_execute}"
            )
        owners = [r.owner_id for r in batch]
        if len(set(owners)) != len(owners):
            raise ValueError("each wall may appear once per execute batch")
        for r in batch:
            if not 1 <= r.count <= 100 or r.offset < 0:
                raise ValueError(f"wall.get count must be 1..100 and offset ≥ 0, got {r}")
        envelope = self._call(
            "execute", {"code": wall_get_code(batch)}, raw=True, nested_wall_gets=len(batch)
        )
        results = envelope.get("response")
        if not isinstance(results, list) or len(results) != len(batch):
            raise MalformedResponseError(
                f"execute: expected a list of {len(batch)} results", method="execute"
            )
        errors = [e for e in envelope.get("execute_errors") or () if isinstance(e, Mapping)]
        pages: dict[int, WallPage | Exception] = {}
        for request, result in zip(batch, results, strict=True):
            if result is False or result is None:
                pages[request.owner_id] = self._wall_error(request.owner_id, errors)
                continue
            try:
                pages[request.owner_id] = parse_wall_page(request.owner_id, result)
            except VkError as exc:
                pages[request.owner_id] = exc
        return pages

    def get_comments(self, owner_id: int, post_id: int) -> list[VkComment]:
        """Top-level comments of a post, oldest first (up to 1000)."""
        comments: list[VkComment] = []
        for offset in range(0, 1000, 100):
            response = self._call(
                "wall.getComments",
                {
                    "owner_id": owner_id,
                    "post_id": post_id,
                    "offset": offset,
                    "count": 100,
                    "sort": "asc",
                },
            )
            page = parse_comments(response)
            comments.extend(page)
            total = response.get("current_level_count", response.get("count", 0))
            if len(page) < 100 or len(comments) >= int(total):
                break
        return comments

    def read_all_comments(self, owner_id: int, post_id: int) -> list[VkComment]:
        """Every top-level comment of a post (up to 2,500), oldest first, in ONE `execute`
        call: the duplicate check before a comment costs one call whatever the thread size."""
        response = self._call("execute", {"code": all_comments_code(owner_id, post_id)})
        return parse_comments(response, method="execute(wall.getComments)")

    def own_user_id(self) -> int | None:
        """The id of the user the token belongs to (`users.get`), asked once; None when the
        token is not a user's (a service or community key answers no user)."""
        if not self._own_user_checked:
            try:
                users = self._call("users.get", {})
            except VkError as exc:
                logger.info("users.get gave no user for the token (%s)", exc)
                users = None
            first = users[0] if isinstance(users, list) and users else None
            try:
                self._own_user_id = int(first["id"]) if isinstance(first, Mapping) else None
            except (KeyError, TypeError, ValueError):
                self._own_user_id = None
            self._own_user_checked = True
        return self._own_user_id

    def create_comment(self, owner_id: int, post_id: int, message: str, *, guid: str) -> int:
        """`wall.createComment`; `guid` makes a retried call return the same comment."""
        params: dict[str, Any] = {
            "owner_id": owner_id,
            "post_id": post_id,
            "message": message,
            "guid": guid,
        }
        if self.from_group is not None:
            params["from_group"] = self.from_group
        response = self._call("wall.createComment", params)
        try:
            return int(response["comment_id"])
        except (KeyError, TypeError, ValueError) as exc:
            raise MalformedResponseError(
                "wall.createComment: no comment_id in the response", method="wall.createComment"
            ) from exc

    def download_photo(self, url: str) -> bytes:
        """Fetch a photo from an allow-listed host (`PhotoDownloader.download_photo`)."""
        return self._photos.download_photo(url)

    def call_method(self, method: str, params: Mapping[str, Any] | None = None) -> Any:
        """Any API method, with the same limits, retries and error translation (for checks
        such as `petmatch doctor`)."""
        return self._call(method, dict(params or {}))

    # ---- internals --------------------------------------------------------------------

    def _count(self, method: str, nested_wall_gets: int) -> None:
        with self._counter_lock:
            today = self._today()
            if today != self.calls_day:
                self.calls_day = today
                self.calls_today.clear()
            self.calls_today[method] += 1
            if nested_wall_gets:
                self.calls_today["wall.get"] += nested_wall_gets

    def _backoff(self, attempt: int) -> float:
        ceiling = min(
            self._settings.backoff_max_seconds, self._settings.backoff_base_seconds * 2**attempt
        )
        return ceiling / 2 + self._rng.uniform(0, ceiling / 2)

    def _call(
        self,
        method: str,
        params: dict[str, Any],
        *,
        raw: bool = False,
        nested_wall_gets: int = 0,
    ) -> Any:
        """One API method with rate limiting, bounded retries and error translation."""
        if self._role is not None and method in _REFUSED_BY_ROLE.get(self._role, ()):
            raise VkBugError(f"{method}: the {self._role} token never calls it", method=method)
        attempt = 0
        while True:
            self._limiter.wait()
            self._count(method, nested_wall_gets)
            try:
                envelope = self._vk.method(method, params, raw=True)
            except Exception as exc:  # every vk_api/requests failure is translated here
                error = self._translate(method, exc)
                if not isinstance(error, TransientVkError) or attempt >= self._settings.max_retries:
                    if isinstance(error, TransientVkError) and attempt:
                        error = TransientVkError(
                            f"{error} (gave up after {attempt + 1} attempts)",
                            code=error.code,
                            method=method,
                        )
                    raise error from exc
                delay = self._backoff(attempt)
                logger.warning(
                    "%s retry %d/%d in %.2fs",
                    error,
                    attempt + 1,
                    self._settings.max_retries,
                    delay,
                )
                self._sleep(delay)
                attempt += 1
                continue
            if not isinstance(envelope, dict) or "response" not in envelope:
                raise MalformedResponseError(
                    f"{method}: the body is not a VK envelope ({type(envelope).__name__})",
                    method=method,
                )
            return envelope if raw else envelope["response"]

    def _scrub(self, text: str) -> str:
        return text.replace(self._token, "***") if self._token else text

    def _scrub_exception(self, exc: BaseException) -> None:
        """vk_api keeps the request params (with `access_token`) on its exceptions."""
        values = getattr(exc, "values", None)
        if isinstance(values, dict) and "access_token" in values:
            exc.values = {**values, "access_token": "***"}  # type: ignore[attr-defined]
        if isinstance(values, dict) and "token" in values:  # secure.checkToken's argument
            exc.values = {**exc.values, "token": "***"}  # type: ignore[attr-defined]
        error = getattr(exc, "error", None)
        if isinstance(error, dict):
            params = error.get("request_params")
            if isinstance(params, list):
                error["request_params"] = [
                    {**p, "value": "***"}
                    if isinstance(p, dict) and p.get("key") in ("access_token", "token")
                    else p
                    for p in params
                ]
        kwargs = getattr(exc, "kwargs", None)
        if isinstance(kwargs, dict) and isinstance(kwargs.get("values"), dict):
            kwargs["values"] = {**kwargs["values"], "access_token": "***"}
            if "token" in kwargs["values"]:
                kwargs["values"]["token"] = "***"
        response = getattr(exc, "response", None)
        request = getattr(response, "request", None)
        if request is not None and getattr(request, "body", None):
            request.body = None

    def _translate(self, method: str, exc: Exception) -> VkError:
        """The one place where vk_api / requests failures become petmatch errors."""
        self._scrub_exception(exc)
        if isinstance(exc, VkError):
            return exc
        if isinstance(exc, vk_api.Captcha):
            return CaptchaError(
                f"{method}: VK asks for a captcha (never solved)", code=14, method=method
            )
        if isinstance(exc, vk_api.ApiError):
            message = str(exc.error.get("error_msg", "")) if isinstance(exc.error, dict) else ""
            return error_for_code(int(exc.code), self._scrub(message), method=method)
        if isinstance(exc, vk_api.ApiHttpError):
            status = exc.response.status_code
            if status >= 500 or status == 429:
                return TransientVkError(f"{method}: HTTP {status}", method=method)
            return VkError(f"{method}: HTTP {status}", method=method)
        if isinstance(exc, requests.exceptions.JSONDecodeError | ValueError):
            return MalformedResponseError(
                f"{method}: the body is not JSON ({type(exc).__name__})", method=method
            )
        if isinstance(exc, DeadlineExceededError):
            return TransientVkError(
                f"{method}: no complete answer within "
                f"{self._settings.call_deadline_seconds:g}s (deadline)",
                method=method,
            )
        if isinstance(exc, requests.Timeout):
            return TransientVkError(f"{method}: timed out", method=method)
        if isinstance(
            exc,
            requests.ConnectionError
            | requests.exceptions.ChunkedEncodingError
            | requests.exceptions.ContentDecodingError,
        ):
            return TransientVkError(
                f"{method}: connection failed ({type(exc).__name__})", method=method
            )
        if isinstance(exc, requests.RequestException):
            return VkError(f"{method}: request failed ({type(exc).__name__})", method=method)
        return VkError(
            f"{method}: unexpected failure ({type(exc).__name__}: {self._scrub(str(exc))[:200]})",
            method=method,
        )

    def _wall_error(self, owner_id: int, errors: list[Mapping[str, Any]]) -> VkError:
        """The next `execute_errors` entry (they come in the order of the failed calls)."""
        if not errors:
            return VkError(f"wall.get for {owner_id} failed without an error", method="wall.get")
        entry = errors.pop(0)
        try:
            code = int(entry.get("error_code", 0))
        except (TypeError, ValueError):
            code = 0
        message = self._scrub(str(entry.get("error_msg", "")))
        method = str(entry.get("method") or "wall.get")
        return error_for_code(code, f"{message} (wall {owner_id})", method=method)


class PhotoDownloader:
    """Photo downloads on their own: photo hosts need no token, so a vision worker (which
    holds none) downloads with exactly the gateway's checks: an allow-listed host, no
    redirects off the list, a byte cap, image content only, a deadline from send to last
    byte, and transient failures retried with backoff. `VkApiGateway` downloads through one.
    """

    def __init__(
        self,
        settings: VkSettings,
        *,
        session: requests.Session | None = None,
        sleep: Callable[[float], Any] = time.sleep,
        rng: random.Random | None = None,
    ) -> None:
        self._settings = settings
        self._sleep = sleep
        self._rng = rng if rng is not None else random.Random()
        self._owns_session = session is None
        if session is None:
            session = requests.Session()
            session.headers.setdefault("User-Agent", _USER_AGENT)
            adapter = DeadlineAdapter(settings.photo_deadline_seconds)
            for scheme in ("http://", "https://"):
                session.mount(scheme, adapter)  # photo hosts: heads end at the deadline
        self._http = session

    def close(self) -> None:
        """Close the HTTP session if the downloader created it."""
        if self._owns_session:
            self._http.close()

    def __enter__(self) -> PhotoDownloader:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def download_photo(self, url: str) -> bytes:
        """Fetch a photo from an allow-listed host: no redirects off the list, streamed with a
        byte cap, image content only. Transient failures are retried like API calls."""
        attempt = 0
        while True:
            try:
                return self._download_once(url)
            except PhotoDownloadError as exc:
                transient = exc.reason in ("timeout", "connection") or exc.reason.startswith(
                    "http_5"
                )
                if not transient or attempt >= self._settings.max_retries:
                    raise
                delay = self._backoff(attempt)
                logger.warning(
                    "photo download failed (%s), retry %d/%d in %.2fs",
                    exc.reason,
                    attempt + 1,
                    self._settings.max_retries,
                    delay,
                )
                self._sleep(delay)
                attempt += 1

    def _backoff(self, attempt: int) -> float:
        ceiling = min(
            self._settings.backoff_max_seconds, self._settings.backoff_base_seconds * 2**attempt
        )
        return ceiling / 2 + self._rng.uniform(0, ceiling / 2)

    def _download_once(self, url: str) -> bytes:
        current = url
        allow = self._settings.photo_hosts
        timeout = self._settings.photo_timeout_seconds
        deadline = time.monotonic() + self._settings.photo_deadline_seconds
        for _hop in range(_MAX_REDIRECTS + 1):
            host = url_host(current)
            if not host_allowed(host, allow):
                raise PhotoDownloadError(
                    f"photo host {host!r} is not on the allowlist",
                    reason="not_allowed_host",
                    url=url,
                )
            try:
                response = self._http.get(
                    current, stream=True, timeout=timeout, allow_redirects=False
                )
            except requests.Timeout as exc:
                raise PhotoDownloadError(
                    f"photo timed out after {timeout}s", reason="timeout", url=url
                ) from exc
            except requests.RequestException as exc:
                raise PhotoDownloadError(
                    f"photo connection failed ({type(exc).__name__})", reason="connection", url=url
                ) from exc
            with response:
                if response.is_redirect:
                    location = response.headers.get("Location", "")
                    current = urljoin(current, location)
                    continue
                return self._read_photo(response, url, deadline)
        raise PhotoDownloadError("too many redirects", reason="redirect", url=url)

    def _read_photo(self, response: requests.Response, url: str, deadline: float) -> bytes:
        cap = self._settings.max_photo_bytes
        if response.status_code != 200:
            raise PhotoDownloadError(
                f"photo answered HTTP {response.status_code}",
                reason=f"http_{response.status_code}",
                url=url,
            )
        content_type = response.headers.get("Content-Type", "").split(";")[0].strip().lower()
        if not content_type.startswith("image/"):
            raise PhotoDownloadError(
                f"photo has content type {content_type or 'none'!r}", reason="not_image", url=url
            )
        declared = response.headers.get("Content-Length")
        if declared and declared.isdigit() and int(declared) > cap:
            raise PhotoDownloadError(
                f"photo declares {declared} bytes, over the cap of {cap}",
                reason="too_large",
                url=url,
            )
        chunks: list[bytes] = []
        size = 0
        try:
            for chunk in chunks_within(response.raw, deadline=deadline, chunk_size=_CHUNK):
                size += len(chunk)
                if size > cap:
                    raise PhotoDownloadError(
                        f"photo is over the cap of {cap} bytes", reason="too_large", url=url
                    )
                chunks.append(chunk)
        except DeadlineExceededError as exc:
            raise PhotoDownloadError(
                f"photo did not arrive within {self._settings.photo_deadline_seconds:g}s "
                "(deadline)",
                reason="timeout",
                url=url,
            ) from exc
        except requests.Timeout as exc:
            raise PhotoDownloadError("photo timed out mid-body", reason="timeout", url=url) from exc
        except requests.RequestException as exc:
            raise PhotoDownloadError(
                f"photo body broke off ({type(exc).__name__})", reason="connection", url=url
            ) from exc
        data = b"".join(chunks)
        if sniff_image_type(data[:16]) is None:
            raise PhotoDownloadError(
                "photo bytes are not a known image format", reason="not_image", url=url
            )
        return data
