"""``groundbench train-clip`` and ``groundbench baseline-clip``: the box-free contrastive baseline."""

from __future__ import annotations

import json

import click

_SET = click.option(
    "--set",
    "overrides",
    multiple=True,
    metavar="KEY=VALUE",
    help="Override a setting of the small CLIP, e.g. steps=100 (see docs/contrastive.md).",
)
_THREADS = click.option(
    "--threads",
    type=click.IntRange(min=1),
    default=None,
    help="torch CPU threads [default: torch's]. On a busy machine 1 thread can be several "
    "times faster than 2.",
)


def _config(overrides):
    from groundbench.contrastive import ClipTrainConfig

    return ClipTrainConfig().with_overrides(overrides)


def _set_threads(threads: int | None) -> None:
    if threads is not None:
        import torch

        torch.set_num_threads(threads)


@click.command("train-clip")
@click.option(
    "--out", "out_dir", required=True, type=click.Path(file_okay=False), help="Model directory."
)
@_SET
@click.option(
    "--data", default=None, metavar="ADAPTER:ROOT", help="Captions [default: the synthetic set]."
)
@click.option("--split", default="train", show_default=True, help="Split whose captions are read.")
@click.option("--device", default="cpu", show_default=True, help="cpu, cuda or cuda:N.")
@_THREADS
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def train_clip_command(out_dir, overrides, data, split, device, threads, as_json) -> None:
    """Train a small CLIP contrastively on captions (boxes are never read).

    OUT becomes a save_pretrained directory that --method hf:OUT:RECIPE evaluates."""
    from groundbench.cli.train import _captions
    from groundbench.contrastive import train_clip

    config = _config(overrides)
    _set_threads(threads)
    result = train_clip(_captions(data, split), out_dir, config, device=device)
    summary = {
        "model_dir": str(result.out_dir),
        "steps": result.steps,
        "first_loss": result.first_loss,
        "final_loss": result.final_loss,
        "seconds": round(result.seconds, 1),
        "threads": result.threads,
    }
    if as_json:
        click.echo(json.dumps(summary))
    else:
        click.echo(
            f"trained {result.steps} steps in {summary['seconds']} s on {result.threads} thread(s), "
            f"loss {result.first_loss:.3f} -> {result.final_loss:.3f}\nmodel: {result.out_dir}\n"
            f"evaluate it: groundbench evaluate --protocol synth_test.albef --method "
            f"hf:{result.out_dir}:relevance --out REPORT_DIR"
        )


@click.command("baseline-clip")
@click.option(
    "--out",
    default="runs/clip",
    show_default=True,
    type=click.Path(file_okay=False),
    help="Run folder.",
)
@click.option(
    "--board",
    default=None,
    type=click.Path(file_okay=False),
    help="Leaderboard folder to add the reports to and build [default: OUT/board].",
)
@_SET
@click.option(
    "--rise-masks",
    default=1000,
    show_default=True,
    type=click.IntRange(min=1),
    help="RISE masks per sample (TorchRay's default is 8000; see docs/contrastive.md).",
)
@click.option(
    "--recipe",
    "only",
    multiple=True,
    type=click.Choice(["relevance", "gradcam", "rise"]),
    help="Score only this recipe (repeatable) [default: all three].",
)
@click.option(
    "--protocol",
    "protocols",
    multiple=True,
    help="Protocol (repeatable) [default: every synthetic one but val].",
)
@click.option(
    "--limit",
    type=click.IntRange(min=1),
    default=None,
    help="Score only N samples per protocol (smoke run; adds nothing to the board).",
)
@click.option("--batch-size", default=64, show_default=True, help="Evaluation batch size.")
@click.option("--device", default="cpu", show_default=True, help="torch device.")
@_THREADS
@click.option(
    "--data-root",
    default=None,
    type=click.Path(file_okay=False, exists=True),
    help="A native-format synthetic set [default: the generated default set].",
)
def baseline_clip_command(
    out,
    board,
    overrides,
    rise_masks,
    only,
    protocols,
    limit,
    batch_size,
    device,
    threads,
    data_root,
):
    """Train the small CLIP on the synthetic captions and score it with relevance, gradcam
    and RISE on every synthetic protocol; add the reports to the board and build it.

    A rerun reuses the model when its settings match and skips every report that is up to date."""
    from groundbench.clip_baseline import run_clip_baseline

    config = _config(overrides)
    _set_threads(threads)
    result = run_clip_baseline(
        out,
        board=board,
        config=config,
        rise_masks=rise_masks,
        only=only or None,
        protocols=protocols or None,
        device=device,
        batch_size=batch_size,
        limit=limit,
        data_root=data_root,
        announce=lambda line: click.echo(f"groundbench baseline-clip: {line}", err=True),
    )
    if result.board is not None:
        click.echo(result.board.summary, nl=False)
    click.echo(f"\nmodel:   {result.model_dir}\nreports: {len(result.reports)} under {out}/reports")


COMMANDS = [train_clip_command, baseline_clip_command]
