"""The fake VK's three kinds of token, what each may call, and the methods that report a
token's rights. The contract is written out in `bot/fakevk/README.md`.

- a **user** token (`TokenKind.USER`): reads, and comments when it has the `wall` right; its
  comments are from the user, or from a community it administers with `from_group`;
- a **service** key (`TokenKind.SERVICE`, the VK app's): reads open walls; every user method
  (commenting included) is refused with error 28;
- a **community** key (`TokenKind.COMMUNITY`): comments only on its own community's wall
  (error 27 elsewhere), always as that community; cannot read walls with `wall.get` (27).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

__all__ = [
    "COMMUNITY_RIGHTS",
    "USER_RIGHTS",
    "ApiFailure",
    "FakeToken",
    "TokenKind",
    "access_failure",
    "comment_author",
    "token_methods",
]

#: `account.getAppPermissions` bits (VK's user access rights).
USER_RIGHTS = {
    "notify": 1,
    "friends": 2,
    "photos": 4,
    "audio": 8,
    "video": 16,
    "stories": 64,
    "pages": 128,
    "status": 1024,
    "notes": 2048,
    "messages": 4096,
    "wall": 8192,
    "ads": 32768,
    "offline": 65536,
    "docs": 131072,
    "groups": 262144,
    "notifications": 524288,
    "stats": 1048576,
    "email": 4194304,
    "market": 134217728,
}
#: `groups.getTokenPermissions` bits (VK's community access rights).
COMMUNITY_RIGHTS = {
    "stories": 1,
    "photos": 4,
    "app_widget": 64,
    "messages": 4096,
    "docs": 131072,
    "manage": 262144,
}

#: Methods a service key may call (everything else is a user method: error 28).
_SERVICE_METHODS = {
    "wall.get",
    "execute",
    "groups.getById",
    "utils.resolveScreenName",
    "wall.getComments",
    "secure.checkToken",
}
_SERVICE_ONLY = {"secure.checkToken"}
_COMMUNITY_ONLY = {"groups.getTokenPermissions"}
_NOT_FOR_COMMUNITY = {"account.getAppPermissions", "wall.get"}


class TokenKind(StrEnum):
    USER = "user"
    SERVICE = "service"
    COMMUNITY = "community"


class ApiFailure(Exception):
    """A VK error answer raised by the token checks and methods here."""

    def __init__(self, code: int, message: str):
        super().__init__(code)
        self.code = code
        self.message = message


@dataclass
class FakeToken:
    """One token the fake knows. `rights` are names from USER_RIGHTS / COMMUNITY_RIGHTS;
    `admin_of` are community ids a user token's owner administers."""

    value: str
    kind: TokenKind
    user_id: int | None = None
    group_id: int | None = None
    rights: frozenset[str] = field(default_factory=frozenset)
    admin_of: frozenset[int] = field(default_factory=frozenset)
    dead: bool = False
    issued_at: int = 1_700_000_000


def _failure(code: int, message: str) -> ApiFailure:
    return ApiFailure(code, message)


def access_failure(token: FakeToken, method: str, params: Mapping[str, str]) -> ApiFailure | None:
    """VK's answer when `token` may not call `method` this way; None when it may."""
    if token.kind is TokenKind.SERVICE and method not in _SERVICE_METHODS:
        return _failure(
            28, "Application authorization failed: method is unavailable with service token."
        )
    if token.kind is not TokenKind.SERVICE and method in _SERVICE_ONLY:
        return _failure(15, "Access denied: this method is available only with a service token")
    if token.kind is not TokenKind.COMMUNITY and method in _COMMUNITY_ONLY:
        return _failure(15, "Access denied: this method is available only with a community token")
    if token.kind is TokenKind.COMMUNITY and method in _NOT_FOR_COMMUNITY:
        return _failure(27, "Group authorization failed: method is unavailable with group auth.")
    if method == "wall.createComment":
        return _comment_failure(token, params)
    return None


def _comment_failure(token: FakeToken, params: Mapping[str, str]) -> ApiFailure | None:
    owner = str(params.get("owner_id", ""))
    from_group = str(params.get("from_group") or "0")
    if token.kind is TokenKind.COMMUNITY:
        if owner != str(-(token.group_id or 0)):
            return _failure(
                27, "Group authorization failed: method is unavailable with group auth."
            )
        return None
    if "wall" not in token.rights:
        return _failure(15, "Access denied: no access to call this method")
    if from_group not in ("", "0") and (
        not from_group.isdigit() or int(from_group) not in token.admin_of
    ):
        return _failure(15, "Access denied: you are not an admin of this community")
    return None


def comment_author(token: FakeToken, params: Mapping[str, str], default_user: int) -> int:
    """`from_id` of a comment `token` creates: the community for a community key or an admin's
    `from_group`, else the user."""
    if token.kind is TokenKind.COMMUNITY:
        return -(token.group_id or 0)
    from_group = str(params.get("from_group") or "0")
    if from_group.isdigit() and int(from_group) > 0:
        return -int(from_group)
    return token.user_id if token.user_id is not None else default_user


def _mask(rights: frozenset[str], table: Mapping[str, int]) -> int:
    return sum(table[name] for name in rights if name in table)


def token_methods(
    groups_get_by_id: Callable[[Any, Mapping[str, str]], Any],
) -> dict[str, Callable[[Any, Mapping[str, str]], Any]]:
    """Handlers for the methods that report a token's rights, and a `groups.getById` that knows
    a community key's own community and tells a user whether they are an admin. Each handler
    takes the fake (`vk.token_for` looks a token up) and the call's parameters."""

    def caller(vk: Any, params: Mapping[str, str]) -> FakeToken:
        token = vk.token_for(params.get("access_token"))
        if token is None:  # handle_method checked it already
            raise _failure(5, "User authorization failed: invalid access_token (4).")
        return token

    def check_token(vk: Any, params: Mapping[str, str]) -> Any:
        checked = vk.token_for(params.get("token"))
        if checked is None or checked.kind is not TokenKind.USER:
            raise _failure(15, "Access denied: invalid token")
        expire = 0 if "offline" in checked.rights else checked.issued_at + 86400
        return {
            "success": 1,
            "user_id": checked.user_id,
            "date": checked.issued_at,
            "expire": expire,
        }

    def app_permissions(vk: Any, params: Mapping[str, str]) -> Any:
        return _mask(caller(vk, params).rights, USER_RIGHTS)

    def token_permissions(vk: Any, params: Mapping[str, str]) -> Any:
        rights = caller(vk, params).rights
        return {
            "mask": _mask(rights, COMMUNITY_RIGHTS),
            "permissions": [
                {"setting": bit, "name": name}
                for name, bit in COMMUNITY_RIGHTS.items()
                if name in rights
            ],
        }

    def get_by_id(vk: Any, params: Mapping[str, str]) -> Any:
        token = caller(vk, params)
        if token.kind is TokenKind.COMMUNITY and not (
            params.get("group_ids") or params.get("group_id")
        ):
            params = {**params, "group_id": str(token.group_id)}
        result = groups_get_by_id(vk, params)
        if token.kind is TokenKind.USER:
            for group in result["groups"]:
                admin = group["id"] in token.admin_of
                group["is_admin"] = int(admin)
                if admin:
                    group["admin_level"] = 3
        return result

    return {
        "secure.checkToken": check_token,
        "account.getAppPermissions": app_permissions,
        "groups.getTokenPermissions": token_permissions,
        "groups.getById": get_by_id,
    }
