"""The ``groundbench`` command line: one click group, one module per command family.

This package is the only place that imports click. A command body parses its options,
calls one library function and prints; :class:`GroundbenchError` becomes a one-line error
and exit status 1.
"""

from __future__ import annotations

import importlib
import logging
import sys

import click

from groundbench import __version__
from groundbench.errors import GroundbenchError

# Each module defines ``COMMANDS``: the click commands or groups it adds to ``main``.
_COMMAND_MODULES: tuple[str, ...] = (
    "leaderboard",
    "data",
    "train",
    "synth",
    "evaluate",
    "demo",
    "protocols",
    "contrastive",
    "probe",
    "human",
)


class _Group(click.Group):
    """Turn library errors into clean CLI errors (exit 1) instead of tracebacks."""

    def invoke(self, ctx: click.Context):  # noqa: D401
        try:
            return super().invoke(ctx)
        except GroundbenchError as exc:
            raise click.ClickException(str(exc)) from exc


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="groundbench")
@click.option("-v", "--verbose", count=True, help="More log output on stderr (-v info, -vv debug).")
def main(verbose: int) -> None:
    """Benchmark annotation-free visual grounding: evaluate, train, compare."""
    level = logging.WARNING - 10 * min(verbose, 2)
    logging.basicConfig(
        level=level, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s"
    )


for _name in _COMMAND_MODULES:
    for _command in importlib.import_module(f"groundbench.cli.{_name}").COMMANDS:
        main.add_command(_command)
