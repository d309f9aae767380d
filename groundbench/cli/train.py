"""``groundbench train``: train the reference model on image–caption pairs."""

from __future__ import annotations

import json

import click

from groundbench.errors import GroundbenchError


def _captions(data: str | None, split: str):
    from dataset_adapters import open_dataset

    if data is None:
        from groundbench.synthetic import ensure_default_dataset

        return open_dataset("native", ensure_default_dataset()).load_captions(split)
    adapter, sep, root = data.partition(":")
    if not sep or not root:
        raise GroundbenchError(f"--data {data!r}: write it as ADAPTER:ROOT, e.g. native:data/synth")
    return open_dataset(adapter, root).load_captions(split)


@click.command("train")
@click.option(
    "--preset",
    default="small-cpu",
    show_default=True,
    help="Model preset (tiny, small-cpu, base-gpu).",
)
@click.option(
    "--out", "out_dir", required=True, type=click.Path(file_okay=False), help="Run directory."
)
@click.option(
    "--config",
    "config_file",
    type=click.Path(exists=True, dir_okay=False),
    help="YAML over the preset.",
)
@click.option(
    "--set", "overrides", multiple=True, metavar="KEY=VALUE", help="Override, e.g. train.lr=1e-3."
)
@click.option(
    "--data",
    default=None,
    metavar="ADAPTER:ROOT",
    help="Captions to train on [default: the synthetic set].",
)
@click.option("--split", default="train", show_default=True, help="Split whose captions are read.")
@click.option("--device", default="cpu", show_default=True, help="cpu, cuda or cuda:N.")
@click.option("--resume", is_flag=True, help="Continue from the run directory's last snapshot.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def train_command(
    preset, out_dir, config_file, overrides, data, split, device, resume, as_json
) -> None:
    """Train the reference grounding model from captions (boxes are never read)."""
    from groundbench.model import load_config
    from groundbench.model.train import train

    config = load_config(preset, config_file=config_file, overrides=overrides)
    result = train(config, _captions(data, split), out_dir, device=device, resume=resume)
    summary = {
        "checkpoint": str(result.checkpoint),
        "steps": result.steps,
        "first_loss": result.first_loss,
        "final_loss": result.final_loss,
        "seconds": round(result.seconds, 1),
        "images_per_s": round(result.images_per_s, 1),
    }
    if as_json:
        click.echo(json.dumps(summary))
    else:
        click.echo(
            f"trained {result.steps} steps in {summary['seconds']} s ({summary['images_per_s']} images/s), "
            f"loss {result.first_loss:.3f} -> {result.final_loss:.3f}\ncheckpoint: {result.checkpoint}\n"
            f"evaluate it: groundbench evaluate --protocol synth_test.albef --method checkpoint:{result.checkpoint} --out REPORT_DIR"
        )


COMMANDS = [train_command]
