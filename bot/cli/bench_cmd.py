"""`petmatch bench matching`: comment precision and recall of the whole bot on a fake VK."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Annotated, Any

import typer

from bot.cli._context import fail, print_json, settings_from

bench_app = typer.Typer(help="Measure the bot end to end.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    """Add `bench` to the root app."""
    app.add_typer(bench_app, name="bench")


@bench_app.command("matching")
def matching_command(
    ctx: typer.Context,
    photos: Annotated[
        Path,
        typer.Option(
            "--photos",
            help="Identity-labelled folder (sub-folders or <id>_<n>.jpg).",
            exists=True,
            file_okay=False,
        ),
    ],
    identities: Annotated[
        int, typer.Option("--identities", min=2, help="Animals per scenario.")
    ] = 40,
    seeds: Annotated[int, typer.Option("--seeds", min=1, help="Scenarios (random seeds).")] = 5,
    first_seed: Annotated[int, typer.Option("--first-seed", help="Seeds are N, N+1, …")] = 0,
    species_word: Annotated[
        str, typer.Option("--species-word", help="The animal word in the post texts.")
    ] = "собака",
    in_sample: Annotated[
        bool,
        typer.Option(
            "--in-sample",
            help="Allow identities the calibration was fitted on; the result is labelled "
            "in-sample (it says nothing about animals the bot has never seen).",
        ),
    ] = False,
    plot: Annotated[
        Path | None, typer.Option("--plot", help="Write the precision–recall curve as a PNG.")
    ] = None,
    work_dir: Annotated[
        Path | None, typer.Option("--work-dir", help="Scratch folder (default: a temp folder).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Comment precision and recall, with 95% intervals, over random scenarios from a folder.

    Each scenario seeds a fake VK with lost and found posts of random animals from the folder,
    runs the real pipeline (daily cap, minimum gap and quiet hours off) and counts the comments
    as they arrive; the curve shows precision and recall over the confidence threshold.

    Example: petmatch bench matching --photos ../shared/data/reid/dogfacenet --seeds 5 --plot pr.png
    """
    from rich.console import Console
    from rich.progress import Progress

    from bot.bench import folder_identities, plot_curve, run_matching_bench
    from bot.pipeline import build_vision, load_calibration

    settings = settings_from(ctx)
    try:
        by_identity = folder_identities(photos)
    except FileNotFoundError as exc:
        fail(str(exc))
    if sum(len(p) >= 2 for p in by_identity.values()) < 2:
        fail(f"{photos}: fewer than two identities have two or more photos")
    try:
        vision = build_vision(settings)
        calibration = load_calibration(settings, vision.embedder)
    except (FileNotFoundError, ValueError, OSError) as exc:
        fail(str(exc))
    overlap = calibration.fitted_on(list(by_identity))
    if overlap and not in_sample:
        sample = ", ".join(sorted(overlap)[:5]) + ("…" if len(overlap) > 5 else "")
        fail(
            f"{len(overlap)} identities of {photos} were used to fit the calibration "
            f"({sample}): measure on animals it has never seen, or pass --in-sample"
        )
    threshold = vision.match_policy.threshold
    with (
        tempfile.TemporaryDirectory(prefix="petmatch-bench-") as tmp,
        Progress(console=Console(stderr=True), transient=True) as progress,
    ):
        task = progress.add_task("scenarios", total=seeds)
        result = run_matching_bench(
            settings,
            by_identity,
            work_dir=work_dir or Path(tmp),
            vision=vision,
            threshold=threshold,
            identities=identities,
            seeds=range(first_seed, first_seed + seeds),
            species_word=species_word,
            on_scenario=lambda _outcome: progress.advance(task),
        )
    payload: dict[str, Any] = {
        "photos": str(photos),
        "model": vision.embedder.model_id,
        "in_sample": bool(overlap),
        "identities_per_scenario": identities,
        **result.as_dict(),
    }
    if plot is not None:
        try:
            plot_curve(result, plot, f"{photos.name}: {seeds} scenarios × {identities} animals")
        except ImportError:
            fail("--plot needs matplotlib: pip install 'petmatch[train]'")
        payload["plot"] = str(plot)
    if as_json:
        print_json(payload)
        return
    _print(payload)


def _print(payload: dict[str, Any]) -> None:
    op = payload["operating"]

    def ci(value: Any, interval: Any) -> str:
        if value is None:
            return "n/a (no comments)"
        low, high = interval
        return f"{value:.3f}  (95% CI {low:.3f}–{high:.3f})"

    label = "  [IN-SAMPLE: fitted on some of these animals]" if payload["in_sample"] else ""
    typer.echo(f"model       {payload['model']}{label}")
    typer.echo(
        f"scenarios   {payload['scenarios']} × {payload['identities_per_scenario']} animals, "
        f"{payload['pairs']} true lost/found pairs"
    )
    typer.echo(f"threshold   {op['threshold']:.3f}")
    typer.echo(
        f"comments    {op['comments']} ({op['correct_comments']} right, "
        f"{op['wrong_comments']} wrong), {op['missed_pairs']} pairs missed"
    )
    typer.echo(f"precision   {ci(op['precision'], op['precision_ci95'])}")
    typer.echo(f"recall      {ci(op['recall'], op['recall_ci95'])}")
    if payload.get("plot"):
        typer.echo(f"curve       {payload['plot']}")
    for failure in payload["failures"][:5]:
        typer.echo(f"failure     {failure}", err=True)
