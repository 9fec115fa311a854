"""`petmatch doctor`: everything a run needs, checked in one go, each miss with its fix.

Configuration and the data root, the database (reachable, migrated), the models (present, and
the index made by the same model), each VK token (alive, of the right kind, with the rights its
role needs, asked of VK's permission methods), the bot's community (reachable, the commenter an
admin of it), the groups with commenting on, and the projected daily quota use.

A finding is `ok`, `warn` (works, but not as it should for a live run) or `fail` (a run would
not work): `petmatch doctor` exits non-zero when anything fails. Tokens never appear in a
finding: only the names of the variables they come from.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from bot.config import PACKAGE_CONFIG, Settings, default_home
from bot.vk.credentials import (
    BOT_GROUP_VARIABLE,
    COMMENT_VARIABLE,
    READ_VARIABLE,
    Credential,
    CredentialError,
    comment_credential,
    read_credential,
)
from bot.vk.errors import TokenError, VkError

__all__ = ["Finding", "Status", "TokenProbe", "diagnose", "probe_token"]

#: VK's user access rights that matter here (`account.getAppPermissions` bits).
WALL_RIGHT, OFFLINE_RIGHT = 8192, 65536


class Status(StrEnum):
    OK = "ok"
    WARN = "warn"
    FAIL = "fail"


@dataclass(frozen=True)
class Finding:
    check: str
    status: Status
    detail: str
    fix: str = ""

    def as_dict(self) -> dict[str, str]:
        return {
            "check": self.check,
            "status": self.status.value,
            "detail": self.detail,
            "fix": self.fix,
        }


@dataclass(frozen=True)
class TokenProbe:
    """What VK says a token is: `user`, `service`, `community`, `dead` or `unknown`."""

    kind: str
    mask: int = 0
    rights: tuple[str, ...] = ()
    group_id: int | None = None
    error: str | None = None


def probe_token(gateway: Any) -> TokenProbe:
    """Ask VK what kind of token this is: `account.getAppPermissions` answers a user token with
    its rights, refuses a service key (28) and a community key (27, whose rights then come from
    `groups.getTokenPermissions`); a dead token gets 5."""
    try:
        mask = int(gateway.call_method("account.getAppPermissions"))
        return TokenProbe("user", mask=mask)
    except TokenError as exc:
        if exc.code == 28:
            return TokenProbe("service")
        if exc.code == 27:
            return _probe_community(gateway)
        return TokenProbe("dead", error=str(exc))
    except (VkError, TypeError, ValueError) as exc:
        return TokenProbe("unknown", error=str(exc))


def _probe_community(gateway: Any) -> TokenProbe:
    try:
        permissions = gateway.call_method("groups.getTokenPermissions")
        groups = gateway.call_method("groups.getById")
        group_id = int(groups["groups"][0]["id"])
    except (VkError, KeyError, IndexError, TypeError, ValueError) as exc:
        return TokenProbe("community", error=str(exc))
    names = tuple(str(p.get("name")) for p in permissions.get("permissions", []))
    return TokenProbe(
        "community", mask=int(permissions.get("mask", 0)), rights=names, group_id=group_id
    )


@dataclass
class _Context:
    settings: Settings
    findings: list[Finding] = field(default_factory=list)
    engine: Any = None
    reader_kind: str | None = None
    can_comment: bool = False

    def add(self, check: str, status: Status, detail: str, fix: str = "") -> None:
        self.findings.append(Finding(check, status, detail, fix))


def diagnose(settings: Settings) -> list[Finding]:
    """Every check, in the order a volunteer would fix them."""
    context = _Context(settings)
    _check_config(context)
    _check_data_root(context)
    try:
        _check_database(context)
        _check_models(context)
        _check_tokens(context)
        _check_groups(context)
    finally:
        if context.engine is not None:
            context.engine.dispose()
    return context.findings


# ---- configuration, data root, database, models --------------------------------------------


def _check_config(context: _Context) -> None:
    explicit = os.environ.get("PETMATCH_CONFIG")
    source = explicit or (str(PACKAGE_CONFIG) if PACKAGE_CONFIG.exists() else "built-in defaults")
    context.add("config", Status.OK, f"{source}, overridden by PETMATCH_* variables")


def _check_data_root(context: _Context) -> None:
    settings = context.settings
    origin = "PETMATCH_HOME" if os.environ.get("PETMATCH_HOME") else f"default ({default_home()})"
    detail = f"{settings.home} [{origin}]"
    if settings.var_dir != settings.home:
        detail += f"; working data in {settings.var_dir}"
    folder = Path(settings.var_dir)  # type: ignore[arg-type]
    if not folder.is_dir():
        context.add(
            "data root",
            Status.FAIL,
            f"{detail}: the folder does not exist",
            "run ./scripts/setup.sh, or `petmatch db upgrade` and `petmatch models "
            "prepare`, or point PETMATCH_HOME at the data",
        )
    elif not os.access(folder, os.W_OK):
        context.add(
            "data root",
            Status.FAIL,
            f"{detail}: not writable",
            "give the bot's user write access, or set PETMATCH_HOME",
        )
    else:
        context.add("data root", Status.OK, detail)


def _check_database(context: _Context) -> None:
    from sqlalchemy.exc import SQLAlchemyError

    from bot.cli.db_cmd import display_url
    from bot.storage import current_revision, head_revision, open_database

    url = context.settings.database_url or ""
    shown = display_url(url)
    try:
        engine = open_database(url)
        at = current_revision(engine)
    except (SQLAlchemyError, OSError) as exc:
        first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
        context.add(
            "database",
            Status.FAIL,
            f"{shown}: cannot open it ({first})",
            "check PETMATCH_DATABASE_URL and that the server is up",
        )
        return
    head = head_revision()
    if at != head:
        engine.dispose()
        context.add(
            "database",
            Status.FAIL,
            f"{shown} is at revision {at or '(none)'}, the code needs {head}",
            "petmatch db upgrade",
        )
        return
    context.engine = engine
    context.add("database", Status.OK, f"{shown}, migrated (revision {head})")


def _check_models(context: _Context) -> None:
    from bot.pipeline import build_vision

    settings = context.settings
    try:
        vision = build_vision(settings)
    except (FileNotFoundError, ValueError) as exc:
        context.add(
            "models",
            Status.FAIL,
            str(exc).splitlines()[0],
            f"petmatch models prepare (writes into {settings.models_dir})",
        )
        return
    model_id = vision.embedder.model_id
    context.add(
        "models",
        Status.OK,
        f"{settings.segmentation.backend} segmenter and {model_id} in {settings.models_dir}",
    )
    index_dir = Path(settings.index_dir)  # type: ignore[arg-type]
    own = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in model_id)
    others = sorted(p.name for p in index_dir.iterdir() if p.is_dir()) if index_dir.is_dir() else []
    if own in others:
        context.add("index", Status.OK, f"{index_dir / own} belongs to {model_id}")
    elif others:
        context.add(
            "index",
            Status.WARN,
            f"{index_dir} holds indexes of other models ({', '.join(others)}) only",
            "petmatch reindex (the first run also rebuilds it)",
        )
    else:
        context.add("index", Status.OK, f"no index in {index_dir} yet: the first run builds it")


# ---- VK tokens -----------------------------------------------------------------------------


@contextmanager
def _gateway(settings: Settings, credential: Credential) -> Iterator[Any]:
    from bot.vk.gateway import VkApiGateway

    gateway = VkApiGateway(settings.vk, token=credential.secret)
    try:
        yield gateway
    finally:
        gateway.close()


def _check_tokens(context: _Context) -> None:
    settings = context.settings
    try:
        reader = read_credential(settings.vk)
    except CredentialError as exc:
        context.add(
            "read token",
            Status.FAIL,
            str(exc),
            f"export {READ_VARIABLE}=<the VK app's service key> "
            f"(or {READ_VARIABLE}_FILE=<a file holding it>)",
        )
        reader = None
    try:
        commenter = comment_credential(settings.vk)
    except CredentialError as exc:
        commenter, comment_error = None, exc
    else:
        comment_error = None
    if reader is not None:
        with _gateway(settings, reader) as gateway:
            _judge_reader(context, reader, probe_token(gateway))
            _check_bot_community(context, gateway)
            if context.reader_kind == "service" and commenter is not None:
                _check_same_app(context, gateway, commenter)
    if comment_error is not None:
        context.add(
            "comment token",
            Status.FAIL,
            str(comment_error),
            f"fix {COMMENT_VARIABLE}_FILE or unset it",
        )
        return
    if commenter is None:
        context.add(
            "comment token",
            Status.WARN,
            "none: commenting is off, every decision is recorded as a dry run",
            f"set {COMMENT_VARIABLE} (a user token with the wall right of an admin of "
            f"the bot's community) and {BOT_GROUP_VARIABLE}",
        )
        return
    with _gateway(settings, commenter) as gateway:
        probe = probe_token(gateway)
        _judge_commenter(context, commenter, probe)
        if probe.kind == "user" and probe.mask & WALL_RIGHT:
            _check_from_group(context, gateway)


def _judge_reader(context: _Context, credential: Credential, probe: TokenProbe) -> None:
    name = credential.variable
    context.reader_kind = probe.kind
    if probe.kind == "service":
        context.add("read token", Status.OK, f"{name}: the app's service key (reads open walls)")
    elif probe.kind == "user":
        context.add(
            "read token",
            Status.WARN,
            f"{name}: a user token reads; every wall.get counts against that person",
            f"set {READ_VARIABLE} to the VK app's service key "
            "(Настройки приложения → Сервисный ключ доступа)",
        )
    elif probe.kind == "community":
        context.add(
            "read token",
            Status.FAIL,
            f"{name}: a community key cannot read other communities' walls (VK error 27)",
            f"set {READ_VARIABLE} to the VK app's service key",
        )
    else:
        context.add(
            "read token",
            Status.FAIL,
            f"{name}: VK refused it ({probe.error})",
            f"create a new token and set {name}",
        )


def _judge_commenter(context: _Context, credential: Credential, probe: TokenProbe) -> None:
    name = credential.variable
    user_fix = (
        f"set {COMMENT_VARIABLE} to a user token with the wall (and offline) right of an admin "
        f"of the bot's community"
    )
    if probe.kind == "service":
        context.add(
            "comment token",
            Status.FAIL,
            f"{name}: a service key cannot comment (VK error 28)",
            user_fix,
        )
    elif probe.kind == "community":
        context.add(
            "comment token",
            Status.FAIL,
            f"{name}: a community key (community {probe.group_id}) comments only on "
            "its own wall (VK error 27 under other communities' posts)",
            user_fix,
        )
    elif probe.kind != "user":
        context.add(
            "comment token",
            Status.FAIL,
            f"{name}: VK refused it ({probe.error})",
            f"create a new token and set {name}",
        )
    elif not probe.mask & WALL_RIGHT:
        context.add(
            "comment token",
            Status.FAIL,
            f"{name}: a user token without the wall right "
            "(wall.createComment would get VK error 15)",
            "create the token again with scope=wall,offline",
        )
    else:
        context.can_comment = True
        if probe.mask & OFFLINE_RIGHT:
            context.add("comment token", Status.OK, f"{name}: a user token with the wall right")
        else:
            context.add(
                "comment token",
                Status.WARN,
                f"{name}: a user token with the wall right, but without offline it "
                "expires within a day",
                "create the token again with scope=wall,offline",
            )


def _check_same_app(context: _Context, gateway: Any, commenter: Credential) -> None:
    """`secure.checkToken` with the service key: is the comment token a live user token of the
    same VK app?"""
    if commenter.secret == context.settings.vk.read_token:
        return
    try:
        answer = gateway.call_method(
            "secure.checkToken", {"token": commenter.secret.get_secret_value()}
        )
        user_id = int(answer["user_id"])
        expire = int(answer.get("expire") or 0)
    except (VkError, KeyError, TypeError, ValueError) as exc:
        context.add(
            "token app",
            Status.WARN,
            f"the service key's app does not vouch for {commenter.variable} ({exc})",
            "create the comment token through the same VK app as the service key",
        )
        return
    lasts = "does not expire" if expire == 0 else "expires (no offline right)"
    context.add(
        "token app",
        Status.OK,
        f"{commenter.variable} belongs to user {user_id} of the service key's app and {lasts}",
    )


def _check_bot_community(context: _Context, gateway: Any) -> None:
    group_id = context.settings.vk.bot_group_id
    if group_id is None or context.reader_kind not in ("service", "user"):
        return
    try:
        info = gateway.resolve_group(str(group_id))
    except VkError as exc:
        context.add(
            "bot community",
            Status.FAIL,
            f"{BOT_GROUP_VARIABLE}={group_id}: {exc}",
            f"set {BOT_GROUP_VARIABLE} to the id of the bot's own community",
        )
        return
    if info.deactivated:
        context.add(
            "bot community",
            Status.FAIL,
            f"{info.screen_name} is {info.deactivated}",
            "use a working community",
        )
        return
    context.add(
        "bot community", Status.OK, f"{info.name!r} (vk.com/{info.screen_name}, id {group_id})"
    )


def _check_from_group(context: _Context, gateway: Any) -> None:
    """Comments as the bot's community need its owner to be an admin there (else error 15)."""
    group_id = context.settings.vk.bot_group_id
    if group_id is None:
        context.add(
            "comment as community",
            Status.WARN,
            "comments go out under the token owner's own name",
            f"set {BOT_GROUP_VARIABLE} to the bot's community id; the token's owner "
            "must be its admin",
        )
        return
    try:
        groups = gateway.call_method("groups.getById", {"group_id": group_id})
        is_admin = bool(groups["groups"][0].get("is_admin"))
    except (VkError, KeyError, IndexError, TypeError) as exc:
        context.can_comment = False
        context.add(
            "comment as community",
            Status.FAIL,
            f"cannot check community {group_id}: {exc}",
            f"check {BOT_GROUP_VARIABLE}",
        )
        return
    if not is_admin:
        context.can_comment = False
        context.add(
            "comment as community",
            Status.FAIL,
            f"the comment token's owner is not an admin of community {group_id}: "
            "comments with from_group would get VK error 15",
            "make that person an admin (Управление → Участники → Руководители) or use "
            "an admin's token",
        )
        return
    context.add(
        "comment as community",
        Status.OK,
        f"comments go out as community {group_id} (from_group); the owner is an admin",
    )


# ---- groups and quota ----------------------------------------------------------------------


def _check_groups(context: _Context) -> None:
    from bot import storage
    from bot.cli.groups_cmd import projected_daily_calls

    settings = context.settings
    if context.engine is None:
        context.add("groups", Status.WARN, "not checked: the database is not usable")
        return
    with storage.session_scope(context.engine) as session:
        groups = storage.list_groups(session)
    if not groups:
        context.add(
            "groups",
            Status.WARN,
            "no groups to poll yet",
            "petmatch groups add https://vk.com/<community> --city <город>",
        )
    else:
        live = [g.screen_name for g in groups if g.comments_enabled and not g.shadow_mode]
        shadow = [g.screen_name for g in groups if g.comments_enabled and g.shadow_mode]
        detail = (
            f"{len(groups)} groups; commenting on in {len(live)}"
            + (f" ({', '.join(live[:5])})" if live else "")
            + f", shadow mode in {len(shadow)}"
            + ("; commenting.dry_run is on" if settings.commenting.dry_run else "")
        )
        if live and not context.can_comment:
            context.add(
                "groups",
                Status.WARN,
                f"{detail}; but nothing can comment",
                "fix the comment token above, or keep those groups in --shadow",
            )
        else:
            context.add("groups", Status.OK, detail)
    walls = sum(1 for g in groups if g.accessible)
    projection = projected_daily_calls(
        walls, settings.polling.interval_minutes, settings.vk.walls_per_execute
    )
    quota = settings.vk.daily_wall_get_quota
    detail = (
        f"{projection['wall.get']} wall.get a day for {walls} walls every "
        f"{settings.polling.interval_minutes:g} min (quota {quota}); at most "
        f"{settings.commenting.daily_cap} comments a day"
    )
    if projection["wall.get"] > quota:
        context.add(
            "quota",
            Status.WARN,
            detail,
            "poll less often (PETMATCH_POLLING__INTERVAL_MINUTES) or fewer groups",
        )
    else:
        context.add("quota", Status.OK, detail)
