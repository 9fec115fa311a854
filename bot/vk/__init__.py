"""VK behind a seam: the `VkGateway` protocol, its `vk_api` adapter and petmatch's VK errors.

`VkApiGateway` (and `check_image`) load lazily so that importing the models stays cheap.
"""

from typing import Any

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
from bot.vk.models import (
    GroupInfo,
    PhotoRef,
    SkippedItem,
    VkComment,
    VkGateway,
    WallPage,
    WallPost,
    WallRequest,
)

__all__ = [
    "CaptchaError",
    "CommentRejectedError",
    "GroupAccessError",
    "GroupInfo",
    "GroupNotFoundError",
    "LinkRejectedError",
    "MalformedResponseError",
    "MethodPausedError",
    "PhotoDownloadError",
    "PhotoRef",
    "SkippedItem",
    "TokenError",
    "TransientVkError",
    "VkApiGateway",
    "VkBugError",
    "VkComment",
    "VkError",
    "VkGateway",
    "WallPage",
    "WallPost",
    "WallRequest",
    "check_image",
]


def __getattr__(name: str) -> Any:
    if name == "VkApiGateway":
        from bot.vk.gateway import VkApiGateway

        return VkApiGateway
    if name == "check_image":
        from bot.vk._photo import check_image

        return check_image
    raise AttributeError(f"module 'bot.vk' has no attribute {name!r}")
