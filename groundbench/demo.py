"""The quick start's main job, end to end on the embedded synthetic benchmark.

generate the synthetic set → train the reference model (captions only) → evaluate it and
the baselines under every synthetic protocol → add the reports to the run's own board →
build it. Each stage reuses what an earlier run already finished, and only that: a
checkpoint trained with the requested config on the same captions, a report whose protocol
hash, method fingerprint and dataset fingerprint match.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from groundbench.device import resolve_device
from groundbench.evaluate import evaluate
from groundbench.human.board import load_human_studies
from groundbench.leaderboard import BoardFiles, add_entry, build_board
from groundbench.leaderboard.entries import entry_path
from groundbench.protocol import Protocol, list_protocols, load_protocol

log = logging.getLogger(__name__)

BASELINES: tuple[str, ...] = ("uniform", "centre_prior", "random", "oracle_box")

Announce = Callable[[str], None]


@dataclass(frozen=True)
class DemoResult:
    """What the demo produced.

    Attributes:
        checkpoint: the trained (or reused) ``model.safetensors``.
        reports: every report directory, in evaluation order.
        board: the board files (with their terminal summary).
        evaluated: how many reports were computed in this run (the rest were up to date).
    """

    checkpoint: Path
    reports: tuple[Path, ...]
    board: BoardFiles
    evaluated: int


def synth_protocols() -> list[str]:
    """Shipped synthetic protocols except ``val`` (val is for tuning, never for reporting)."""
    return [
        p for p in list_protocols() if p.startswith("synth_") and not p.startswith("synth_val.")
    ]


def run_demo(
    out: str | Path,
    *,
    board: str | Path | None = None,
    preset: str = "small-cpu",
    device: str = "cpu",
    protocols: Sequence[str] | None = None,
    baselines: Sequence[str] = BASELINES,
    batch_size: int = 64,
    train_overrides: Sequence[str] = (),
    data_root: str | Path | None = None,
    announce: Announce | None = None,
) -> DemoResult:
    """Run the whole quick start; returns where everything went.

    Args:
        out: run folder (model under ``out/model``, reports under ``out/reports``).
        board: leaderboard folder to add the reports to and rebuild (default ``out/board``,
            so a run never touches a committed board unless it is named here).
        preset: reference-model preset to train.
        device: torch device for training and evaluation.
        protocols: protocol names (default: :func:`synth_protocols`).
        baselines: baseline method specs evaluated beside the model.
        batch_size: evaluation batch size.
        train_overrides: ``key=value`` overrides of the preset (e.g. ``train.max_captions=200``).
        data_root: a synthetic dataset in the native format to train and evaluate on
            (default: the generated default set, made on first use).
        announce: called with one line per stage (the CLI prints it on stderr).

    Raises:
        ConfigError: an unknown preset or a malformed override, before anything runs.
        DeviceError: ``device`` is no torch device or is missing here, before anything runs.
    """
    say = announce or log.info
    out = Path(out)
    board = out / "board" if board is None else Path(board)
    config = _requested_config(preset, train_overrides)  # fails before any work
    resolve_device(device)
    root = _data(data_root, say)
    checkpoint = _train(out / "model", preset, config, device, root, say)
    methods = [*baselines, f"checkpoint:{checkpoint}"]
    names = list(protocols or synth_protocols())
    total, k, evaluated, reports = len(names) * len(methods), 0, 0, []
    for name in names:
        protocol = load_protocol(name)
        data_fp = None
        for spec in methods:
            k += 1
            label = spec.split(":")[0]
            report_dir = out / "reports" / name / label
            if data_fp is None:
                data_fp = _dataset_fingerprint(protocol, root)
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
                    data_root=root,
                ).report
                evaluated += 1
            _add(report_dir, report, board)
            reports.append(report_dir)
    say(f"board: adding {len(reports)} reports to {board} and building it")
    return DemoResult(
        checkpoint, tuple(reports), build_board(board, human=load_human_studies), evaluated
    )


def _requested_config(preset: str, overrides: Sequence[str]):
    from groundbench.model import load_config

    return load_config(preset, overrides=overrides)


def _data(data_root: str | Path | None, say: Announce) -> Path:
    from groundbench.synthetic import ensure_default_dataset
    from groundbench.synthetic.writer import default_root

    if data_root is not None:
        say(f"data: synthetic set at {data_root}")
        return Path(data_root)
    root = default_root()
    if (root / "dataset.yaml").is_file():
        say(f"data: synthetic set at {root}")
    else:
        say(
            f"data: generating the synthetic set into {root} (about 113 MB, once; "
            "set GROUNDBENCH_DATA or pass --data-root to put it elsewhere)"
        )
    return ensure_default_dataset()


def _train(run_dir: Path, preset: str, config, device: str, root: Path, say: Announce) -> Path:
    from dataset_adapters import open_dataset
    from groundbench.model.data import captions_fingerprint
    from groundbench.model.train import CHECKPOINT_NAME, STATE_NAME, train

    captions = open_dataset("native", root).load_captions("train")
    data_fp = captions_fingerprint(list(captions)[: config.train.max_captions or None])
    wanted = {"config": config.to_dict(), "data_fingerprint": data_fp}
    done, state = run_dir / CHECKPOINT_NAME, run_dir / STATE_NAME
    stored = _stored_training(done, state)
    steps = config.train.steps
    differences: list[str] = []
    if stored is not None:
        differences = _differences(stored, wanted)
        if not differences and stored["step"] in (None, steps):
            say(f"training: reusing {done} (trained with preset {preset} and these settings)")
            return done
        if not differences:
            say(f"training: resuming {run_dir} at step {stored['step']} of {steps}")
        else:
            say(
                f"training: {run_dir} holds a model trained otherwise ({'; '.join(differences)}); "
                f"retraining it with preset {preset}"
            )
    else:
        say(f"training: preset {preset}, {steps} steps → {done}")
    resume = state.is_file() and stored is not None and not differences
    result = train(config, captions, run_dir, device=device, resume=resume, overwrite=not resume)
    return Path(result.checkpoint)


def _stored_training(checkpoint: Path, state: Path) -> dict[str, Any] | None:
    """What the run folder was trained with: config, data fingerprint, last step (None if unknown).

    The checkpoint's metadata is read without its weights; the resume state, when present,
    tells how far training got (a checkpoint can be a mid-run snapshot).
    """
    import torch

    from groundbench.errors import CheckpointError
    from groundbench.model.checkpoint import read_metadata

    stored: dict[str, Any] | None = None
    if state.is_file():
        try:
            s = torch.load(state, map_location="cpu", weights_only=True)
            stored = {
                "config": s.get("config"),
                "data_fingerprint": s.get("data_fingerprint"),
                "step": int(s["step"]),
            }
        except Exception:  # unreadable state: retrain rather than trust it
            stored = {"config": None, "data_fingerprint": None, "step": None}
    if checkpoint.is_file():
        try:
            meta = read_metadata(checkpoint)
        except CheckpointError:  # unreadable checkpoint: retrain rather than fail
            meta = {}
        if stored is None:
            stored = {"data_fingerprint": meta.get("data_fingerprint"), "step": None}
            stored["config"] = meta.get("config")
        elif meta.get("config") != stored["config"]:  # the two files come from different runs
            stored["config"] = None
    return stored


def _differences(stored: dict[str, Any], wanted: dict[str, Any]) -> list[str]:
    """Name what differs between a stored training and the requested one, e.g. ``train.steps 4000 → 20``."""
    out = []
    old, new = stored.get("config") or {}, wanted["config"]
    if not isinstance(old, dict) or not old:
        out.append("its config could not be read")
    else:
        for section in sorted(set(old) | set(new)):
            a, b = old.get(section) or {}, new.get(section) or {}
            for key in sorted(set(a) | set(b)):
                if a.get(key) != b.get(key):
                    out.append(f"{section}.{key} {a.get(key, '(unset)')} → {b.get(key, '(unset)')}")
    if stored.get("data_fingerprint") != wanted["data_fingerprint"]:
        out.append("other training captions")
    return out


def _dataset_fingerprint(protocol: Protocol, root: Path) -> str:
    from groundbench.evaluation.data import dataset_fingerprint, load_samples

    return dataset_fingerprint(load_samples(protocol, root))


def _method_fingerprint(spec: str) -> str:
    from groundbench.methods import resolve_method

    return resolve_method(spec).fingerprint()


def _current_report(
    report_dir: Path, protocol: Protocol, method_fp: str, data_fp: str
) -> dict[str, Any] | None:
    """The report in ``report_dir`` if it scored this protocol, method and data; else None."""
    try:
        report = json.loads((report_dir / "report.json").read_text(encoding="utf-8"))
        same = (
            report["protocol"]["hash"] == protocol.hash
            and report["method"]["fingerprint"] == method_fp
            and report["dataset"]["fingerprint"] == data_fp
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return report if same else None


def _add(report_dir: Path, report: dict, board: Path) -> None:
    """Add the report to ``board`` unless its entry is already there (same fingerprints)."""
    try:
        entry = json.loads(entry_path(board, report).read_text(encoding="utf-8"))["report"]
        if (
            entry["protocol"]["hash"] == report["protocol"]["hash"]
            and entry["method"]["fingerprint"] == report["method"]["fingerprint"]
            and entry["dataset"]["fingerprint"] == report["dataset"]["fingerprint"]
        ):
            log.info("%s is already on the board", report_dir)
            return
    except (OSError, ValueError, KeyError, TypeError):
        pass
    add_entry(report_dir, board, replace=True)
