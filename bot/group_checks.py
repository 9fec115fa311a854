"""Whether a VK community can be polled, asked once for `petmatch groups add` and the desk's
groups page alike; each says why not in its own language."""

from __future__ import annotations

from typing import Any

from bot.vk.errors import GroupNotFoundError, TokenError, VkError

__all__ = ["GroupRefusal", "pollable_group"]


class GroupRefusal(Exception):
    """Why a community cannot be added: `reason` is `bad_ref`, `not_found`, `dead_token`,
    `vk_error`, `deactivated` or `closed`; `name` the reference or screen name; `cause` what
    VK or the parser said."""

    def __init__(self, reason: str, name: str, cause: Any = None) -> None:
        super().__init__(reason, name, cause)
        self.reason, self.name, self.cause = reason, name, cause


def pollable_group(gateway: Any, ref: str) -> Any:
    """The community `ref` names (`VkApiGateway.resolve_group`), or `GroupRefusal` when it
    cannot be found or read: deleted, blocked, closed or private."""
    try:
        info = gateway.resolve_group(ref)
    except ValueError as exc:
        raise GroupRefusal("bad_ref", ref, exc) from exc
    except GroupNotFoundError as exc:
        raise GroupRefusal("not_found", ref, exc) from exc
    except TokenError as exc:
        raise GroupRefusal("dead_token", ref, exc) from exc
    except VkError as exc:
        raise GroupRefusal("vk_error", ref, exc) from exc
    if info.deactivated:
        raise GroupRefusal("deactivated", info.screen_name, info.deactivated)
    if info.is_closed:
        raise GroupRefusal("closed", info.screen_name)
    return info
