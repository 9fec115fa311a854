"""`petmatch poll`, `petmatch run` and `petmatch reindex`, plus the VK helpers they share."""

from __future__ import annotations

from dataclasses import asdict
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import typer

from bot.cli._context import fail, print_json, settings_from

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from bot.config import Settings
    from bot.polling import PollReport
    from bot.vk.credentials import RoleSplitGateway
    from bot.vk.gateway import VkApiGateway


def register(app: typer.Typer) -> None:
    """Add `poll`, `run` and `reindex` to the root app."""
    app.command("poll")(poll)
    app.command("run")(run)
    app.command("reindex")(reindex)


NO_TOKEN = (
    "no VK token for reading: set PETMATCH_VK__READ_TOKEN (the VK app's service key) or "
    "PETMATCH_VK__TOKEN, or their _FILE variants"
)


def has_token(settings: Settings) -> bool:
    """Whether a VK token for reading is configured (its file is not read here)."""
    from bot.vk.credentials import CredentialError, read_credential

    try:
        read_credential(settings.vk)
    except CredentialError:
        return False
    return True


def require_reader(settings: Settings) -> None:
    """One line naming the variable when nothing can read VK (or its file is unreadable)."""
    from bot.vk.credentials import CredentialError, read_credential

    try:
        read_credential(settings.vk)
    except CredentialError as exc:
        fail(str(exc))


def say_vk_features(settings: Settings) -> None:
    """The start-up line: which VK features the configured credentials allow."""
    import logging

    from bot.vk.credentials import describe_credentials

    line, degraded = describe_credentials(settings.vk)
    logging.getLogger("petmatch.vk").log(logging.WARNING if degraded else logging.INFO, line)


def build_gateway(settings: Settings) -> VkApiGateway | RoleSplitGateway:
    """The VK gateway (the reader and, when configured apart, the commenter), or one clear
    line when no token can read."""
    from bot.vk.credentials import open_vk_gateway
    from bot.vk.errors import TokenError

    try:
        return open_vk_gateway(settings.vk)
    except TokenError as exc:
        fail(str(exc))


def require_vision(settings: Settings) -> Any:
    """The vision models (segmenter, embedder, calibration), or one line and exit 1 when a
    model file is missing: before anything is polled."""
    from bot.pipeline import build_vision

    try:
        return build_vision(settings)
    except (FileNotFoundError, ValueError) as exc:
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        fail(f"{message} (data root {settings.home})")


def record_calls(engine: Engine, gateway: Any) -> None:
    """Add the gateway's VK calls so far to today's counts (for commands outside a cycle)."""
    from bot import storage

    counts = dict(getattr(gateway, "calls_today", {}) or {})
    if counts:
        with storage.session_scope(engine) as session:
            storage.add_vk_calls(session, datetime.now(UTC).date(), counts)


def refuse_workers_on_sqlite(settings: Any) -> None:
    """With `workers.enabled` the vision workers download, segment and embed; they refuse
    SQLite, so there nothing would ever be looked at, silently."""
    if settings.workers.enabled and settings.database_url.startswith("sqlite"):
        fail(
            "workers.enabled needs PostgreSQL (`petmatch worker` refuses SQLite, so no post "
            "would ever be looked at); unset PETMATCH_WORKERS__ENABLED to run alone on SQLite"
        )


def poll(
    ctx: typer.Context,
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
    process: bool = typer.Option(
        True,
        "--process/--no-process",
        help="Then run the pending posts through text, vision, matching and comments.",
    ),
    dry_run: bool = typer.Option(
        False, "--dry-run", help="Record what would be commented without posting anything."
    ),
) -> None:
    """Run one poll cycle now: read new posts of every group, download their photos (the
    vision workers do that with `workers.enabled`), then process the pending posts (unless
    --no-process).

    Example: petmatch poll --dry-run --json
    """
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from bot import storage
    from bot.cli.db_cmd import open_migrated
    from bot.polling import poll_cycle

    settings = settings_from(ctx)
    refuse_workers_on_sqlite(settings)
    engine = open_migrated(settings)
    require_reader(settings)
    vision = require_vision(settings) if process else None
    say_vk_features(settings)
    try:
        with storage.instance_lock(engine, lock_dir=settings.var_dir):
            gateway = build_gateway(settings)
            console = Console(stderr=True)
            columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn())
            try:
                with Progress(*columns, console=console, transient=True) as bar:
                    tasks: dict[str, Any] = {}

                    def progress(phase: str, done: int, total: int) -> None:
                        if phase not in tasks:
                            tasks[phase] = bar.add_task(phase, total=total)
                        bar.update(tasks[phase], completed=done, total=total)

                    report = poll_cycle(
                        storage.session_factory(engine),
                        gateway,
                        settings,
                        now=datetime.now(UTC),
                        progress=progress,
                    )
                processed = None
                if process and not report.token_error:
                    processed = _process(settings, engine, gateway, dry_run, console, vision)
            finally:
                gateway.close()
    except storage.AlreadyRunningError as exc:
        fail(str(exc))
    finally:
        engine.dispose()
    if as_json:
        payload = report.to_dict()
        if processed is not None:
            payload["processing"] = asdict(processed)
        print_json(payload)
    elif not report.token_error:
        _print_summary(report)
        if processed is not None:
            _print_processing(processed)
    if report.token_error:
        fail(report.token_error, code=2)


def _process(
    settings: Settings, engine: Engine, gateway: Any, dry_run: bool, console: Any, vision: Any
) -> Any:
    """Run the pending posts through the pipeline with a progress bar."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from bot import storage
    from bot.pipeline import Pipeline

    sessions = storage.session_factory(engine)
    pipeline = Pipeline(settings, sessions, gateway, vision=vision, dry_run=dry_run or None)
    with storage.session_scope(sessions) as session:
        total = len(storage.pending_posts(session, limit=1_000_000))
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn())
    with Progress(*columns, console=console, transient=True) as bar:
        task = bar.add_task("posts", total=total)
        return pipeline.process_pending(
            now=datetime.now(UTC), progress=lambda _post: bar.advance(task)
        )


def _print_processing(processed: Any) -> None:
    kinds = ", ".join(f"{k}: {v}" for k, v in sorted(processed.labelled.items())) or "none"
    typer.echo(
        f"processed {processed.posts} posts ({kinds}); {processed.animals} animals in "
        f"{processed.photos_segmented} photos; {processed.matches} candidate pairs, "
        f"{processed.accepted} confident"
    )
    for state, count in sorted(processed.comments.items()):
        typer.echo(f"  comments {state}: {count}")
    for failure in processed.failures:
        typer.echo(f"  failed: {failure}")
    for waiting in processed.retry_later:
        typer.echo(f"  could not look yet, will retry: {waiting}")


def _print_summary(report: PollReport) -> None:
    typer.echo(
        f"polled {report.groups_due} groups ({report.groups_ok} ok, {report.groups_failed} "
        f"failed, {report.groups_inaccessible} inaccessible) in {report.duration_seconds:.1f}s"
    )
    typer.echo(
        f"posts: {report.new_posts} new, {report.edited_posts} edited, "
        f"{report.skipped_ads} ads skipped"
        + (
            f", {report.skipped_items} malformed items skipped (petmatch problems list)"
            if report.skipped_items
            else ""
        )
    )
    typer.echo(
        f"photos: {report.photos_stored} stored, {report.photos_identical} identical to stored "
        f"ones, {report.photos_near_duplicate} near-duplicates, {report.photos_failed} failed, "
        f"{report.photos_retry_later} to retry"
    )
    calls = ", ".join(f"{k} {v}" for k, v in report.vk_calls.items()) or "none"
    typer.echo(f"VK calls: {calls}")
    if report.paused:
        typer.echo(f"paused: {report.paused}")
    for outcome in report.groups:
        if outcome.error:
            typer.echo(f"  {outcome.screen_name}: {outcome.status}: {outcome.error}")
    for bug in report.bugs:
        typer.echo(f"  bug: {bug}")


def run(ctx: typer.Context) -> None:
    """Run the bot: poll on a schedule and reindex nightly, until SIGTERM or Ctrl-C.

    Polls every `polling.interval_minutes` (one poll right at start) and reindexes on
    `polling.reindex_cron` (UTC); on SIGTERM the current step finishes first.

    Example: PETMATCH_POLLING__INTERVAL_MINUTES=10 petmatch run
    """
    from sqlalchemy.exc import SQLAlchemyError

    from bot.cli.db_cmd import open_migrated
    from bot.scheduler import run_scheduler
    from bot.storage import AlreadyRunningError, DatabaseNotMigratedError
    from bot.vk.errors import TokenError

    settings = settings_from(ctx)
    refuse_workers_on_sqlite(settings)
    open_migrated(settings).dispose()  # the first thing to fix, when it needs fixing
    require_reader(settings)
    vision = require_vision(settings)
    say_vk_features(settings)

    def stages(sessions: Any, gateway: Any) -> Any:
        from bot.pipeline import Pipeline

        return Pipeline(settings, sessions, gateway, vision=vision)

    try:
        run_scheduler(settings, stages=stages)
    except (DatabaseNotMigratedError, AlreadyRunningError) as exc:
        fail(str(exc))
    except TokenError as exc:
        fail(str(exc), code=2)
    except SQLAlchemyError as exc:
        fail(f"database failure: {str(exc).splitlines()[0][:300]}")


def reindex(
    ctx: typer.Context,
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Rebuild the similarity index from the database (the nightly cron job does the same).

    Run it after changing the re-ID model: each index belongs to one model version, and
    vectors of another model are never mixed in. Posts not yet embedded with the new model
    are embedded by the next `poll` / `run`.

    Example: petmatch reindex --json
    """
    import time

    from bot import storage
    from bot.cli.db_cmd import open_migrated
    from bot.pipeline import Pipeline

    settings = settings_from(ctx)
    engine = open_migrated(settings)
    started = time.monotonic()
    try:
        index = Pipeline(settings, storage.session_factory(engine), None).rebuild_index()
    except FileNotFoundError as exc:
        fail(str(exc))
    finally:
        engine.dispose()
    result = {
        "model": index.model_id,
        "vectors": len(index),
        "partitions": len(index.partitions()),
        "seconds": round(time.monotonic() - started, 3),
    }
    if as_json:
        print_json(result)
    else:
        typer.echo(
            f"reindexed {result['vectors']} vectors of {result['model']} in "
            f"{result['partitions']} partitions ({result['seconds']} s)"
        )
