"""The randomisation sanity probe: does a method's map depend on the model's weights?

``randomisation_probe(protocol, method)`` explains the protocol's samples (the first
``limit``), then runs :func:`~groundbench.attribution.randomise.cascading_randomisation`
over the layers the method exposes (``method.randomisation_layers()``: tower → layers,
output side first). Maps are compared after the protocol's own ``average``, ``aggregate``,
``upsample`` and ``smooth`` steps (not its normalisation: the comparison takes ``|map| /
max|map|`` as Quantus does), at image resolution. The report directory holds
``report.json``, ``report.md`` and ``randomisation.png`` (Spearman per reset layer, per tower).
A tower whose fully randomised end point keeps a mean Spearman above
:data:`SURVIVAL_THRESHOLD` is flagged: the map survives randomisation of that tower.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import torch

from groundbench import __version__
from groundbench.attribution.randomise import LayerStep, cascading_randomisation
from groundbench.errors import MethodError
from groundbench.evaluation.data import dataset_fingerprint, load_split
from groundbench.methods import Method, resolve_method
from groundbench.metrics.aggregate import aggregate
from groundbench.postprocess.pipeline import Pipeline
from groundbench.protocol import Protocol, load_protocol
from groundbench.types import GroundingSample, Undefined

PROBE = "randomisation"
SURVIVAL_THRESHOLD = 0.5
FIGURE = "randomisation.png"


def _layers(method: Method) -> dict[str, list[torch.nn.Module]]:
    get = getattr(method, "randomisation_layers", None)
    if not callable(get):
        raise MethodError(
            f"method {method.name} exposes no randomisation_layers(), so there are no weights "
            "to randomise (baselines and heatmap files have none); a plugin can add "
            "randomisation_layers() -> {tower: [modules, output side first]}"
        )
    return {k: list(v) for k, v in get().items() if v}


def _explainer(method, samples, pipeline: Pipeline, device, batch_size):
    images = [s.load_image() for s in samples]
    sizes = [(s.height, s.width) for s in samples]

    def explain() -> list[torch.Tensor]:
        out = []
        for k in range(0, len(samples), batch_size):
            part = slice(k, k + batch_size)
            raw = method.predict(samples[part], images[part], device=device)
            heat = pipeline.run(raw, sizes[part], device="cpu").heatmap
            out += [heat[i, :h, :w] for i, (h, w) in enumerate(sizes[part])]
        return out

    return explain


def _summary(values: np.ndarray, seed: int) -> dict[str, Any]:
    undefined = np.where(np.isnan(values), int(Undefined.CONSTANT_MAP), 0).astype(np.int8)
    return aggregate(values, undefined, resamples=1000, seed=seed, binary=False).to_dict()


def randomisation_probe(
    protocol: str | Protocol,
    method: str | Method,
    *,
    out_dir: str | Path,
    limit: int | None = 32,
    seed: int = 42,
    max_layers: int | None = None,
    device: str = "cpu",
    batch_size: int = 32,
    data_root: str | Path | None = None,
) -> dict[str, Any]:
    """Run the probe and write its report directory; returns the report dict.

    Args:
        protocol: protocol name or file (its samples and pipeline are used).
        method: a method spec or object with ``randomisation_layers()``.
        out_dir: the report directory (created).
        limit: the first ``limit`` samples (sorted by id); None = all (each reset re-explains them).
        seed: Quantus' seed (``seed + 1`` before each reset).
        max_layers: reset at most this many layers per tower.

    Raises:
        MethodError: the method exposes no layers.
    """
    protocol = load_protocol(protocol) if isinstance(protocol, str) else protocol
    method = resolve_method(method) if isinstance(method, str) else method
    towers = _layers(method)
    samples: Sequence[GroundingSample] = load_split(protocol, data_root, limit).samples
    pipe = {**protocol.pipeline, "normalise": "none", "threshold": None, "regions": None}
    explain = _explainer(
        method, list(samples), Pipeline.from_config(pipe), torch.device(device), batch_size
    )
    _, steps = cascading_randomisation(explain, towers, seed=seed, max_layers=max_layers)
    report = _report(protocol, method, samples, steps, seed, limit)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    _write(out / "report.json", json.dumps(report, indent=1, sort_keys=True) + "\n")
    _write(out / "report.md", render_markdown(report))
    plot_randomisation(report, out / FIGURE)
    return report


def _report(protocol, method, samples, steps: list[LayerStep], seed, limit) -> dict[str, Any]:
    towers: dict[str, Any] = {}
    for s in steps:
        t = towers.setdefault(s.tower, {"layers": []})
        t["layers"].append(
            {
                "depth": s.depth,
                "layer": s.layer,
                "reset": sorted(set(s.reset)),
                "deterministic_resets": sorted(set(s.deterministic)),
                "kept": list(s.kept),
                "spearman": _summary(s.spearman, seed),
            }
        )
    for t in towers.values():
        end = t["layers"][-1]["spearman"]
        t["end_point"] = end
        t["survives"] = end["mean"] is not None and end["mean"] > SURVIVAL_THRESHOLD
    return {
        "probe": PROBE,
        "groundbench": __version__,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "protocol": {"name": protocol.name, "id": protocol.id, "hash": protocol.hash},
        "method": {
            "name": method.name,
            "fingerprint": method.fingerprint(),
            "supervision": method.supervision,
        },
        "dataset": {"fingerprint": dataset_fingerprint(samples), "n": len(samples), "limit": limit},
        "settings": {
            "order": "top_down (cascading)",
            "reset": "reset_parameters() of every sub-module of the layer",
            "seed": seed,
            "seed_rule": "torch.manual_seed(seed + 1) before each layer's reset",
            "similarity": "spearman of |map| / max|map|, per sample, at image resolution",
            "pipeline": "protocol's average, aggregate, upsample, smooth; no normalisation",
            "survival_threshold": SURVIVAL_THRESHOLD,
        },
        "towers": towers,
    }


def _fmt(agg: dict[str, Any]) -> str:
    if agg["mean"] is None:
        return "undefined"
    return f"{agg['mean']:.3f} [{agg['ci_low']:.3f}, {agg['ci_high']:.3f}]"


def render_markdown(report: dict[str, Any]) -> str:
    """The probe's ``report.md``: the end point per tower, then the per-layer curve."""
    m, p, d = report["method"], report["protocol"], report["dataset"]
    lines = [
        f"# Randomisation sanity probe: {m['name']}",
        "",
        f"Protocol `{p['name']}` ({p['id']}), {d['n']} samples. Layers reset top-down, cascading "
        f"(Adebayo et al. 2018; Quantus MPRT), seed {report['settings']['seed']}; Spearman of "
        "|map|/max against the original map. A high end point means the map does not depend on "
        "that tower's weights.",
        "",
        "| tower | layers | end point (fully randomised) | survives |",
        "|---|---|---|---|",
    ]
    for name, t in report["towers"].items():
        flag = "**yes**" if t["survives"] else "no"
        lines.append(f"| {name} | {len(t['layers'])} | {_fmt(t['end_point'])} | {flag} |")
    for name, t in report["towers"].items():
        lines += [
            "",
            f"## {name}",
            "",
            "| depth | layer | Spearman | n defined | non-random resets |",
            "|---|---|---|---|---|",
        ]
        for row in t["layers"]:
            det = ", ".join(row["deterministic_resets"]) or "-"
            lines.append(
                f"| {row['depth']} | {row['layer']} | {_fmt(row['spearman'])} | "
                f"{row['spearman']['n_defined']}/{row['spearman']['n']} | {det} |"
            )
    lines += ["", f"![per-layer curve]({FIGURE})", ""]
    return "\n".join(lines)


def plot_randomisation(report: dict[str, Any], path: Path) -> Path:
    """Plot mean Spearman (with its interval) against layers reset, one line per tower."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.6))
    for name, t in report["towers"].items():
        xs = [0] + [r["depth"] for r in t["layers"]]
        mean = [1.0] + [
            np.nan if r["spearman"]["mean"] is None else r["spearman"]["mean"] for r in t["layers"]
        ]
        lo = [1.0] + [
            np.nan if r["spearman"]["ci_low"] is None else r["spearman"]["ci_low"]
            for r in t["layers"]
        ]
        hi = [1.0] + [
            np.nan if r["spearman"]["ci_high"] is None else r["spearman"]["ci_high"]
            for r in t["layers"]
        ]
        (line,) = ax.plot(xs, mean, marker="o", label=name)
        ax.fill_between(xs, lo, hi, color=line.get_color(), alpha=0.2)
    ax.axhline(SURVIVAL_THRESHOLD, color="grey", linestyle=":", linewidth=1)
    ax.set_xlabel("layers reset (output side first)")
    ax.set_ylabel("Spearman with the original map")
    ax.set_ylim(-0.2, 1.05)
    ax.set_title(report["method"]["name"], fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120, metadata={"Software": None})
    plt.close(fig)
    return path


def _write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
