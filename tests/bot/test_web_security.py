"""The desk's security pieces on their own: password hashes, the login limiter, the
cross-site refusal middleware, CSRF tokens, the session key file and token scrubbing."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from bot.web.security import (
    CrossSiteRefusal,
    LoginLimiter,
    csrf_token,
    csrf_valid,
    hash_password,
    load_secret_key,
    scrub,
    verify_password,
)


def test_passwords_are_argon2_hashes_and_short_ones_are_refused() -> None:
    hashed = hash_password("long enough secret")
    assert hashed.startswith("$argon2id$") and "long enough" not in hashed
    assert verify_password(hashed, "long enough secret")
    assert not verify_password(hashed, "long enough secreT")
    assert not verify_password("not a hash", "anything")
    with pytest.raises(ValueError, match="at least 8"):
        hash_password("short")


def test_login_limiter_locks_out_after_the_allowed_failures_and_doubles() -> None:
    now = [1000.0]
    limiter = LoginLimiter(5, 60.0, clock=lambda: now[0])
    for _ in range(4):
        limiter.failed("name:anna", "addr:1.2.3.4")
    assert limiter.wait_seconds("name:anna") == 0.0
    limiter.failed("name:anna", "addr:1.2.3.4")
    assert limiter.wait_seconds("name:anna") == 60.0
    assert limiter.wait_seconds("name:boris", "addr:1.2.3.4") == 60.0  # same address
    assert limiter.wait_seconds("name:boris", "addr:5.6.7.8") == 0.0
    now[0] += 61
    assert limiter.wait_seconds("name:anna") == 0.0
    limiter.failed("name:anna")
    assert limiter.wait_seconds("name:anna") == 120.0  # each further failure doubles it
    limiter.succeeded("name:anna", "addr:1.2.3.4")
    assert limiter.wait_seconds("name:anna", "addr:1.2.3.4") == 0.0


def _app() -> Starlette:
    async def ok(request: object) -> PlainTextResponse:
        return PlainTextResponse("done")

    app = Starlette(routes=[Route("/act", ok, methods=["GET", "POST"])])
    app.add_middleware(CrossSiteRefusal)
    return app


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({}, 200),
        ({"Sec-Fetch-Site": "same-origin"}, 200),
        ({"Sec-Fetch-Site": "none"}, 200),
        ({"Origin": "http://testserver"}, 200),
        ({"Sec-Fetch-Site": "cross-site"}, 403),
        ({"Sec-Fetch-Site": "same-site"}, 403),
        ({"Origin": "https://evil.example"}, 403),
    ],
)
def test_cross_site_posts_are_refused(headers: dict[str, str], status: int) -> None:
    with TestClient(_app()) as client:
        assert client.post("/act", headers=headers).status_code == status
        assert client.get("/act", headers={"Sec-Fetch-Site": "cross-site"}).status_code == 200


def test_csrf_tokens_belong_to_their_session() -> None:
    session: dict = {}
    token = csrf_token(session)
    assert csrf_token(session) == token and len(token) >= 32
    assert csrf_valid(session, token)
    assert not csrf_valid(session, token + "x")
    assert not csrf_valid(session, None)
    assert not csrf_valid({}, token)


def test_the_session_key_is_made_once_and_private(tmp_path: Path) -> None:
    path = tmp_path / "var" / "web_secret_key"
    key = load_secret_key(path)
    assert len(key) >= 32 and load_secret_key(path) == key
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_scrub_hides_the_token() -> None:
    assert scrub("error at ?access_token=vk1.a.SECRET&v=5", ("vk1.a.SECRET",)) == (
        "error at ?access_token=***&v=5"
    )
    assert scrub(None, ("x",)) == ""


def test_the_desk_comments_with_the_bots_credentials_and_scrubs_them_all(tmp_path: Path) -> None:
    """The desk builds the gateway `petmatch run` builds: the comment token, as the bot's
    community (`from_group`); every configured token is scrubbed from what it shows."""
    from pydantic import SecretStr

    from bot.config import Settings
    from bot.vk.credentials import RoleSplitGateway
    from bot.web.app import _default_gateway, _DeskState

    token_file = tmp_path / "comment_token"
    token_file.write_text("comment-token-from-a-file-77")
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'db.sqlite'}",
        var_dir=tmp_path,
        vk={
            "api_url": "http://127.0.0.1:9/method/",
            "read_token": SecretStr("service-key-55"),
            "comment_token_file": token_file,
            "bot_group_id": 42,
        },
    )
    gateway = _default_gateway(settings)
    try:
        assert isinstance(gateway, RoleSplitGateway) and gateway.from_group == 42
        assert gateway.can_comment
    finally:
        gateway.close()
    state = _DeskState(settings=settings)
    assert set(state.secrets()) == {"service-key-55", "comment-token-from-a-file-77"}
    shown = scrub("x service-key-55 y comment-token-from-a-file-77", state.secrets())
    assert shown == "x *** y ***"

    no_tokens = {"read_token": None, "comment_token_file": None, "token": None}
    nothing = settings.model_copy(update={"vk": settings.vk.model_copy(update=no_tokens)})
    assert _default_gateway(nothing) is None
