"""petmatch's VK errors. The adapter maps every `vk_api` / HTTP failure to one of these.

VkError                      any failure talking to VK; `.code` is VK's error_code or None
├── TokenError               5, 17, 27: dead or wrong token; polling stops and says so
├── GroupNotFoundError       `resolve_group` found no such community
├── CaptchaError             9, 14: flood control / captcha; all writes pause for hours
├── GroupAccessError         15, 18, 19, 30, 203: the group is closed, banned or private
├── MethodPausedError        29: the method's daily limit is hit; pause it for 24 h
├── VkBugError               100, 113 (and 8, 12, 13): our request is wrong; reported as a bug
├── CommentRejectedError     212, 213, 223: this post cannot take our comment; skip it
│   └── LinkRejectedError    222: links are not allowed; retry without the link
├── TransientVkError         1, 6, 10, HTTP 5xx, timeouts after the retries ran out
├── MalformedResponseError   a body that is not VK's JSON envelope
└── PhotoDownloadError       a photo that is off the allowlist, too big, not an image, 404…
"""

from __future__ import annotations


class VkError(Exception):
    """A failure talking to VK. Messages never contain the access token."""

    def __init__(self, message: str, *, code: int | None = None, method: str | None = None):
        super().__init__(message)
        self.code = code
        self.method = method


class TokenError(VkError):
    """The token is dead, wrong or lacks rights (VK errors 5, 17, 27)."""


class GroupNotFoundError(VkError):
    """No community answers to this reference (unknown screen name, a user, a bad id)."""


class CaptchaError(VkError):
    """VK asks for a captcha or throttles writes (9, 14); never solved, writes pause."""


class GroupAccessError(VkError):
    """The group cannot be read (15, 18, 19, 30, 203)."""


class MethodPausedError(VkError):
    """A method hit its daily limit (29)."""


class VkBugError(VkError):
    """VK says our request is malformed (100, 113): a bug in petmatch."""


class CommentRejectedError(VkError):
    """The post does not accept our comment (212, 213, 223)."""


class LinkRejectedError(CommentRejectedError):
    """The comment was refused because it carries a link (222)."""


class TransientVkError(VkError):
    """Temporary trouble that outlasted the retries (1, 6, 10, HTTP 5xx, timeouts)."""


class MalformedResponseError(VkError):
    """The body is not a VK JSON envelope (truncated, HTML, empty)."""


class PhotoDownloadError(VkError):
    """A photo could not be fetched or is not an acceptable image.

    `.reason` is a short machine-readable tag: `not_allowed_host`, `bad_url`, `redirect`,
    `too_large`, `http_<status>`, `not_image`, `timeout`, `connection`, `corrupt`,
    `too_many_pixels`.
    """

    def __init__(self, message: str, *, reason: str = "unknown", url: str | None = None):
        super().__init__(message)
        self.reason = reason
        self.url = url
