"""The quick start's main job, end to end on the embedded synthetic benchmark.

generate the synthetic set → train the reference model (captions only) → evaluate it and
the baselines under every synthetic protocol → add the reports to the leaderboard → build it.
Each stage reuses what an earlier, interrupted run already finished.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from groundbench.evaluate import evaluate
from groundbench.leaderboard import BoardFiles, add_entry, build_board, load_entries
from groundbench.protocol import list_protocols, load_protocol

log = logging.getLogger(__name__)

BASELINES: tuple[str, ...] = ("uniform", "centre_prior", "random", "oracle_box")


@dataclass(frozen=True)
class DemoResult:
    """What the demo produced: the checkpoint, the report directories and the board files."""

    checkpoint: Path
    reports: tuple[Path, ...]
    board: BoardFiles


def synth_protocols() -> list[str]:
    """Shipped synthetic protocols except ``val`` (val is for tuning, never for reporting)."""
    return [
        p for p in list_protocols() if p.startswith("synth_") and not p.startswith("synth_val.")
    ]


def run_demo(
    out: str | Path,
    *,
    board: str | Path = "leaderboard",
    preset: str = "small-cpu",
    device: str = "cpu",
    protocols: Sequence[str] | None = None,
    baselines: Sequence[str] = BASELINES,
    batch_size: int = 64,
    train_overrides: Sequence[str] = (),
    data_root: str | Path | None = None,
) -> DemoResult:
    """Run the whole quick start; returns where everything went.

    Args:
        out: run folder (model under ``out/model``, reports under ``out/reports``).
        board: leaderboard folder to add the reports to and rebuild.
        preset: reference-model preset to train.
        device: torch device for training and evaluation.
        protocols: protocol names (default: :func:`synth_protocols`).
        baselines: baseline method specs evaluated beside the model.
        batch_size: evaluation batch size.
        train_overrides: ``key=value`` overrides of the preset (e.g. ``train.max_captions=200``).
        data_root: a synthetic dataset in the native format to train and evaluate on
            (default: the generated default set, made on first use).
    """
    out = Path(out)
    checkpoint = _train(out / "model", preset, device, train_overrides, data_root)
    methods = [*baselines, f"checkpoint:{checkpoint}"]
    reports = []
    for name in protocols or synth_protocols():
        protocol = load_protocol(name)
        for spec in methods:
            report_dir = out / "reports" / name / spec.split(":")[0]
            result = evaluate(
                protocol,
                spec,
                out_dir=report_dir,
                device=device,
                batch_size=batch_size,
                data_root=data_root,
            )
            _add(report_dir, result.report, board)
            reports.append(report_dir)
    return DemoResult(checkpoint, tuple(reports), build_board(board))


def _train(
    run_dir: Path,
    preset: str,
    device: str,
    overrides: Sequence[str],
    data_root: str | Path | None,
) -> Path:
    from dataset_adapters import open_dataset
    from groundbench.model import load_config
    from groundbench.model.train import train
    from groundbench.synthetic import ensure_default_dataset

    done = run_dir / "model.safetensors"
    if done.is_file():
        log.info("%s exists; skipping training (delete it to retrain)", done)
        return done
    root = ensure_default_dataset() if data_root is None else data_root
    captions = open_dataset("native", root).load_captions("train")
    return Path(
        train(
            load_config(preset, overrides=overrides), captions, run_dir, device=device, resume=True
        ).checkpoint
    )


def _add(report_dir: Path, report: dict, board: str | Path) -> None:
    for entry in load_entries(board, protocol_id=report["protocol"]["id"]):
        if entry.method_fingerprint == report["method"]["fingerprint"]:
            log.info("%s is already on the board", report_dir)
            return
    add_entry(report_dir, board, replace=True)
