"""`petmatch demo`, `search`, `matches list` and `comments list`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from bot.cli._context import fail, print_json, settings_from

matches_app = typer.Typer(help="What the matcher found and decided.", no_args_is_help=True)
comments_app = typer.Typer(help="What the bot said, or would have said.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    """Add `demo`, `search`, `matches` and `comments` to the root app."""
    app.command("demo")(demo)
    app.command("search")(search)
    app.add_typer(matches_app, name="matches")
    app.add_typer(comments_app, name="comments")


def demo(
    ctx: typer.Context,
    photos: Path = typer.Option(
        None,
        "--photos",
        help="Build the scenario from an identity-labelled folder "
        "(sub-folders or <id>_<n>.jpg), e.g. ../shared/data/reid/dogfacenet.",
        exists=True,
        file_okay=False,
    ),
    identities: int = typer.Option(12, help="How many identities to take from --photos."),
    species_word: str = typer.Option("собака", help="The animal word in --photos post texts."),
    work_dir: Path = typer.Option(
        None,
        help="Where the demo's database, photos and index go (wiped first); "
        "default: demo/ in the data root.",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as one JSON object."),
) -> None:
    """Run the whole bot on a fake VK with a known truth, and score its comments.

    Example: petmatch demo --photos ../shared/data/reid/dogfacenet --identities 20 --json
    """
    from bot.cli.run_cmd import require_vision
    from bot.demo import builtin_scenario, folder_scenario, run_demo

    settings = settings_from(ctx)
    vision = require_vision(settings)  # a missing model stops here, before anything runs
    work_dir = work_dir if work_dir is not None else settings.var_dir / "demo"
    try:
        scenario = (
            builtin_scenario()
            if photos is None
            else folder_scenario(photos, identities=identities, species_word=species_word)
        )
    except (OSError, ValueError) as exc:  # an unusable --photos folder: one line, no traceback
        fail(str(exc))
    say = None if as_json else (lambda message: typer.echo(message, err=True))
    try:
        summary = run_demo(settings, work_dir=work_dir, posts=scenario, progress=say, vision=vision)
    except FileNotFoundError as exc:
        fail(str(exc))
    if as_json:
        print_json(summary.as_dict())
    else:
        _print_demo(summary)
    if summary.animals == 0:
        fail(
            f"the demo found no animal in {summary.photos} photos: check the models in "
            f"{settings.models_dir} (`petmatch doctor`)"
        )


def _print_demo(summary: Any) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    table = Table(title="petmatch demo", show_header=False)
    table.add_row("posts read", str(summary.posts))
    table.add_row("post kinds", ", ".join(f"{k}: {v}" for k, v in sorted(summary.labels.items())))
    table.add_row("photos stored", str(summary.photos))
    table.add_row("animals found", str(summary.animals))
    table.add_row("candidate pairs", f"{summary.matches} ({summary.accepted_matches} confident)")
    table.add_row("comments posted", str(summary.comments))
    table.add_row("correct / wrong", f"{summary.correct_comments} / {summary.wrong_comments}")
    table.add_row("same-animal pairs missed", str(summary.missed_pairs))
    console.print(table)
    for line in summary.comment_lines:
        mark = "✓" if line["correct"] else "✗"
        console.print(f"{mark} under {line['under']} → {line['links']}\n   {line['text']}")
    for failure in summary.failures:
        console.print(f"[yellow]noted:[/yellow] {failure}")


def _open(ctx: typer.Context) -> tuple[Any, Any]:
    """Settings and a session factory on the migrated database (one clear line otherwise)."""
    from bot import storage
    from bot.cli.db_cmd import open_migrated

    settings = settings_from(ctx)
    return settings, storage.session_factory(open_migrated(settings))


def search(
    ctx: typer.Context,
    photo: Path = typer.Argument(..., exists=True, dir_okay=False, help="A photo (or fragment)."),
    city: str = typer.Option(None, help="Only posts from this city (and cities within reach)."),
    species: str = typer.Option(None, help="cat or dog; default: what the photo shows."),
    kind: str = typer.Option(
        None, help="lost, found or unknown (posts that do not say their side); default: all."
    ),
    top: int = typer.Option(10, "--top", min=1, help="How many posts to show."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Rank the stored posts for a photo a volunteer has at hand.

    Example: petmatch search ~/Downloads/dog.jpg --city Москва --kind found --top 5
    """
    from bot.searching import search_photo

    settings, sessions = _open(ctx)
    if kind not in (None, "lost", "found", "unknown"):
        fail("--kind must be lost, found or unknown")
    try:
        results = search_photo(
            settings, sessions, photo, city=city, species=species, kind=kind, top=top
        )
    except (OSError, ValueError) as exc:
        fail(f"{photo}: {exc}")
    if as_json:
        print_json({"photo": str(photo), "results": [r.as_dict() for r in results]})
        return
    if not results:
        typer.echo("no matching posts")
    for rank, result in enumerate(results, 1):
        typer.echo(
            f"{rank:>2}. {result.url}  {result.kind:<5} {result.city or '-':<16} "
            f"similarity {result.similarity:.3f}  confidence {result.confidence:.2f}  "
            f"(photo {result.photo_position + 1})"
        )


@matches_app.command("list")
def list_matches(
    ctx: typer.Context,
    show_all: bool = typer.Option(False, "--all", help="Include rejected candidates."),
    limit: int = typer.Option(50, min=1),
    as_json: bool = typer.Option(False, "--json", help="One JSON object per line."),
) -> None:
    """Show candidate pairs with their confidence and the reasons for the decision, then the
    posts whose photos could not be looked at yet (waiting for another try) or at all (failed).

    Example: petmatch matches list --all --json
    """
    from bot import storage
    from bot.storage import pipeline as store

    settings, sessions = _open(ctx)
    with storage.session_scope(sessions) as session:
        rows = store.list_matches(session, accepted_only=not show_all, limit=limit)
        urls = {
            pk: storage.get_post_by_pk(session, pk).url
            for m in rows
            for pk in (m.lost_post_pk, m.found_post_pk)
        }
    for m in rows:
        record = {
            "lost": urls[m.lost_post_pk],
            "found": urls[m.found_post_pk],
            "confidence": round(m.confidence, 4),
            "similarity": round(m.similarity, 4),
            "accepted": m.accepted,
            "photos": [m.lost_photo_position + 1, m.found_photo_position + 1],
            "reasons": list(m.reasons),
            "model": m.model_id,
            "updated_at": m.updated_at.isoformat(),
        }
        if as_json:
            print_json(record)
        else:
            verdict = "ACCEPTED" if m.accepted else "rejected"
            typer.echo(
                f"{verdict:<8} {record['confidence']:.2f}  lost {record['lost']}  "
                f"found {record['found']}\n         {'; '.join(m.reasons)}"
            )
    if not rows and not as_json:
        typer.echo("no matches yet" + ("" if show_all else " (try --all for rejected ones)"))
    _list_unlooked(sessions, settings.processing.max_attempts, limit=limit, as_json=as_json)


def _list_unlooked(sessions: Any, max_attempts: int, *, limit: int, as_json: bool) -> None:
    """Posts that could not be looked at: `waiting` for the next try, or `failed` for good."""
    from bot import storage
    from bot.storage.problems import unlooked_posts

    with storage.session_scope(sessions) as session:
        rows = unlooked_posts(session, limit=limit)
    for item in rows:
        post, retry, state = item.post, item.retry, item.state
        record = {
            "post": post.url,
            "state": state,
            "attempts": retry.attempts,
            "max_attempts": max_attempts,
            "next_attempt_at": None if state == "failed" else retry.next_attempt_at.isoformat(),
            "reason": f"could not look at its photos: {retry.last_error}",
        }
        if as_json:
            print_json({"unlooked": record})
            continue
        when = "" if state == "failed" else f", next try {retry.next_attempt_at:%Y-%m-%d %H:%M}"
        typer.echo(
            f"{state:<8} {post.url}  ({retry.attempts} of {max_attempts} attempts{when})\n"
            f"         {record['reason']}"
        )


@comments_app.command("list")
def list_comments(
    ctx: typer.Context,
    limit: int = typer.Option(50, min=1),
    as_json: bool = typer.Option(False, "--json", help="One JSON object per line."),
) -> None:
    """Show comments: posted, dry-run, shadow, deferred or skipped, with the reason.

    Example: petmatch comments list --json
    """
    from bot import storage
    from bot.storage import pipeline as store

    _, sessions = _open(ctx)
    with storage.session_scope(sessions) as session:
        rows = store.list_comments(session, limit=limit)
    for c in rows:
        record = {
            "post": f"https://vk.com/wall{c.owner_id}_{c.post_id}",
            "state": c.state.value,
            "reason": c.reason,
            "text": c.text,
            "vk_comment_id": c.vk_comment_id,
            "created_at": c.created_at.isoformat(),
            "posted_at": c.posted_at.isoformat() if c.posted_at else None,
        }
        if as_json:
            print_json(record)
        else:
            typer.echo(f"{c.state.value:<8} {record['post']}  ({c.reason})\n         {c.text}")
    if not rows and not as_json:
        typer.echo("no comments yet")
