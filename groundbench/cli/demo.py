"""``groundbench demo``: the quick start's main job."""

from __future__ import annotations

from pathlib import Path

import click


@click.command("demo")
@click.option(
    "--out",
    default="runs/demo",
    show_default=True,
    type=click.Path(file_okay=False),
    help="Run folder.",
)
@click.option(
    "--board",
    default=None,
    type=click.Path(file_okay=False),
    help="Leaderboard folder to add the reports to and build [default: OUT/board]. The "
    "committed leaderboard/ changes only when named here.",
)
@click.option(
    "--preset", default="small-cpu", show_default=True, help="Reference-model preset to train."
)
@click.option("--device", default="cpu", show_default=True, help="torch device.")
@click.option(
    "--set",
    "overrides",
    multiple=True,
    metavar="KEY=VALUE",
    help="Override a training setting, e.g. train.max_captions=2000.",
)
@click.option(
    "--data-root",
    default=None,
    type=click.Path(file_okay=False, exists=True),
    help="A synthetic dataset in the native format [default: the generated default set in "
    "$GROUNDBENCH_DATA/synth, else ~/.cache/groundbench/synth].",
)
def demo_command(out, board, preset, device, overrides, data_root):
    """Generate the synthetic benchmark, train the reference model, evaluate it and the
    baselines on every synthetic protocol, build the run's leaderboard and print a summary.

    Stages are announced on stderr; a rerun reuses the checkpoint when its config matches
    and skips every report that is up to date."""
    from groundbench.demo import run_demo

    result = run_demo(
        out,
        board=board,
        preset=preset,
        device=device,
        train_overrides=overrides,
        data_root=data_root,
        announce=lambda line: click.echo(f"groundbench demo: {line}", err=True),
    )
    click.echo(result.board.summary, nl=False)
    click.echo(
        f"\ncheckpoint: {result.checkpoint}\n"
        f"reports:    {Path(out) / 'reports'} (PROTOCOL/METHOD/report.md, with figures)\n"
        f"board:      {result.board.html}"
    )


COMMANDS = [demo_command]
