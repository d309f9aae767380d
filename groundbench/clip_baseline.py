"""The box-free contrastive baseline, end to end: train the small CLIP, score it, board it.

train :func:`~groundbench.contrastive.train_clip` on the synthetic training captions → evaluate
``hf:RUN/clip-synth:RECIPE`` for each of :data:`RECIPES` under every synthetic protocol →
add the reports to a board and build it. Like the demo, a rerun reuses a model trained with
the same settings on the same captions and every report that is up to date.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from groundbench.contrastive import ClipTrainConfig, train_clip
from groundbench.contrastive.train import read_training
from groundbench.demo import (
    Announce,
    _add,
    _current_report,
    _data,
    _dataset_fingerprint,
    _method_fingerprint,
    synth_protocols,
)
from groundbench.evaluate import evaluate
from groundbench.human.board import load_human_studies
from groundbench.leaderboard import BoardFiles, build_board
from groundbench.model.data import captions_fingerprint
from groundbench.protocol import load_protocol

log = logging.getLogger(__name__)

MODEL_DIR = "clip-synth"  # the board shows methods as hf:clip-synth:RECIPE
DEFAULT_RISE_MASKS = 1000


def recipes(rise_masks: int = DEFAULT_RISE_MASKS) -> tuple[str, ...]:
    """The recipe specs scored: relevance, gradcam and RISE with ``rise_masks`` masks.

    Example:
        >>> recipes(500)
        ('relevance', 'gradcam', 'rise?num_masks=500')
    """
    return ("relevance", "gradcam", f"rise?num_masks={rise_masks}")


@dataclass(frozen=True)
class ClipBaselineResult:
    """What the baseline run produced (``evaluated``: reports computed in this run)."""

    model_dir: Path
    reports: tuple[Path, ...]
    board: BoardFiles | None  # None after a --limit smoke run
    evaluated: int


def run_clip_baseline(
    out: str | Path,
    *,
    board: str | Path | None = None,
    config: ClipTrainConfig | None = None,
    rise_masks: int = DEFAULT_RISE_MASKS,
    only: Sequence[str] | None = None,
    protocols: Sequence[str] | None = None,
    device: str = "cpu",
    batch_size: int = 64,
    limit: int | None = None,
    data_root: str | Path | None = None,
    announce: Announce | None = None,
) -> ClipBaselineResult:
    """Train (or reuse) the small CLIP in ``out/clip-synth`` and score it on every protocol.

    Args:
        out: run folder (model in ``out/clip-synth``, reports in ``out/reports/PROTOCOL/RECIPE``).
        board: leaderboard folder to add the reports to and build (default ``out/board``).
        config: the model's size and training settings (default: :class:`ClipTrainConfig`).
        rise_masks: RISE masks per sample (TorchRay's 8000 cost about 8× the time of 1000).
        only: score only these recipes (``relevance``, ``gradcam``, ``rise``; default all),
            e.g. to add the cheap recipes to a board first.
        protocols: protocol names (default: every synthetic protocol but ``val``).
        device: torch device for training and evaluation.
        batch_size: evaluation batch size.
        limit: score only the first ``limit`` samples of each protocol (a smoke run; such
            reports are refused by a board that expects the whole split).
        data_root: a native-format synthetic set (default: the generated default set).
        announce: called with one line per stage.
    """
    say = announce or log.info
    config = ClipTrainConfig() if config is None else config
    out = Path(out)
    board = out / "board" if board is None else Path(board)
    root = _data(data_root, say)
    model_dir = _train(out / MODEL_DIR, config, root, device, say)
    chosen = [r for r in recipes(rise_masks) if only is None or r.partition("?")[0] in only]
    specs = [f"hf:{model_dir}:{r}" for r in chosen]
    names = list(protocols or synth_protocols())
    total, k, evaluated, reports = len(names) * len(specs), 0, 0, []
    for name in names:
        protocol = load_protocol(name)
        data_fp = _dataset_fingerprint(protocol, root) if limit is None else None
        for spec in specs:
            k += 1
            label = spec.rpartition(":")[2].partition("?")[0]
            report_dir = out / "reports" / name / label
            report = None
            if data_fp is not None:
                report = _current_report(report_dir, protocol, _method_fingerprint(spec), data_fp)
            if report is not None:
                say(f"evaluation {k} of {total}: {name} × {label}: up to date in {report_dir}")
            else:
                say(f"evaluation {k} of {total}: {name} × {label} → {report_dir}")
                report = evaluate(
                    protocol,
                    spec,
                    out_dir=report_dir,
                    device=device,
                    batch_size=batch_size,
                    limit=limit,
                    data_root=root,
                ).report
                evaluated += 1
            if limit is None:
                _add(report_dir, report, board)
            reports.append(report_dir)
    if limit is not None:
        say(f"--limit {limit}: a smoke run; nothing was added to {board}")
        return ClipBaselineResult(model_dir, tuple(reports), None, evaluated)
    say(f"board: adding {len(reports)} reports to {board} and building it")
    return ClipBaselineResult(
        model_dir, tuple(reports), build_board(board, human=load_human_studies), evaluated
    )


def _train(
    model_dir: Path, config: ClipTrainConfig, root: Path, device: str, say: Announce
) -> Path:
    from dataset_adapters import open_dataset

    captions = list(open_dataset("native", root).load_captions("train"))
    done = read_training(model_dir)
    if (
        done is not None
        and done.get("config") == config.to_dict()
        and done.get("data_fingerprint") == captions_fingerprint(captions)
    ):
        say(f"training: reusing {model_dir} (trained with these settings on these captions)")
        return model_dir
    say(f"training: small CLIP, {config.steps} steps of {config.batch_size} captions → {model_dir}")
    result = train_clip(captions, model_dir, config, device=device)
    say(
        f"training: {result.steps} steps in {result.seconds:.0f} s, loss {result.first_loss:.3f} → {result.final_loss:.3f}"
    )
    return model_dir
