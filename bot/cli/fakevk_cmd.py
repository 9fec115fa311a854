"""`petmatch fake-vk`: run the fake VK server in the foreground for manual runs."""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer

from bot.cli._context import fail

if TYPE_CHECKING:
    from bot.fakevk import FakeVkServer


#: Made-up credentials of the fake only: the app's service key and an admin's user token.
DEMO_SERVICE_KEY = "fake-vk-service-key-0123456789"
DEMO_ADMIN_TOKEN = "fake-vk-admin-token-0123456789"
DEMO_BOT_GROUP = 1009


def _seed_bot_community(server: FakeVkServer) -> None:
    """The bot's own community, the app's service key and a token of that community's admin."""
    server.add_group(DEMO_BOT_GROUP, "petmatch_bot_demo", "Бот-потеряшка (демо)")
    server.add_token(DEMO_SERVICE_KEY, "service")
    server.add_token(DEMO_ADMIN_TOKEN, "user", admin_of=[DEMO_BOT_GROUP])


def register(app: typer.Typer) -> None:
    """Add `fake-vk` to the root app."""
    app.command("fake-vk")(fake_vk)


def fake_vk(
    port: int = typer.Option(8089, help="Port on 127.0.0.1 (0 picks a free one)."),
    seed_demo: bool = typer.Option(
        False, "--seed-demo", help="Fill it with demo groups and lost/found posts."
    ),
    token: str = typer.Option(None, help="The token it accepts (default: a fixed test token)."),
) -> None:
    """Run a fake VK API on 127.0.0.1 until Ctrl-C, and print how to point petmatch at it.

    Example: petmatch fake-vk --port 8089 --seed-demo
    """
    from bot.fakevk import DEFAULT_TOKEN, FakeVkServer
    from bot.fakevk import seed_demo as seed

    server = FakeVkServer(port=port, token=token or DEFAULT_TOKEN)
    try:
        server.start()
    except OSError as exc:
        fail(f"cannot listen on 127.0.0.1:{port}: {exc.strerror or exc}")
    if seed_demo:
        seed(server)
        _seed_bot_community(server)
    typer.echo(f"fake VK API at {server.api_url}")
    typer.echo(f"token: {server.token}")
    typer.echo("point petmatch at it with:")
    typer.echo(f"  export PETMATCH_VK__API_URL={server.api_url}")
    typer.echo(f"  export PETMATCH_VK__TOKEN={server.token}")
    typer.echo("  export PETMATCH_VK__PHOTO_HOSTS='[\"127.0.0.1\"]'")
    if seed_demo:
        typer.echo(
            "demo groups: https://vk.com/poteryashki_demo_msk, https://vk.com/naydenysh_demo_msk"
        )
        typer.echo("or rehearse the split roles (then try `petmatch doctor`):")
        typer.echo("  unset PETMATCH_VK__TOKEN")
        typer.echo(f"  export PETMATCH_VK__READ_TOKEN={DEMO_SERVICE_KEY}")
        typer.echo(f"  export PETMATCH_VK__COMMENT_TOKEN={DEMO_ADMIN_TOKEN}")
        typer.echo(f"  export PETMATCH_VK__BOT_GROUP_ID={DEMO_BOT_GROUP}")
    typer.echo("Ctrl-C stops it.")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        typer.echo("stopped")
