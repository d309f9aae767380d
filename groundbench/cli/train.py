"""``groundbench train``: train the reference model on image–caption pairs."""

from __future__ import annotations

import json

import click

from groundbench.cli.data import _options
from groundbench.errors import GroundbenchError


def _open_data(data: str | None, options: dict[str, str]):
    """The adapter name, root and opened adapter of ``--data`` (the synthetic set by default)."""
    from dataset_adapters import open_dataset

    if data is None:
        from groundbench.synthetic import ensure_default_dataset

        root = ensure_default_dataset()
        return "native", str(root), open_dataset("native", root, **options)
    adapter, sep, root = data.partition(":")
    if not sep or not root:
        raise GroundbenchError(f"--data {data!r}: write it as ADAPTER:ROOT, e.g. native:data/synth")
    return adapter, root, open_dataset(adapter, root, **options)


def _evaluate_hint(adapter: str, overlapping: set[str]) -> str:
    """A shipped protocol to evaluate on: one reading the training adapter, held out if any."""
    from groundbench.protocol import list_protocols, load_protocol

    same = [p for p in list_protocols() if load_protocol(p).dataset.adapter == adapter]
    held_out = [p for p in same if p not in overlapping]
    if held_out or same:
        return (held_out or same)[0]
    return "PROTOCOL (see `groundbench protocols list`)"


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
@click.option(
    "-o", "--option", "option", multiple=True, metavar="KEY=VALUE",
    help="Adapter option for --data, e.g. -o dataset=refcoco+ (see docs/adapters.md).",
)  # fmt: skip
@click.option("--split", default="train", show_default=True, help="Split whose captions are read.")
@click.option("--device", default="cpu", show_default=True, help="cpu, cuda or cuda:N.")
@click.option("--resume", is_flag=True, help="Continue the run in --out from its last snapshot.")
@click.option("--overwrite", is_flag=True, help="Replace the run already in --out (all its files).")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def train_command(
    preset, out_dir, config_file, overrides, data, option, split, device, resume, overwrite, as_json
) -> None:
    """Train the reference grounding model from captions (boxes are never read).

    A non-empty --out is refused unless --resume continues its run or --overwrite replaces
    it. Training images that a shipped protocol evaluates are reported (on stderr and in
    the checkpoint): scores on that protocol are then not held out.
    """
    from groundbench.model import load_config
    from groundbench.model.train import train
    from groundbench.overlap import protocol_overlaps

    config = load_config(preset, config_file=config_file, overrides=overrides)
    options = _options(option)
    adapter, root, ds = _open_data(data, options)
    captions = ds.load_captions(split)
    overlaps = protocol_overlaps(adapter, root, (c.image_path for c in captions))
    for o in overlaps:
        click.echo(
            f"warning: {o.shared_images} of the {o.training_images} training images are "
            f"evaluated by {o.describe()}: its scores for this model are not held out",
            err=True,
        )
    training_data = {
        "adapter": adapter,
        "options": options,
        "split": split,
        "protocol_overlap": {o.protocol: o.shared_images for o in overlaps},
    }
    result = train(
        config,
        captions,
        out_dir,
        device=device,
        resume=resume,
        overwrite=overwrite,
        training_data=training_data,
    )
    if result.rank != 0:  # under torchrun, one summary
        return
    summary = {
        "checkpoint": str(result.checkpoint),
        "steps": result.steps,
        "start": result.start,
        "steps_run": result.steps_run,
        "first_loss": result.first_loss,
        "final_loss": result.final_loss,
        "seconds": round(result.seconds, 1),
        "images_per_s": round(result.images_per_s, 1),
    }
    if as_json:
        click.echo(json.dumps(summary))
        return
    if result.steps_run == 0:
        click.echo(
            f"already complete: {out_dir} holds all {result.steps} steps; to train on, raise "
            f"train.steps (--set train.steps=N) and pass --resume\ncheckpoint: {result.checkpoint}"
        )
        return
    resumed = f", resumed at step {result.start}" if result.start else ""
    protocol = _evaluate_hint(adapter, {o.protocol for o in overlaps})
    click.echo(
        f"trained {result.steps_run} steps (now {result.steps} of {result.steps}{resumed}) in "
        f"{summary['seconds']} s ({summary['images_per_s']} images/s), "
        f"loss {result.first_loss:.3f} -> {result.final_loss:.3f}\n"
        f"checkpoint: {result.checkpoint}\n"
        f"evaluate it: groundbench evaluate --protocol {protocol} "
        f"--method checkpoint:{result.checkpoint} --out REPORT_DIR"
    )


COMMANDS = [train_command]
