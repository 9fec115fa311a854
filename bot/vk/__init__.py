"""VK behind a seam: the `VkGateway` protocol, its `vk_api` adapter and petmatch's VK errors."""

from bot.vk.errors import (
    CaptchaError,
    CommentRejectedError,
    GroupAccessError,
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
    "LinkRejectedError",
    "MalformedResponseError",
    "MethodPausedError",
    "PhotoDownloadError",
    "PhotoRef",
    "TokenError",
    "TransientVkError",
    "VkBugError",
    "VkComment",
    "VkError",
    "VkGateway",
    "WallPage",
    "WallPost",
    "WallRequest",
]
