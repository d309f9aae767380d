"""``groundbench data``: check a dataset root, build the indexes adapters read, export tasks."""

from __future__ import annotations

import json

import click

from groundbench.errors import GroundbenchError


def _options(pairs: tuple[str, ...]) -> dict[str, str]:
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{pair!r} is not KEY=VALUE", param_hint="--option")
        out[key.replace("-", "_")] = value
    return out


# a plain argument, checked by the adapter registry, so that `groundbench --help` does not
# import every adapter (and torch) just to list their names (`groundbench list adapters`)
_ADAPTER = click.argument("name", metavar="ADAPTER")
_ROOT = click.option(
    "--root", required=True, type=click.Path(exists=True, file_okay=False), help="Dataset root."
)
_OPTION = click.option(
    "-o", "--option", "option", multiple=True, metavar="KEY=VALUE",
    help="Adapter option, e.g. -o dataset=refcoco+ -o split_by=unc (see docs/adapters.md).",
)  # fmt: skip


@click.group("data")
def data() -> None:
    """Check dataset roots, build their indexes, export a protocol's samples as tasks."""


#: Adapter options that say where files are, not which samples: they never keep a shipped
#: protocol's expected count from being compared.
_PATH_OPTIONS = frozenset({"image_dir", "test_image_ids", "index_path"})


def _protocol_expectations(adapter):
    """The shipped protocols reading this adapter with these options, as check expectations."""
    from dataset_adapters.check import Expectation
    from dataset_adapters.expected_counts import EXPECTED_COUNTS
    from groundbench.probes import select_samples
    from groundbench.protocol import list_protocols, load_protocol

    out = []
    for name in list_protocols():
        expected = EXPECTED_COUNTS.get(name)
        protocol = load_protocol(name)
        ds = protocol.dataset
        same_data = all(
            adapter.options.get(k) == v for k, v in ds.options.items() if k not in _PATH_OPTIONS
        )
        if expected is None or ds.adapter != adapter.name or not same_data:
            continue
        if expected.unit == "images":
            measure = lambda samples: len({s.image_path for s in samples})  # noqa: E731
        else:
            measure = lambda samples, sel=protocol.select: len(select_samples(samples, sel))  # noqa: E731
        out.append(
            Expectation(name, ds.split, expected.count, expected.unit, expected.source, measure)
        )
    return out


@data.command("check")
@_ADAPTER
@_ROOT
@_OPTION
@click.option("--split", "splits", multiple=True, help="Split to check (default: all found).")
@click.option("--json", "as_json", is_flag=True, help="Print the findings as JSON.")
def check(
    name: str, root: str, option: tuple[str, ...], splits: tuple[str, ...], as_json: bool
) -> None:
    """Count samples per split next to the published counts and list what is wrong.

    Each shipped protocol reading this dataset shows the count it selects here next to the
    count expected on the full dataset (docs/adapters.md). Exits 1 when a split has a
    malformed record or duplicate ids; missing images, odd boxes, records the adapter had to
    leave out and counts that differ are reported but do not fail the check.
    """
    from dataset_adapters import open_dataset
    from dataset_adapters.check import check_dataset, checks_to_dict, format_checks

    adapter = open_dataset(name, root, **_options(option))
    checks = check_dataset(adapter, list(splits) or None, _protocol_expectations(adapter))
    if as_json:
        click.echo(
            json.dumps({"adapter": name, "root": root, "splits": checks_to_dict(checks)}, indent=2)
        )
    else:
        click.echo(format_checks(name, checks))
    if not all(c.ok for c in checks):
        raise click.exceptions.Exit(1)


@data.command("index")
@_ADAPTER
@_ROOT
@_OPTION
@click.option("--quiet", is_flag=True, help="No progress bar.")
def index(name: str, root: str, option: tuple[str, ...], quiet: bool) -> None:
    """Build (or rebuild) the adapter's on-disk index from its original files."""
    from dataset_adapters import open_dataset

    adapter = open_dataset(name, root, **_options(option))
    build = getattr(adapter, "build_index", None)
    if build is None:
        raise GroundbenchError(
            f"adapter {name!r} reads its files directly and has no index to build; "
            "only visual_genome is indexed"
        )
    counts = build(progress=not quiet)
    click.echo(f"wrote {adapter.index_path}: " + ", ".join(f"{k} {v}" for k, v in counts.items()))


@data.command("export")
@click.option(
    "--protocol", required=True, help="Shipped protocol name or a YAML path, as for evaluate."
)
@click.option(
    "--out",
    "out",
    required=True,
    type=click.Path(dir_okay=False),
    help="Task file to write (.jsonl).",
)
@click.option(
    "--set", "overrides", multiple=True, metavar="KEY=VALUE", help="Override a protocol key."
)
@click.option(
    "--data-root",
    type=click.Path(exists=True, file_okay=False),
    default=None,
    help="Dataset folder (default: the generated synthetic set for synth protocols).",
)
@click.option(
    "--limit", default=None, type=click.IntRange(min=1), help="Only the first N samples by id."
)
def export(
    protocol: str, out: str, overrides: tuple[str, ...], data_root: str | None, limit: int | None
) -> None:
    """Write a protocol's samples as a task file for any model (docs/formats.md).

    One JSON line per sample: id, absolute image path, width, height, text, phrase and span;
    no box. Write one map per id and evaluate it with --method heatmaps:PATH.
    """
    from groundbench.evaluation.export import export_tasks
    from groundbench.protocol import load_protocol

    loaded = load_protocol(protocol, overrides)
    n = export_tasks(loaded, out, data_root=data_root, limit=limit)
    click.echo(f"wrote {out}: {n} samples of {loaded.name} ({loaded.id})")


COMMANDS = [data]
