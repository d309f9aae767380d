"""``groundbench probe randomise``: the randomisation sanity probe."""

from __future__ import annotations

import click


@click.group("probe")
def probe() -> None:
    """Sanity probes of a method (beside the scores, not part of them)."""


@probe.command("randomise")
@click.option(
    "--protocol", required=True, help="Protocol name or YAML file (samples and pipeline)."
)
@click.option(
    "--method",
    "method_spec",
    required=True,
    help="Method spec with layers to reset, e.g. checkpoint:PATH or hf:DIR:RECIPE.",
)
@click.option(
    "--out", "out_dir", required=True, type=click.Path(file_okay=False), help="Report directory."
)
@click.option(
    "--limit",
    type=click.IntRange(min=1),
    default=32,
    show_default=True,
    help="Samples probed (the first N by id); every reset re-explains them.",
)
@click.option(
    "--seed", default=42, show_default=True, help="Quantus' seed (seed + 1 before each reset)."
)
@click.option(
    "--max-layers",
    type=click.IntRange(min=1),
    default=None,
    help="Reset at most N layers per tower [default: all].",
)
@click.option("--batch-size", default=32, show_default=True, help="Samples per predict call.")
@click.option("--device", default="cpu", show_default=True, help="torch device.")
@click.option(
    "--data-root",
    default=None,
    type=click.Path(file_okay=False, exists=True),
    help="Dataset folder.",
)
def randomise(
    protocol, method_spec, out_dir, limit, seed, max_layers, batch_size, device, data_root
) -> None:
    """Reset the method's layers top-down, tower by tower (Adebayo et al. 2018, Quantus MPRT),
    and report how much its maps still agree with the original ones.

    Writes OUT/report.json, report.md and randomisation.png; `groundbench leaderboard add OUT`
    shows the end points beside the scores."""
    from groundbench.sanity import randomisation_probe

    report = randomisation_probe(
        protocol,
        method_spec,
        out_dir=out_dir,
        limit=limit,
        seed=seed,
        max_layers=max_layers,
        device=device,
        batch_size=batch_size,
        data_root=data_root,
    )
    for name, tower in report["towers"].items():
        end = tower["end_point"]
        value = (
            "undefined"
            if end["mean"] is None
            else f"{end['mean']:.3f} [{end['ci_low']:.3f}, {end['ci_high']:.3f}]"
        )
        flag = "  SURVIVES randomisation" if tower["survives"] else ""
        click.echo(
            f"{name:10s} {len(tower['layers']):3d} layers reset  end-point Spearman {value}{flag}"
        )
    click.echo(f"report: {out_dir}/report.md")


COMMANDS = [probe]
