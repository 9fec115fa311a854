"""The desk's security pieces: password hashing, the session key, CSRF tokens, a cross-site
request refusal as middleware, the login rate limit, and scrubbing the VK token from text."""

from __future__ import annotations

import hmac
import os
import secrets
import threading
import time
from collections.abc import Callable
from pathlib import Path

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from starlette.requests import HTTPConnection
from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Receive, Scope, Send

__all__ = [
    "CSRF_FIELD",
    "CrossSiteRefusal",
    "LoginLimiter",
    "csrf_token",
    "csrf_valid",
    "hash_password",
    "load_secret_key",
    "scrub",
    "verify_password",
    "verify_unknown_user",
]

CSRF_FIELD = "csrf_token"
MIN_PASSWORD_LENGTH = 8

_HASHER = PasswordHasher()  # argon2id with the library's maintained defaults


def hash_password(password: str) -> str:
    """An argon2id hash; refuses passwords too short to resist guessing."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ValueError(f"the password needs at least {MIN_PASSWORD_LENGTH} characters")
    return _HASHER.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return _HASHER.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


# A fixed hash to verify against when the user does not exist, so that an unknown name takes
# as long as a wrong password and names cannot be probed by timing.
_DUMMY_HASH = _HASHER.hash("petmatch-no-such-user")


def verify_unknown_user(password: str) -> bool:
    verify_password(_DUMMY_HASH, password)
    return False


def load_secret_key(path: Path) -> str:
    """The key that signs session cookies: read from `path`, created there (mode 0600) on
    first start so that sessions survive a restart."""
    if path.is_file():
        key = path.read_text(encoding="utf-8").strip()
        if len(key) >= 32:
            return key
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(48)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(key + "\n")
    return key


def csrf_token(session: dict) -> str:
    """The session's CSRF token (made on first use); every form carries it."""
    token = session.get(CSRF_FIELD)
    if not token:
        token = secrets.token_urlsafe(32)
        session[CSRF_FIELD] = token
    return str(token)


def csrf_valid(session: dict, submitted: object) -> bool:
    expected = session.get(CSRF_FIELD)
    return (
        isinstance(expected, str)
        and isinstance(submitted, str)
        and hmac.compare_digest(expected, submitted)
    )


class CrossSiteRefusal:
    """Refuses unsafe requests (POST...) another site's page sent, by the browser's
    `Sec-Fetch-Site` and `Origin` headers; the per-form token is checked in the views too."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] not in ("GET", "HEAD", "OPTIONS"):
            connection = HTTPConnection(scope)
            site = connection.headers.get("sec-fetch-site")
            origin = connection.headers.get("origin")
            host = connection.headers.get("host", "")
            cross = site is not None and site not in ("same-origin", "none")
            if origin and origin != "null" and origin.split("://", 1)[-1] != host:
                cross = True
            if cross:
                response = PlainTextResponse("Запрос с другого сайта отклонён.", status_code=403)
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


class LoginLimiter:
    """After `allowed` failed logins for one name or one address, further attempts are refused
    for `lockout` seconds, doubling with each further failure (in memory: one desk process)."""

    def __init__(
        self, allowed: int, lockout: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._allowed = allowed
        self._lockout = lockout
        self._clock = clock
        self._lock = threading.Lock()
        self._failures: dict[str, tuple[int, float]] = {}

    def wait_seconds(self, *keys: str) -> float:
        """How long these keys must wait before the next attempt (0: go ahead)."""
        now = self._clock()
        with self._lock:
            return max((self._wait(k, now) for k in keys), default=0.0)

    def _wait(self, key: str, now: float) -> float:
        count, last = self._failures.get(key, (0, 0.0))
        if count < self._allowed:
            return 0.0
        penalty = self._lockout * 2 ** (count - self._allowed)
        return max(0.0, last + penalty - now)

    def failed(self, *keys: str) -> None:
        now = self._clock()
        with self._lock:
            for key in keys:
                count, _ = self._failures.get(key, (0, 0.0))
                self._failures[key] = (count + 1, now)

    def succeeded(self, *keys: str) -> None:
        with self._lock:
            for key in keys:
                self._failures.pop(key, None)


def scrub(text: str | None, secrets_to_hide: tuple[str, ...]) -> str:
    """`text` with every secret (the VK token) replaced, for anything a page shows."""
    out = text or ""
    for secret in secrets_to_hide:
        if secret:
            out = out.replace(secret, "***")
    return out
