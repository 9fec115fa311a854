"""`petmatch reid train`, `petmatch reid export` and `petmatch dataset build`.

Torch is imported inside the commands (the `train` extra), so `petmatch --help` stays instant.
"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Annotated, Any

import typer

from bot.cli._context import fail, print_json, settings_from
from bot.cli.reid_cmd import reid_app

dataset_app = typer.Typer(
    help="Build re-ID training datasets from pet posts.", no_args_is_help=True
)

DEFAULT_PERSON_WEIGHTS = Path("../shared/models/osnet_x0_25_msmt17.pth")


def register(app: typer.Typer) -> None:
    """Add `reid train`, `reid export` (to the shared `reid` app) and `dataset build`."""
    reid_app.command("train")(train_command)
    reid_app.command("export")(export_command)
    app.add_typer(dataset_app, name="dataset")
    dataset_app.command("build")(dataset_build_command)


def _parse_size(text: str) -> tuple[int, int]:
    try:
        h, w = (int(v) for v in text.lower().split("x"))
    except ValueError:
        fail(f"--input must look like 256x128 (height x width), got {text!r}")
    if h < 32 or w < 32:
        fail("--input sides must be at least 32 pixels")
    return h, w


def train_command(
    data: Annotated[
        Path, typer.Option("--data", help="Identity folders to train on (<id>/<img>.jpg).")
    ],
    out: Annotated[Path, typer.Option("--out", help="Run folder: checkpoints, metrics, reports.")],
    val_query: Annotated[
        Path | None, typer.Option("--val-query", help="Validation queries (never trained on).")
    ] = None,
    val_gallery: Annotated[
        Path | None, typer.Option("--val-gallery", help="Validation gallery.")
    ] = None,
    init: Annotated[
        str, typer.Option("--init", help="scratch | person | distill (EfficientNet-Lite0 teacher).")
    ] = "person",
    person_weights: Annotated[
        Path, typer.Option("--person-weights", help="torchreid OSNet weights for --init person.")
    ] = DEFAULT_PERSON_WEIGHTS,
    arch: Annotated[
        str, typer.Option("--arch", help="osnet_x0_25 | osnet_x0_5 | osnet_x0_75 | osnet_x1_0.")
    ] = "osnet_x0_25",
    epochs: Annotated[int, typer.Option("--epochs", min=1)] = 30,
    input_size: Annotated[
        str,
        typer.Option(
            "--input", help="HxW: 256x128 (stretched) or square, e.g. 224x224 (letterboxed)."
        ),
    ] = "256x128",
    resume: Annotated[bool, typer.Option("--resume", help="Continue from <out>/last.pt.")] = False,
    device: Annotated[str, typer.Option("--device", help="auto | cpu | cuda.")] = "auto",
    batch_p: Annotated[int, typer.Option("--batch-p", help="Identities per batch.")] = 16,
    batch_k: Annotated[int, typer.Option("--batch-k", help="Images per identity per batch.")] = 4,
    lr: Annotated[float, typer.Option("--lr")] = 3e-4,
    holdout_percent: Annotated[
        int,
        typer.Option(
            "--holdout-percent",
            help="Identities of --data held out (hash split) for leave-one-out evaluation.",
        ),
    ] = 20,
    max_identities: Annotated[
        int | None,
        typer.Option(
            "--max-identities", help="Train on the first N training identities only (short runs)."
        ),
    ] = None,
    max_images: Annotated[int | None, typer.Option("--max-images-per-identity")] = None,
    holdout_max: Annotated[
        int | None,
        typer.Option(
            "--holdout-max-identities", help="Evaluate on N held-out identities per epoch."
        ),
    ] = None,
    save_epochs: Annotated[
        str,
        typer.Option(
            "--save-epochs",
            help="Keep checkpoints of these epochs (activation maps), e.g. 3,12,30,60.",
        ),
    ] = "",
    seed: Annotated[int, typer.Option("--seed")] = 0,
    threads: Annotated[
        int | None,
        typer.Option("--threads", help="CPU threads for torch (1 is best on a busy box)."),
    ] = None,
    report: Annotated[
        bool,
        typer.Option(
            "--report/--no-report",
            help="After training: evaluation report, calibration, activation maps.",
        ),
    ] = True,
) -> None:
    """Train OSNet on identity folders; prints one JSON line of metrics per epoch.

    Example: petmatch reid train --data ../shared/data/reid/dogfacenet
    --val-query ../shared/data/reid/vk_set2/query --val-gallery ../shared/data/reid/vk_set2/gallery
    --out runs/person_256x128 --init person --epochs 60
    """
    if init not in ("scratch", "person", "distill"):
        fail(f"--init must be scratch, person or distill, got {init!r}")
    if (val_query is None) != (val_gallery is None):
        fail("give both --val-query and --val-gallery, or neither")
    if init == "person" and not person_weights.is_file():
        fail(f"person-re-ID weights not found at {person_weights}; pass --person-weights")
    try:
        saves = tuple(int(v) for v in save_epochs.split(",") if v.strip())
    except ValueError:
        fail(f"--save-epochs must be comma-separated integers, got {save_epochs!r}")
    try:
        from reid.training import TrainConfig, train
    except ImportError as exc:
        fail(f"training needs torch: pip install 'petmatch[train]' ({exc})")

    if threads is not None:
        import torch

        torch.set_num_threads(threads)
    config = TrainConfig(
        data=data,
        out=out,
        val_query=val_query,
        val_gallery=val_gallery,
        init=init,
        person_weights=person_weights if init == "person" else None,
        arch=arch,
        epochs=epochs,
        input_size=_parse_size(input_size),
        resume=resume,
        device=device,
        batch_p=batch_p,
        batch_k=batch_k,
        lr=lr,
        holdout_percent=holdout_percent,
        max_identities=max_identities,
        max_images_per_identity=max_images,
        holdout_max_identities=holdout_max,
        save_epochs=saves,
        seed=seed,
    )
    try:
        result = train(config, on_epoch=print_json)
    except (FileNotFoundError, ValueError, RuntimeError) as exc:
        fail(str(exc))
    if report:
        from reid.training import write_activation_grid, write_evaluation_report

        summary = write_evaluation_report(
            result.last_checkpoint,
            out / "report",
            val_query=val_query,
            val_gallery=val_gallery,
            holdout_data=data,
            holdout_percent=holdout_percent,
            device=device,
        )
        checkpoints = [out / f"epoch_{e}.pt" for e in saves if (out / f"epoch_{e}.pt").is_file()]
        samples = _sample_images(val_gallery or data, 8)
        if samples:
            write_activation_grid(
                checkpoints or [result.last_checkpoint],
                samples,
                out / "report" / "activations.png",
                device=device,
            )
        print_json(
            {
                "report": str(out / "report"),
                **{k: summary[k] for k in ("val", "holdout") if k in summary},
            }
        )


def _sample_images(folder: Path, n: int) -> list[Path]:
    from reid.evaluation import list_labelled_images

    items = list_labelled_images(folder)
    step = max(1, len(items) // n)
    return [item.path for item in items[::step][:n]]


def export_command(
    checkpoint: Annotated[
        Path, typer.Option("--checkpoint", help="A `reid train` checkpoint (.pt).")
    ],
    out: Annotated[
        Path,
        typer.Option("--out", help="Folder for the .onnx, its .json sidecar and the model card."),
    ],
    name: Annotated[
        str | None, typer.Option("--name", help="File stem (default osnet_x0_25_pets_<h>x<w>).")
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the written paths as JSON.")
    ] = False,
) -> None:
    """Export a trained checkpoint to ONNX + sidecar + model card (uses <run>/report if present).

    Example: petmatch reid export --checkpoint runs/person_256x128/best.pt --out models/
    """
    if not checkpoint.is_file():
        fail(f"checkpoint {checkpoint} does not exist")
    try:
        from reid.training import export_checkpoint
    except ImportError as exc:
        fail(f"export needs torch: pip install 'petmatch[train]' ({exc})")
    report_dir = checkpoint.parent / "report"
    report = None
    if (report_dir / "report.json").is_file():
        report = json.loads((report_dir / "report.json").read_text(encoding="utf-8"))
    calibration = report_dir / "calibration.json"
    try:
        exported = export_checkpoint(
            checkpoint,
            out,
            date=date.today().isoformat(),
            report=report,
            calibration=calibration if calibration.is_file() else None,
            name=name,
        )
    except (ValueError, KeyError) as exc:
        fail(str(exc))
    if as_json:
        print_json(exported.model_dump(mode="json"))
    else:
        typer.echo(f"wrote {exported.onnx}, {exported.sidecar.name}, {exported.card.name}")


def dataset_build_command(
    ctx: typer.Context,
    out: Annotated[
        Path,
        typer.Option(
            "--out", help="Dataset folder (identities/, contact_sheets/, report.json, split.json)."
        ),
    ],
    photos: Annotated[
        Path | None,
        typer.Option("--photos", help="Exported posts: <postid>_<n>.jpg or <postid>/<n>.jpg."),
    ] = None,
    from_db: Annotated[
        bool,
        typer.Option(
            "--from-db", help="Use the lost/found posts the bot has stored (one per case)."
        ),
    ] = False,
    from_reviews: Annotated[
        bool,
        typer.Option(
            "--from-reviews",
            help="Use the pairs reviewers confirmed on the desk: one identity per animal.",
        ),
    ] = False,
    segmenter: Annotated[
        str, typer.Option("--segmenter", help="Registered segmentation backend.")
    ] = "u2netp",
    val_percent: Annotated[
        int, typer.Option("--val-percent", help="Identities held out for validation (hash split).")
    ] = 20,
    min_side: Annotated[
        int, typer.Option("--min-side", help="Drop crops smaller than this (pixels).")
    ] = 48,
    as_json: Annotated[bool, typer.Option("--json", help="Print the counts as JSON.")] = False,
) -> None:
    """Cut the animals out of post photos into identity folders, with a report: from a
    folder of exported posts (--photos) or from the posts the bot has stored (--from-db).

    Example: petmatch dataset build --from-db --out datasets/vk_2025

    Example: petmatch dataset build --from-reviews --out datasets/confirmed
    """
    from rich.console import Console
    from rich.progress import Progress

    from reid.training import DatasetConfig, build_dataset, posts_from_folder
    from segmentation import build_segmenter

    settings = settings_from(ctx)
    if (photos is not None) + from_db + from_reviews != 1:
        fail("give exactly one of --photos DIR, --from-db and --from-reviews")
    try:
        if from_reviews:
            posts = _posts_from_reviews(settings)
        elif photos is not None:
            posts = posts_from_folder(photos)
        else:
            posts = _posts_from_db(settings)
    except FileNotFoundError as exc:
        fail(str(exc))
    kwargs = {"models_dir": settings.models_dir} if segmenter == "u2netp" else {}
    try:
        seg = build_segmenter(segmenter, **kwargs)
    except (KeyError, ValueError, FileNotFoundError) as exc:
        fail(str(exc))
    config = DatasetConfig(val_percent=val_percent, min_side=min_side)
    with Progress(console=Console(stderr=True), transient=True) as progress:
        task = progress.add_task("posts", total=len(posts))
        report = build_dataset(
            posts, seg, out, config=config, progress=lambda n: progress.advance(task, n)
        )
    if as_json:
        print_json(report.counts)
    else:
        typer.echo(" ".join(f"{k}={v}" for k, v in report.counts.items()))
        typer.echo(f"report: {out / 'report.json'}")


def _posts_from_db(settings: Any) -> list[Any]:
    from bot import storage
    from bot.cli.db_cmd import open_migrated
    from bot.storage.pipeline import dataset_posts
    from reid.training import PostPhotos

    engine = open_migrated(settings)
    try:
        with storage.session_scope(engine) as session:
            stored = dataset_posts(session)
    finally:
        engine.dispose()
    return [PostPhotos(post_id=name, photos=tuple(paths)) for name, paths in stored]


def _posts_from_reviews(settings: Any) -> list[Any]:
    """The matched photos of the pairs reviewers confirmed, one identity per animal."""
    from bot import storage
    from bot.cli.db_cmd import open_migrated
    from bot.storage.reviews import confirmed_pair_photos
    from reid.training import PostPhotos

    engine = open_migrated(settings)
    try:
        with storage.session_scope(engine) as session:
            stored = confirmed_pair_photos(session)
    finally:
        engine.dispose()
    if not stored:
        fail("no confirmed pairs yet: reviewers confirm pairs on the desk (petmatch web)")
    return [PostPhotos(post_id=name, photos=tuple(paths)) for name, paths in stored]
