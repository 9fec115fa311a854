"""`petmatch reid …` and `petmatch models …`: evaluation, training, export, model preparation.

`reid_app` is shared: `train_cmd` adds `reid train` / `reid export` to it.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from bot.cli._context import fail, print_json, settings_from

if TYPE_CHECKING:
    from bot.config import Settings
    from reid import Embedder

reid_app = typer.Typer(
    help="Re-identification models: evaluate, train, export.", no_args_is_help=True
)
models_app = typer.Typer(
    help="Prepare the models the bot runs (ONNX export, cache).", no_args_is_help=True
)


def register(app: typer.Typer) -> None:
    """Add `reid` and `models` to the root app."""
    app.add_typer(reid_app, name="reid")
    app.add_typer(models_app, name="models")


def build_cli_embedder(settings: Settings, model: str | None, batch_size: int) -> Embedder:
    """A registered backend by name, or any exported `.onnx` (described by its sidecar JSON)."""
    from reid import available_embedders, build_embedder, load_onnx_embedder

    name = model or settings.reid.model
    if name.endswith(".onnx") or Path(name).is_file():
        return load_onnx_embedder(Path(name), batch_size=batch_size)
    if name not in available_embedders():
        valid = ", ".join(available_embedders())
        fail(f"unknown model {name!r}: give a registered name ({valid}) or a path to an .onnx")
    from reid._efficientnet import LITE_SPECS

    kwargs: dict[str, Any] = {"models_dir": settings.models_dir, "batch_size": batch_size}
    if name not in LITE_SPECS:
        if settings.reid.weights is None:
            fail(f"model {name!r} needs weights: set PETMATCH_REID__WEIGHTS or pass an .onnx")
        kwargs["weights"] = settings.reid.weights
    return build_embedder(name, **kwargs)


def _embed_folder(embedder: Embedder, folder: Path, limit: int | None, label: str) -> Any:
    from rich.console import Console
    from rich.progress import Progress

    from reid.evaluation import embed_labelled, list_labelled_images

    try:
        items = list_labelled_images(folder, limit_identities=limit)
    except FileNotFoundError as exc:
        fail(str(exc))
    if not items:
        fail(f"no images under {folder}")
    with Progress(console=Console(stderr=True), transient=True) as progress:
        task = progress.add_task(f"embedding {label}", total=len(items))
        embedded = embed_labelled(embedder, items, progress=lambda n: progress.advance(task, n))
    for path, reason in embedded.unreadable:
        typer.echo(f"warning: unreadable image skipped: {path} ({reason})", err=True)
    return embedded


@reid_app.command("eval")
def eval_command(
    ctx: typer.Context,
    gallery: Annotated[Path, typer.Option("--gallery", help="Folder of gallery images.")],
    query: Annotated[Path | None, typer.Option("--query", help="Folder of query images.")] = None,
    leave_one_out: Annotated[
        bool,
        typer.Option("--leave-one-out", help="Query each gallery image against all the others."),
    ] = False,
    model: Annotated[
        str | None,
        typer.Option("--model", help="Registered backend name or a path to an exported .onnx."),
    ] = None,
    limit: Annotated[
        int | None,
        typer.Option("--limit", min=1, help="Use only the first N identities, for quick runs."),
    ] = None,
    batch_size: Annotated[int, typer.Option("--batch-size", min=1)] = 32,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Rank-1/5/10, mAP and the CMC curve of a re-ID model on identity-labelled folders.

    Identity is the sub-folder name, or the file-name part before the first `_`.

    Example: petmatch reid eval --query data/vk_set2/query --gallery data/vk_set2/gallery

    Example: petmatch reid eval --gallery data/dogfacenet --leave-one-out --limit 200 --json
    """
    from reid import ReidError
    from reid.evaluation import evaluate_leave_one_out, evaluate_query_gallery

    if (query is None) == (not leave_one_out):
        fail("give either --query DIR or --leave-one-out (not both, not neither)")
    settings = settings_from(ctx)
    started = time.perf_counter()
    try:
        embedder = build_cli_embedder(settings, model, batch_size)
        gallery_set = _embed_folder(embedder, gallery, limit, "gallery")
        if leave_one_out:
            metrics = evaluate_leave_one_out(gallery_set.vectors, gallery_set.identities)
        else:
            assert query is not None
            query_set = _embed_folder(embedder, query, limit, "query")
            metrics = evaluate_query_gallery(
                query_set.vectors,
                query_set.identities,
                gallery_set.vectors,
                gallery_set.identities,
            )
    except (ReidError, FileNotFoundError, ValueError) as exc:
        fail(str(exc))
    except Exception as exc:  # onnxruntime's own errors (a corrupt .onnx) subclass only Exception
        if not type(exc).__module__.startswith("onnxruntime"):
            raise
        first = str(exc).strip().splitlines()
        fail(f"cannot run the model: {(first[0] if first else type(exc).__name__)[:300]}")
    if metrics.queries == 0:
        fail(
            "nothing to evaluate: no query image has another image of its identity in the "
            "gallery (each identity needs at least two images for --leave-one-out)"
        )
    seconds = time.perf_counter() - started
    payload = {**metrics.model_dump(), "model": embedder.model_id, "seconds": round(seconds, 2)}
    if as_json:
        print_json(payload)
        return
    typer.echo(f"model     {embedder.model_id}")
    typer.echo(f"queries   {metrics.queries}    gallery {metrics.gallery}")
    typer.echo(
        f"rank-1 {metrics.rank1:.3f}   rank-5 {metrics.rank5:.3f}   "
        f"rank-10 {metrics.rank10:.3f}   mAP {metrics.mAP:.3f}"
    )
    typer.echo("CMC       " + " ".join(f"{v:.2f}" for v in metrics.cmc))
    typer.echo(f"seconds   {seconds:.1f}")


@models_app.command("prepare")
def prepare_command(
    ctx: typer.Context,
    force: Annotated[
        bool, typer.Option("--force", help="Export again even if up to date.")
    ] = False,
    quantize: Annotated[
        bool,
        typer.Option(
            "--quantize",
            help="Also write static-int8 copies of U²-Net-p and the embedder (*.int8.onnx), "
            "calibrated on scikit-image's photos and the bot's stored photos; switch them on "
            "with segmentation.quantized / reid.quantized.",
        ),
    ] = False,
) -> None:
    """Export the ONNX models the bot runs into the models folder (needs torch, once).

    Skips files that are already there and match their source weights.

    Example: petmatch models prepare --quantize
    """
    settings = settings_from(ctx)
    models_dir = settings.models_dir
    try:
        import torch  # noqa: F401
    except ImportError:
        fail(
            "exporting models needs torch, which is not installed: "
            "pip install 'petmatch[train]' (the running bot itself needs only onnxruntime)"
        )
    from reid import available_embedders
    from reid._efficientnet import LITE_SPECS
    from reid.export import prepare_efficientnet_lite

    # Lite0 always: the segmenter's cat/dog gate is its ImageNet classifier. Then the
    # configured embedder when it is another EfficientNet-Lite.
    names = ["efficientnet_lite0"]
    if settings.reid.model in LITE_SPECS and settings.reid.model not in names:
        names.append(settings.reid.model)
    paths: dict[str, Path] = {}
    for name in names:
        typer.echo(f"preparing {name} in {models_dir} …", err=True)
        path, exported = prepare_efficientnet_lite(name, models_dir, force=force)
        paths[name] = path
        typer.echo(f"{'exported' if exported else 'up to date'}: {path}")
    if quantize:
        _quantize(settings, paths.get(settings.reid.model, paths["efficientnet_lite0"]))
    weights = settings.reid.weights
    if weights is not None and "osnet" in available_embedders():
        from reid._osnet import prepare_osnet_onnx

        typer.echo(f"preparing OSNet from {weights} …", err=True)
        typer.echo(f"ready: {prepare_osnet_onnx(Path(weights), models_dir=models_dir)}")


def _quantize(settings: Any, embedder_onnx: Path) -> None:
    """int8 copies of U²-Net-p and the embedder, calibrated on what this install has."""
    from bot.quantize import (
        U2NETP_INT8,
        calibration_images,
        int8_path,
        quantize_embedder,
        quantize_u2netp,
    )
    from segmentation._u2netp import default_u2netp_path

    stored = sorted(Path(settings.photos_dir).rglob("*.jpg")) if settings.photos_dir else []
    images = calibration_images(stored)
    typer.echo(f"quantizing with {len(images)} calibration images …", err=True)
    u2net = quantize_u2netp(default_u2netp_path(), settings.models_dir / U2NETP_INT8, images)
    typer.echo(f"int8: {u2net}")
    typer.echo(f"int8: {quantize_embedder(embedder_onnx, int8_path(embedder_onnx), images)}")
