"""`petmatch worker`: run the vision stage of posts claimed from the shared PostgreSQL."""

from __future__ import annotations

import signal
import threading
from dataclasses import asdict
from typing import Any

import typer

from bot.cli._context import fail, print_json, settings_from

SQLITE_REFUSAL = (
    "petmatch worker needs PostgreSQL (workers claim posts with SELECT … FOR UPDATE SKIP "
    "LOCKED); this database is SQLite: run `petmatch run` alone instead"
)


def register(app: typer.Typer) -> None:
    app.command("worker")(worker)


def worker(
    ctx: typer.Context,
    max_posts: int = typer.Option(0, "--max-posts", min=0, help="Stop after this many posts."),
    exit_when_idle: float = typer.Option(
        0.0, "--exit-when-idle", min=0, help="Exit after this many seconds without work."
    ),
    name: str = typer.Option("", "--name", help="Worker name in logs (default host:pid)."),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON at the end."),
) -> None:
    """Download, segment and embed the photos of posts claimed from the database, until
    SIGTERM or Ctrl-C.

    Run as many as the machines allow, against the PostgreSQL of one `petmatch run` whose
    `workers.enabled` is true (PETMATCH_WORKERS__ENABLED=true); with workers on other machines
    set `workers.files` to `database` everywhere so photos and crops travel through it.
    Workers download photos from VK's photo hosts and need no VK token.

    Example: PETMATCH_DATABASE_URL=postgresql+psycopg2://bot@db/petmatch petmatch worker
    """
    from sqlalchemy.exc import SQLAlchemyError

    from bot import storage
    from bot.cli.db_cmd import open_migrated
    from bot.pipeline import Pipeline
    from bot.vk.gateway import PhotoDownloader
    from bot.worker import VisionWorker, default_worker_name

    settings = settings_from(ctx)
    if settings.database_url.startswith("sqlite"):
        fail(SQLITE_REFUSAL)
    if settings.workers.files == "local":
        typer.echo(
            "warning: workers.files is local: what this worker stores (photos, crops) stays "
            "on this machine; set PETMATCH_WORKERS__FILES=database on every machine",
            err=True,
        )
    engine = open_migrated(settings)
    stop = threading.Event()

    def on_signal(signum: int, _frame: Any) -> None:
        stop.set()  # the current post finishes first

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    sessions = storage.session_factory(engine)
    pipeline = Pipeline(settings, sessions, None)
    downloader = PhotoDownloader(settings.vk)
    worker = VisionWorker(pipeline, sessions, name or default_worker_name(), downloader=downloader)
    try:
        report = worker.run(
            should_stop=stop.is_set,
            poll_seconds=settings.workers.poll_seconds,
            max_posts=max_posts,
            exit_when_idle=exit_when_idle,
        )
    except FileNotFoundError as exc:  # a model file
        fail(str(exc))
    except SQLAlchemyError as exc:
        fail(f"database failure: {str(exc).splitlines()[0][:300]}")
    finally:
        downloader.close()
        engine.dispose()
    if as_json:
        print_json(asdict(report))
    else:
        typer.echo(
            f"worker done: {report.posts} posts ({report.failed} failed, "
            f"{report.retry_later} to look at again later, {report.waiting} waiting for a "
            f"photo), {report.photos_downloaded} photos downloaded ({report.photos_failed} "
            f"failed), {report.photos_segmented} segmented, {report.animals} animals"
        )
