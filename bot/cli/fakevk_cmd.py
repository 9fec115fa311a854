"""`petmatch fake-vk`: run the fake VK server in the foreground for manual runs."""

from __future__ import annotations

import typer

from bot.cli._context import fail


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
    typer.echo("Ctrl-C stops it.")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        typer.echo("stopped")
