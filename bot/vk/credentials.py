"""Which VK credential does what: one token for reading, one for commenting.

- `PETMATCH_VK__TOKEN` alone reads and comments (as petmatch always did); comments then go out
  under the token owner's own name unless `PETMATCH_VK__BOT_GROUP_ID` is set.
- `PETMATCH_VK__READ_TOKEN` (the VK app's service key) reads open walls, and
  `PETMATCH_VK__COMMENT_TOKEN` (a user token with the `wall` right, of an admin of the bot's
  community) comments with `from_group=PETMATCH_VK__BOT_GROUP_ID`. Each overrides
  `PETMATCH_VK__TOKEN` for its role.

Each value may come from a file (`PETMATCH_VK__READ_TOKEN_FILE`, …). A file is read only when a
command needs that role, so commands that never talk to VK work without any token, and a
missing comment-token file does not stop reading. Tokens are `SecretStr`s; nothing here ever
puts one into a message.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import SecretStr

from bot.config import VkSettings
from bot.vk.errors import TokenError

if TYPE_CHECKING:
    import requests

    from bot.vk.gateway import VkApiGateway

__all__ = [
    "COMMENT_VARIABLE",
    "READ_VARIABLE",
    "TOKEN_VARIABLE",
    "Credential",
    "CredentialError",
    "Role",
    "RoleSplitGateway",
    "comment_credential",
    "describe_credentials",
    "open_vk_gateway",
    "read_credential",
]

TOKEN_VARIABLE = "PETMATCH_VK__TOKEN"
READ_VARIABLE = "PETMATCH_VK__READ_TOKEN"
COMMENT_VARIABLE = "PETMATCH_VK__COMMENT_TOKEN"
BOT_GROUP_VARIABLE = "PETMATCH_VK__BOT_GROUP_ID"


class Role(StrEnum):
    READ = "read"
    COMMENT = "comment"


class CredentialError(TokenError):
    """A credential a command needs is not configured or its file cannot be read; the message
    is one line naming the variable to set."""


@dataclass(frozen=True)
class Credential:
    """One token and where it came from (the variable's name, never its value)."""

    variable: str
    secret: SecretStr

    def __repr__(self) -> str:
        return f"Credential({self.variable})"


def _configured(vk: VkSettings, field: str) -> bool:
    value: SecretStr | None = getattr(vk, field)
    if value is not None and value.get_secret_value().strip():
        return True
    return getattr(vk, f"{field}_file") is not None


def _load(vk: VkSettings, field: str, variable: str) -> Credential | None:
    """The token of `field` (the value, else its file), None when neither is set."""
    value: SecretStr | None = getattr(vk, field)
    if value is not None and value.get_secret_value().strip():
        return Credential(variable, SecretStr(value.get_secret_value().strip()))
    path: Path | None = getattr(vk, f"{field}_file")
    if path is None:
        return None
    try:
        text = Path(path).read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise CredentialError(
            f"cannot read {variable}_FILE ({path}): {exc.strerror or type(exc).__name__}"
        ) from None
    if not text:
        raise CredentialError(f"{variable}_FILE ({path}) is empty")
    return Credential(f"{variable}_FILE", SecretStr(text))


def read_credential(vk: VkSettings) -> Credential:
    """The token that reads walls: READ_TOKEN, else TOKEN; CredentialError when neither."""
    if _configured(vk, "read_token"):
        found = _load(vk, "read_token", READ_VARIABLE)
    else:
        found = _load(vk, "token", TOKEN_VARIABLE)
    if found is None:
        raise CredentialError(
            f"no VK token for reading: set {READ_VARIABLE} (the VK app's service key) or "
            f"{TOKEN_VARIABLE}, or their _FILE variants"
        )
    return found


def comment_credential(vk: VkSettings) -> Credential | None:
    """The token that comments: COMMENT_TOKEN, else TOKEN; None when neither (commenting off)."""
    if _configured(vk, "comment_token"):
        return _load(vk, "comment_token", COMMENT_VARIABLE)
    return _load(vk, "token", TOKEN_VARIABLE)


def describe_credentials(vk: VkSettings) -> tuple[str, bool]:
    """The start-up line: which VK features work with the configured credentials, and whether
    something is missing (a warning) — from the configuration alone, without calling VK.
    `petmatch doctor` checks the tokens themselves."""
    reading = _configured(vk, "read_token") or _configured(vk, "token")
    commenting = _configured(vk, "comment_token") or _configured(vk, "token")
    split = _configured(vk, "read_token") or _configured(vk, "comment_token")
    read_with = READ_VARIABLE if _configured(vk, "read_token") else TOKEN_VARIABLE
    comment_with = COMMENT_VARIABLE if _configured(vk, "comment_token") else TOKEN_VARIABLE
    parts = []
    if not reading:
        parts.append(f"reading: OFF (set {READ_VARIABLE} or {TOKEN_VARIABLE}; polling cannot run)")
    elif not split:
        parts.append(f"one token ({TOKEN_VARIABLE}) reads and comments")
    else:
        parts.append(f"reading with {read_with}")
    if not commenting:
        parts.append(
            f"commenting: OFF (no {COMMENT_VARIABLE}); every decision is recorded as a dry run"
        )
    elif vk.bot_group_id is not None:
        parts.append(f"comments with {comment_with} as community {vk.bot_group_id} (from_group)")
    else:
        parts.append(
            f"comments with {comment_with} go out under that person's own name; set "
            f"{BOT_GROUP_VARIABLE} to comment as the bot's community"
        )
    degraded = not reading or not commenting or vk.bot_group_id is None
    return "VK: " + "; ".join(parts), degraded


class RoleSplitGateway:
    """A `VkGateway` over two adapters: the reader polls, resolves groups, downloads photos and
    reads comments; the commenter only comments. Without a commenter `create_comment` raises
    `TokenError` and `can_comment` is False (the comment stage then records dry runs)."""

    def __init__(self, reader: VkApiGateway, commenter: VkApiGateway | None) -> None:
        self.reader = reader
        self.commenter = commenter
        self.can_comment = commenter is not None

    def __repr__(self) -> str:
        return f"RoleSplitGateway(reader={self.reader!r}, commenter={self.commenter!r})"

    @property
    def from_group(self) -> int | None:
        """The community comments go out as (None: as the comment token's owner)."""
        return None if self.commenter is None else self.commenter.from_group

    @property
    def calls_day(self) -> Any:
        return self.reader.calls_day

    @property
    def calls_today(self) -> Any:
        counts = self.reader.calls_today.copy()
        if self.commenter is not None and self.commenter.calls_day == self.reader.calls_day:
            counts.update(self.commenter.calls_today)
        return counts

    def resolve_group(self, ref: str) -> Any:
        return self.reader.resolve_group(ref)

    def fetch_wall(self, owner_id: int, offset: int = 0, count: int = 100) -> Any:
        return self.reader.fetch_wall(owner_id, offset, count)

    def fetch_walls(self, requests: Any) -> Any:
        return self.reader.fetch_walls(requests)

    def download_photo(self, url: str) -> bytes:
        return self.reader.download_photo(url)

    def get_comments(self, owner_id: int, post_id: int) -> Any:
        return self.reader.get_comments(owner_id, post_id)

    def read_all_comments(self, owner_id: int, post_id: int) -> Any:
        # The duplicate check before a comment reads with the credential that reads walls.
        return self.reader.read_all_comments(owner_id, post_id)

    def own_user_id(self) -> int | None:
        """The comment token's user: the bot's comments are by that user (or, with
        `from_group`, by the bot's community)."""
        return None if self.commenter is None else self.commenter.own_user_id()

    def create_comment(self, owner_id: int, post_id: int, message: str, *, guid: str) -> int:
        if self.commenter is None:
            raise TokenError(f"commenting is off: no {COMMENT_VARIABLE} or {TOKEN_VARIABLE}")
        return self.commenter.create_comment(owner_id, post_id, message, guid=guid)

    def close(self) -> None:
        self.reader.close()
        if self.commenter is not None:
            self.commenter.close()

    def __enter__(self) -> RoleSplitGateway:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def open_vk_gateway(
    vk: VkSettings, *, session: requests.Session | None = None
) -> VkApiGateway | RoleSplitGateway:
    """The gateway a run uses. One token for both roles gives one adapter (as before); split
    roles give a `RoleSplitGateway` whose reader never comments and commenter never polls.
    Raises `CredentialError` (one line naming the variable) when nothing can read."""
    from bot.vk.gateway import VkApiGateway

    reader = read_credential(vk)
    commenter = comment_credential(vk)
    if commenter is not None and commenter.secret == reader.secret:
        return VkApiGateway(vk, session=session, token=reader.secret, from_group=vk.bot_group_id)
    read_gateway = VkApiGateway(vk, session=session, token=reader.secret, role=Role.READ)
    comment_gateway = (
        None
        if commenter is None
        else VkApiGateway(
            vk,
            session=session,
            token=commenter.secret,
            from_group=vk.bot_group_id,
            role=Role.COMMENT,
        )
    )
    return RoleSplitGateway(read_gateway, comment_gateway)
