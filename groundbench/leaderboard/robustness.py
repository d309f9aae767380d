"""The robustness view: methods × probes, each score and its difference from in-distribution.

Entries are grouped into **families**: protocols identical except for the dataset split,
the sample selection (``select``) and the ``control``. Within a family the
**in-distribution** protocol is the one on the in-distribution split (``test`` by default)
with no control and no ``include_tags`` filter; every other protocol is a **probe**,
labelled by its control (``blind``), else its split (``compositional``), else its included
tags. A protocol on a **development** split (:data:`DEVELOPMENT_SPLITS`: ``val``, ...) is
neither: it is where settings are tuned, not a shift of distribution, so it stays out of
the view. Entries are matched across protocols by method fingerprint, so a row is one method.
A cell holds the probe score on the family's first metric and the signed **difference**
``probe mean − in-distribution mean`` (negative = worse on the probe), stored as ``drop``.

A **control** (``blind``) is read the other way round: it takes the phrase away, so a
method that reads the phrase *should* drop, and a difference near 0 means the maps do not
depend on it. Controls are listed in :attr:`RobustnessMatrix.controls` and drawn apart
from the probes, with their own colour scale (a drop is good).
"""

from __future__ import annotations

import copy
import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from groundbench.leaderboard.entries import Entry
from groundbench.protocol import protocol_hash

log = logging.getLogger(__name__)

# display order of the probes the synthetic benchmark ships; others follow alphabetically
PROBE_ORDER = (
    "compositional",
    "relational",
    "distractors",
    "paraphrase",
    "occlusion",
    "off_centre",
    "small",
    "blind",
)


#: Splits that tune or calibrate a method (never probes, never in-distribution references).
DEVELOPMENT_SPLITS: tuple[str, ...] = ("train", "val", "validation", "dev", "minival")


@dataclass(frozen=True)
class RobustnessCell:
    """One method on one probe.

    Attributes:
        protocol_id: the probe protocol's id.
        mean: probe score (None when undefined on every sample).
        ci_low: lower end of its interval.
        ci_high: upper end of its interval.
        drop: ``mean − in-distribution mean``; None without an in-distribution score.
    """

    protocol_id: str
    mean: float | None
    ci_low: float | None
    ci_high: float | None
    drop: float | None


@dataclass(frozen=True)
class RobustnessMatrix:
    """Methods × probes for one protocol family.

    Attributes:
        dataset: dataset name.
        variant: pointing variant(s) of the family, e.g. ``albef`` (``-`` when none).
        metric: the metric display key scored (the in-distribution protocol's first metric).
        reference: id of the in-distribution protocol.
        methods: ``(fingerprint, display name)`` per row, sorted by name.
        reference_means: method fingerprint → in-distribution mean (None if undefined).
        probes: probe labels, in display order.
        cells: ``(method fingerprint, probe label)`` → cell (absent when not evaluated).
        higher_is_better: the direction of ``metric`` (from its registered metadata).
        controls: the labels in ``probes`` that are controls (``blind``), last in order.
    """

    dataset: str
    variant: str
    metric: str
    reference: str
    methods: tuple[tuple[str, str], ...]
    reference_means: Mapping[str, float | None]
    probes: tuple[str, ...]
    cells: Mapping[tuple[str, str], RobustnessCell]
    higher_is_better: bool = True
    controls: tuple[str, ...] = ()

    @property
    def shifts(self) -> tuple[str, ...]:
        """The probe labels that are no control: shifts of distribution, a drop is bad."""
        return tuple(p for p in self.probes if p not in self.controls)


def pointing_variant(canonical: Mapping[str, Any]) -> str:
    """Return the named pointing variant(s) of a canonical protocol.

    ``+``-joined when several; ``unnamed`` when its pointing metrics name no variant (a
    plain or tolerance pointing game); ``-`` when it has no pointing metric.

    Example:
        >>> pointing_variant({"metrics": [{"name": "pointing", "variant": "albef"},
        ...                               {"name": "pointing", "variant": None, "tolerance_px": 15.0}]})
        'albef'
    """
    pointing = [m for m in canonical.get("metrics", []) if m.get("name") == "pointing"]
    variants = sorted({str(m["variant"]) for m in pointing if m.get("variant")})
    if variants:
        return "+".join(variants)
    return "unnamed" if pointing else "-"


def is_development(canonical: Mapping[str, Any], in_distribution_split: str) -> bool:
    """Whether the protocol reads a development split (:data:`DEVELOPMENT_SPLITS`)."""
    split = canonical.get("dataset", {}).get("split")
    return split != in_distribution_split and split in DEVELOPMENT_SPLITS


def probe_label(canonical: Mapping[str, Any], in_distribution_split: str) -> str | None:
    """Return the probe label of a protocol; None for an in-distribution or development one."""
    if is_development(canonical, in_distribution_split):
        return None
    control = canonical.get("control")
    if control:
        return str(control)
    split = canonical.get("dataset", {}).get("split")
    include = sorted(canonical.get("select", {}).get("include_tags", []) or [])
    if split != in_distribution_split:
        return "+".join([split, *include]) if include else str(split)
    return "+".join(include) if include else None


def family_key(canonical: Mapping[str, Any]) -> str:
    """Hash the canonical protocol without its split, selection and control."""
    rest: dict[str, Any] = copy.deepcopy(dict(canonical))
    rest.pop("select", None)
    rest.pop("control", None)
    if isinstance(rest.get("dataset"), dict):
        rest["dataset"].pop("split", None)
    return protocol_hash(rest)


def robustness_matrices(
    entries: Sequence[Entry], *, in_distribution_split: str = "test"
) -> list[RobustnessMatrix]:
    """Build one matrix per family that has an in-distribution protocol and ≥ 1 probe.

    Args:
        entries: leaderboard entries (any protocols).
        in_distribution_split: the split probes are measured against.

    Returns:
        Matrices sorted by dataset, variant and reference protocol id.
    """
    families: dict[str, list[Entry]] = {}
    for e in entries:
        if is_development(e.canonical, in_distribution_split):
            continue
        families.setdefault(family_key(e.canonical), []).append(e)
    out = []
    for members in families.values():
        refs = [e for e in members if probe_label(e.canonical, in_distribution_split) is None]
        probes = [e for e in members if probe_label(e.canonical, in_distribution_split) is not None]
        ref_ids = sorted({e.protocol_id for e in refs})
        if len(ref_ids) > 1:
            log.warning(
                "robustness view: protocols %s all look in-distribution for one family; "
                "skipping it (give probes their own split, control or include_tags)",
                ", ".join(ref_ids),
            )
        if len(ref_ids) != 1 or not probes:
            continue
        out.append(_matrix(refs, probes, in_distribution_split))
    return sorted(out, key=lambda m: (m.dataset, m.variant, m.reference))


def _matrix(refs: list[Entry], probes: list[Entry], split: str) -> RobustnessMatrix:
    ref = refs[0]
    metric = ref.metric_keys[0]
    reference_means = {e.method_fingerprint: _agg(e, metric)[0] for e in refs}
    names: dict[str, str] = {e.method_fingerprint: e.method_name for e in [*refs, *probes]}
    cells: dict[tuple[str, str], RobustnessCell] = {}
    labels_of = {e.protocol_id: probe_label(e.canonical, split) for e in probes}
    for e in probes:
        label = labels_of[e.protocol_id]
        if list(labels_of.values()).count(label) > 1:  # two probe protocols, one label
            label = f"{label} ({e.protocol_id})"
        mean, low, high = _agg(e, metric)
        base = reference_means.get(e.method_fingerprint)
        drop = None if mean is None or base is None else mean - base
        cells[(e.method_fingerprint, label)] = RobustnessCell(e.protocol_id, mean, low, high, drop)
    labels = {label for _, label in cells}
    controls = {
        label
        for (_, label), cell in cells.items()
        if any(e.protocol_id == cell.protocol_id and e.canonical.get("control") for e in probes)
    }
    order = [p for p in PROBE_ORDER if p in labels] + sorted(labels - set(PROBE_ORDER))
    order = [p for p in order if p not in controls] + [p for p in order if p in controls]
    methods = display_names(names)
    return RobustnessMatrix(
        dataset=ref.report["dataset"]["name"],
        variant=pointing_variant(ref.canonical),
        metric=metric,
        reference=ref.protocol_id,
        methods=methods,
        reference_means=reference_means,
        probes=tuple(order),
        cells=cells,
        higher_is_better=metric_higher_is_better(ref.canonical, 0),
        controls=tuple(p for p in order if p in controls),
    )


def metric_higher_is_better(canonical: Mapping[str, Any], index: int) -> bool:
    """Whether a higher value of the protocol's ``index``-th metric is better (registry metadata)."""
    from groundbench.metrics import METRICS

    return bool(METRICS.meta(canonical["metrics"][index]["name"]).get("higher_is_better", True))


def display_names(names: Mapping[str, str]) -> tuple[tuple[str, str], ...]:
    """Sort methods by name; a name shared by several fingerprints gets the fingerprint prefix."""
    counts: dict[str, int] = {}
    for name in names.values():
        counts[name] = counts.get(name, 0) + 1
    shown = {fp: name if counts[name] == 1 else f"{name} ({fp[:8]})" for fp, name in names.items()}
    return tuple(sorted(shown.items(), key=lambda item: (item[1], item[0])))


def _agg(entry: Entry, metric: str) -> tuple[float | None, float | None, float | None]:
    agg = entry.aggregate(metric)
    if agg is None:
        return None, None, None
    return agg["mean"], agg["ci_low"], agg["ci_high"]


def plot_robustness(matrices: Sequence[RobustnessMatrix], path: str | Path) -> Path:
    """Draw every matrix as heat maps of differences (annotated with scores) into one PNG.

    Per matrix, the probes are one heat map coloured by the signed difference
    ``probe − in-distribution`` (red worse, blue better); the controls (``blind``) are a
    second heat map beside it on their own scale, where a drop is the expected, good
    outcome (green: the method reads the phrase; purple: it scores as well without it).
    Each has its colour bar, and each cell shows the score with its difference.

    Args:
        matrices: from :func:`robustness_matrices` (at least one).
        path: the PNG to write; the file is deterministic (no timestamp, no version).

    Returns:
        ``path``.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    heights = [1.4 + 0.45 * len(m.methods) for m in matrices]
    shifts = max(max(len(m.shifts) for m in matrices), 1)
    controls = max(len(m.controls) for m in matrices)
    width = max(9.0 if controls else 6.0, 2.0 + 1.1 * (shifts + controls) + 2.5 * bool(controls))
    fig = plt.figure(figsize=(width, sum(heights) + 0.3))
    grid = fig.add_gridspec(
        len(matrices),
        2 if controls else 1,
        height_ratios=heights,
        width_ratios=[shifts + 0.6, controls + 0.9] if controls else None,
    )
    for row, m in enumerate(matrices):
        if m.shifts:
            _draw(fig.add_subplot(grid[row, 0]), m)
        if m.controls:
            _draw(fig.add_subplot(grid[row, 1]), m, controls=True)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110, metadata={"Software": None})
    plt.close(fig)
    return path


def _draw(ax: Any, m: RobustnessMatrix, *, controls: bool = False) -> None:
    import numpy as np

    columns = m.controls if controls else m.shifts
    drops = np.full((len(m.methods), len(columns)), np.nan)
    for i, (fp, _) in enumerate(m.methods):
        for j, probe in enumerate(columns):
            cell = m.cells.get((fp, probe))
            if cell is not None and cell.drop is not None:
                drops[i, j] = cell.drop
    limit = float(np.nanmax(np.abs(drops))) if np.isfinite(drops).any() else 1.0
    limit = max(limit, 1e-3)  # an all-zero matrix still gets a readable colour bar
    # on a control a drop (negative) is good: green; no drop is the failure: purple
    cmap = "PiYG_r" if controls else "RdBu"
    image = ax.imshow(drops, cmap=cmap, vmin=-limit, vmax=limit, aspect="auto")
    bar = ax.figure.colorbar(image, ax=ax, fraction=0.035 if not controls else 0.12, pad=0.02)
    bar.set_label(
        "difference\n(control − in-distribution)"
        if controls
        else "difference\n(probe − in-distribution)",
        fontsize=8,
    )
    bar.ax.tick_params(labelsize=7)
    for i, (fp, _) in enumerate(m.methods):
        for j, probe in enumerate(columns):
            cell = m.cells.get((fp, probe))
            strong = cell is not None and cell.drop is not None and abs(cell.drop) > 0.6 * limit
            colour = "white" if strong else "black"
            ax.text(j, i, _cell_text(cell), ha="center", va="center", fontsize=7, color=colour)
    ax.set_xticks(range(len(columns)), columns, rotation=30, ha="right", fontsize=8)
    ax.set_yticks(range(len(m.methods)), [name for _, name in m.methods], fontsize=8)
    if controls:
        ax.set_title(
            "control: score (difference);\na drop is good: green = reads the phrase",
            fontsize=8,
        )
        return
    ax.set_title(
        f"{m.dataset} · {m.metric}: probe score and (its difference from\n"
        f"in-distribution {m.reference}); red = worse on the probe, blue = better",
        fontsize=8,
    )


def _cell_text(cell: RobustnessCell | None) -> str:
    if cell is None:
        return "–"
    score = "n/a" if cell.mean is None else f"{cell.mean:.3f}"
    drop = "" if cell.drop is None or math.isnan(cell.drop) else f"\n({cell.drop:+.3f})"
    return score + drop
