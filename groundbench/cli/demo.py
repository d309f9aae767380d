"""``groundbench demo``: the quick start's main job."""

from __future__ import annotations

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
    default="leaderboard",
    show_default=True,
    type=click.Path(file_okay=False),
    help="Leaderboard folder.",
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
    help="A synthetic dataset in the native format [default: the generated default set].",
)
def demo_command(out, board, preset, device, overrides, data_root):
    """Generate the synthetic benchmark, train the reference model, evaluate it and the
    baselines on every synthetic protocol, and print the leaderboard."""
    from groundbench.demo import run_demo

    result = run_demo(
        out,
        board=board,
        preset=preset,
        device=device,
        train_overrides=overrides,
        data_root=data_root,
    )
    click.echo(result.board.markdown.read_text())
    click.echo(
        f"checkpoint: {result.checkpoint}\nreports: {out}/reports\nboard: {result.board.html}"
    )


COMMANDS = [demo_command]
