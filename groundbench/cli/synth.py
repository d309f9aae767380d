"""``groundbench synth``: write the seeded synthetic benchmark in the native format."""

from __future__ import annotations

import os

import click
import yaml

from groundbench.synthetic import Settings, SynthesisError, generate


def _settings(config: str | None, pairs: tuple[str, ...]) -> dict:
    values: dict = {}
    if config:
        with open(config, encoding="utf-8") as f:
            loaded = yaml.safe_load(f) or {}
        if not isinstance(loaded, dict):
            raise SynthesisError(f"{config}: settings file must be a YAML mapping")
        values.update(loaded)
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{pair!r} is not KEY=VALUE", param_hint="--set")
        value = yaml.safe_load(raw)
        parts = key.split(".")
        if len(parts) == 2 and parts[0] == "scenes":
            values.setdefault("scenes", {})[parts[1]] = value
        elif len(parts) == 1:
            values[key] = value
        else:
            raise click.BadParameter(
                f"{key!r}: only scenes.<split> may be dotted", param_hint="--set"
            )
    return values


@click.command("synth")
@click.option(
    "--out", required=True, type=click.Path(file_okay=False), help="Dataset root to write."
)
@click.option("--seed", default=0, show_default=True, type=int, help="Dataset seed.")
@click.option("--overwrite", is_flag=True, help="Replace an earlier dataset at --out.")
@click.option(
    "--config",
    type=click.Path(exists=True, dir_okay=False),
    help="YAML file of generator settings.",
)
@click.option(
    "--set", "pairs", multiple=True, metavar="KEY=VALUE",
    help="One setting (YAML value), e.g. --set height=96 --set scenes.train=2000.",
)  # fmt: skip
@click.option(
    "--workers", default=min(2, os.cpu_count() or 1), show_default=True, type=click.IntRange(1),
    help="Processes rendering scenes (does not change the files).",
)  # fmt: skip
@click.option("--no-progress", is_flag=True, help="Hide the progress bar.")
def synth(
    out: str, seed: int, overwrite: bool, config: str | None, pairs: tuple[str, ...], workers: int,
    no_progress: bool,
) -> None:  # fmt: skip
    """Generate the synthetic grounding benchmark into OUT (see docs/formats.md)."""
    settings = Settings.from_mapping(_settings(config, pairs))
    root = generate(
        out, settings, seed=seed, overwrite=overwrite, progress=not no_progress, workers=workers
    )
    click.echo(str(root))


COMMANDS = [synth]
