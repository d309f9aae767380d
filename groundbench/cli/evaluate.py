"""``groundbench evaluate``: score a method under a protocol and write a report directory."""

from __future__ import annotations

import json

import click


@click.command("evaluate")
@click.option(
    "--protocol",
    "protocol",
    required=True,
    help="Shipped protocol name (groundbench protocols list) or a YAML path.",
)
@click.option(
    "--method",
    "method",
    required=True,
    help="uniform | centre_prior[:SIGMA] | random[:SEED] | oracle_box | heatmaps:PATH | plugin:MODULE:CALLABLE | checkpoint:PATH",
)
@click.option(
    "--out",
    "out_dir",
    required=True,
    type=click.Path(file_okay=False),
    help="Report directory to write: a new path, an empty folder or an earlier report "
    "(anything else is refused and left untouched).",
)
@click.option(
    "--set",
    "overrides",
    multiple=True,
    metavar="KEY=VALUE",
    help="Override a protocol key (part of the hash), e.g. pipeline.smooth.sigma_px=4.",
)
@click.option(
    "--data-root",
    type=click.Path(exists=True, file_okay=False),
    default=None,
    help="Dataset folder (default: the generated synthetic set for synth protocols).",
)
@click.option("--device", default="cpu", show_default=True, help="torch device, e.g. cpu or cuda.")
@click.option("--batch-size", default=32, show_default=True, type=click.IntRange(min=1))
@click.option(
    "--num-workers",
    default=0,
    show_default=True,
    type=click.IntRange(min=0),
    help="DataLoader workers decoding images.",
)
@click.option(
    "--limit",
    default=None,
    type=click.IntRange(min=1),
    help="Evaluate only the first N samples (by id).",
)
@click.option(
    "--resume/--no-resume",
    default=True,
    show_default=True,
    help="Reuse per-sample records cached by an interrupted run.",
)
@click.option(
    "--json", "as_json", is_flag=True, help="Print report.json instead of the headline table."
)
def evaluate_command(
    protocol,
    method,
    out_dir,
    overrides,
    data_root,
    device,
    batch_size,
    num_workers,
    limit,
    resume,
    as_json,
):
    """Evaluate METHOD under PROTOCOL; write report.json, samples.csv, report.md, figures/."""
    from groundbench.evaluate import evaluate

    result = evaluate(
        protocol,
        method,
        out_dir=out_dir,
        device=device,
        batch_size=batch_size,
        num_workers=num_workers,
        limit=limit,
        resume=resume,
        data_root=data_root,
        overrides=tuple(overrides),
    )
    if result is None:  # a non-zero torchrun rank: rank 0 prints
        return
    if as_json:
        click.echo(json.dumps(result.report, indent=2, sort_keys=True))
        return
    from groundbench.report import protocol_title

    r = result.report
    click.echo(
        f"{r['method']['spec']} on {protocol_title(r['protocol'])} ({r['protocol']['id']}), "
        f"split {r['dataset']['split']}, {r['dataset']['n_samples']} samples -> {result.out_dir}"
    )
    for line in result.headline:
        click.echo(line)


COMMANDS = [evaluate_command]
