"""``groundbench leaderboard add|build`` and ``groundbench compare``."""

from __future__ import annotations

import json
import math

import click

_BOARD = click.option(
    "--board",
    type=click.Path(file_okay=False),
    default="leaderboard",
    show_default=True,
    help="Leaderboard directory (entries live under BOARD/entries/).",
)


@click.group("leaderboard")
def leaderboard() -> None:
    """Submit reports to a leaderboard and generate its tables."""


@leaderboard.command("add")
@click.argument(
    "report_dirs", nargs=-1, required=True, type=click.Path(exists=True, file_okay=False)
)
@_BOARD
@click.option(
    "--replace",
    is_flag=True,
    help="Supersede an entry of the same method name with another fingerprint.",
)
@click.option(
    "--model-card",
    type=click.Path(exists=True, dir_okay=False),
    help="model_card.yaml saying what the model saw (docs/leaderboard.md), for reports "
    "that carry none.",
)
def add(report_dirs: tuple[str, ...], board: str, replace: bool, model_card: str | None) -> None:
    """Validate each REPORT_DIR (written by `groundbench evaluate`) and store it as an entry.

    Reports are added in order; the first refusal stops the command (earlier ones stay added).
    """
    from groundbench.leaderboard import add_entry

    for report_dir in report_dirs:
        path = add_entry(report_dir, board, replace=replace, model_card=model_card)
        click.echo(f"added {path}")


@leaderboard.command("add-human")
@click.argument("study_dir", type=click.Path(exists=True, file_okay=False))
@click.argument("report_dir", type=click.Path(exists=True, file_okay=False))
@_BOARD
def add_human(study_dir: str, report_dir: str, board: str) -> None:
    """Verify a human study (STUDY_DIR from `groundbench human prepare`, REPORT_DIR from
    `groundbench human analyze`) against the board's entries and store it beside them.

    Every method of the study must be on the board under the study's protocol, with the
    same fingerprint. A newer analysis of the same study replaces the stored one.
    """
    from groundbench.human.board import add_human_study

    click.echo(f"added {add_human_study(study_dir, report_dir, board)}")


@leaderboard.command("build")
@_BOARD
@click.option(
    "--in-distribution-split",
    default="test",
    show_default=True,
    help="Split the robustness view measures probe drops against.",
)
def build(board: str, in_distribution_split: str) -> None:
    """Write README.md, leaderboard.csv, leaderboard.html and robustness.png from the entries
    (and the human studies, verified and recomputed from their judgements)."""
    from groundbench.human.board import load_human_studies
    from groundbench.leaderboard import build_board

    files = build_board(
        board, in_distribution_split=in_distribution_split, human=load_human_studies
    )
    click.echo(f"built from {files.n_entries} entries:")
    for path in (files.markdown, files.csv, files.html, files.figure):
        if path is not None:
            click.echo(f"  {path}")


@click.command("compare")
@click.argument("a", type=click.Path(exists=True))
@click.argument("b", type=click.Path(exists=True))
@click.option(
    "--metric",
    "metrics",
    multiple=True,
    help="Metric display key (repeatable); default all shared.",
)
@click.option("--resamples", default=2000, show_default=True, help="Bootstrap resamples.")
@click.option("--permutations", default=10000, show_default=True, help="Random sign flips.")
@click.option("--seed", default=0, show_default=True, help="Seed of both procedures.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def compare(
    a: str,
    b: str,
    metrics: tuple[str, ...],
    resamples: int,
    permutations: int,
    seed: int,
    as_json: bool,
) -> None:
    """Paired bootstrap and permutation test of A − B on their shared samples.

    A and B are report directories or leaderboard entry files.
    """
    from groundbench.leaderboard import compare_tables, read_any, sample_coverage
    from groundbench.leaderboard.cards import training_data_note

    ea, eb = read_any(a), read_any(b)
    coverage = sample_coverage(
        ea.table, eb.table, ea.report["dataset"]["fingerprint"], eb.report["dataset"]["fingerprint"]
    )
    rows = compare_tables(
        ea.table,
        eb.table,
        metrics=metrics or None,
        resamples=resamples,
        permutations=permutations,
        seed=seed,
    )
    same = ea.report["protocol"]["hash"] == eb.report["protocol"]["hash"]
    data_note = training_data_note(ea.model_card, eb.model_card)
    if as_json:
        payload = {
            "a": {"method": ea.method_name, "protocol_id": ea.protocol_id},
            "b": {"method": eb.method_name, "protocol_id": eb.protocol_id},
            "same_protocol": same,
            "training_data_note": data_note,
            "samples": coverage.to_dict(),
            "warnings": coverage.warnings(),
            "comparisons": [r.to_dict() for r in rows],
        }
        click.echo(json.dumps(payload, indent=2, sort_keys=True))
        return
    for warning in coverage.warnings():
        click.echo(f"warning: {warning}", err=True)
    click.echo(f"A = {ea.method_name} (protocol {ea.protocol_id})")
    click.echo(f"B = {eb.method_name} (protocol {eb.protocol_id})")
    click.echo(
        f"samples: A {coverage.n_a}, B {coverage.n_b}, shared {coverage.n_shared}; "
        "n below counts the shared samples where both values are defined"
    )
    if not same:
        click.echo("note: the protocols differ; the difference mixes method and protocol effects")
    if data_note:
        click.echo(f"note: {data_note}", err=True)
    click.echo(
        f"{'metric':<22} {'n':>6} {'A':>7} {'B':>7} {'A-B':>8} {'95% interval':>20} {'p':>8}"
    )
    for r in rows:
        interval = f"[{_f(r.ci_low, '+.3f')}, {_f(r.ci_high, '+.3f')}]"
        click.echo(
            f"{r.metric:<22} {r.n_paired:>6} {_f(r.mean_a, '.3f'):>7} {_f(r.mean_b, '.3f'):>7} "
            f"{_f(r.difference, '+.3f'):>8} {interval:>20} {_f(r.p_value, '.4f'):>8}"
        )


def _f(x: float, spec: str) -> str:
    return "n/a" if math.isnan(x) else format(x, spec)


COMMANDS = [leaderboard, compare]
