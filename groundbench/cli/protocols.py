"""``groundbench protocols list|show|hash`` and ``groundbench list metrics|methods|adapters|steps``."""

from __future__ import annotations

import json

import click

_SET = click.option(
    "--set",
    "overrides",
    multiple=True,
    metavar="KEY=VALUE",
    help="Override a protocol key (part of the hash), e.g. pipeline.smooth.sigma_px=4.",
)


@click.group("protocols")
def protocols_group() -> None:
    """List the shipped protocols, print one canonicalised, or print its hash."""


@protocols_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list of {name, id, about}.")
def protocols_list(as_json: bool) -> None:
    """List the shipped protocols with their ids."""
    from groundbench.protocol import list_protocols, load_protocol

    rows = [load_protocol(name) for name in list_protocols()]
    if as_json:
        click.echo(json.dumps([{"name": p.name, "id": p.id, "about": p.about} for p in rows]))
        return
    width = max(len(p.name) for p in rows)
    for p in rows:
        click.echo(f"{p.name:<{width}}  {p.id}  {p.dataset.name}/{p.dataset.split}")


@protocols_group.command("show")
@click.argument("name")
@_SET
def protocols_show(name: str, overrides: tuple[str, ...]) -> None:
    """Print protocol NAME (shipped name or YAML path) canonicalised, as JSON."""
    from groundbench.protocol import load_protocol

    p = load_protocol(name, overrides)
    click.echo(
        json.dumps(
            {
                "name": p.name,
                "id": p.id,
                "hash": p.hash,
                "about": p.about,
                "canonical": p.canonical,
            },
            indent=2,
            sort_keys=True,
            ensure_ascii=False,
        )
    )


@protocols_group.command("hash")
@click.argument("name")
@_SET
def protocols_hash(name: str, overrides: tuple[str, ...]) -> None:
    """Print the sha256 hash of protocol NAME's canonical JSON."""
    from groundbench.protocol import load_protocol

    click.echo(load_protocol(name, overrides).hash)


@click.group("list")
def list_group() -> None:
    """List registered metrics, methods, dataset adapters or pipeline steps."""


def _first_line(obj: object) -> str:
    doc = (getattr(obj, "__doc__", None) or "").strip()
    return doc.splitlines()[0] if doc else ""


@list_group.command("metrics")
def list_metrics() -> None:
    """Metrics with their parameters (defaults), inputs and direction."""
    from groundbench.metrics import METRICS, declaration

    for e in METRICS.describe():
        params = ", ".join(p.describe() for p in declaration(e.name).params) or "-"
        better = "higher" if e.meta.get("higher_is_better") else "lower"
        needs = ",".join(e.meta.get("needs", ()))
        click.echo(f"{e.name:<10} params: {params:<38} needs: {needs:<24} {better} is better")


@list_group.command("methods")
def list_methods() -> None:
    """Method specs (NAME[:ARG]) with their supervision class."""
    from groundbench.methods import METHODS

    for e in METHODS.describe():
        spec = e.name if not e.meta.get("arg") else f"{e.name}:{e.meta['arg']}"
        click.echo(f"{spec:<48} {e.meta.get('supervision', '')}")


@list_group.command("adapters")
def list_adapters() -> None:
    """Dataset adapters (names used in a protocol's dataset.adapter)."""
    from dataset_adapters import ADAPTERS

    for e in ADAPTERS.describe():
        click.echo(f"{e.name:<20} {_first_line(e.obj)}")


@list_group.command("steps")
def list_steps() -> None:
    """Post-processing steps in pipeline order, with their config key and shapes."""
    from groundbench.postprocess import DEFAULT_CONFIG, PIPELINE_STEPS

    order = {key: i for i, key in enumerate(DEFAULT_CONFIG)}
    entries = sorted(PIPELINE_STEPS.describe(), key=lambda e: order[e.meta["config_key"]])
    for e in entries:
        m = e.meta
        click.echo(f"{e.name:<10} pipeline.{m['config_key']:<10} {m['input']} -> {m['output']}")


COMMANDS = [protocols_group, list_group]
