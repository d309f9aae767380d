"""Report figures (matplotlib, Agg): per-tag bars with CIs, and a gallery of heatmap overlays."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

_PNG_META = {"Software": None}  # no version string in the file: same inputs, same bytes


@dataclass(frozen=True)
class GalleryItem:
    """One panel: the image, the heatmap at image size, the GT boxes (xyxy px) and a title."""

    image: np.ndarray
    heatmap: np.ndarray
    boxes: np.ndarray
    title: str


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def plot_tag_bars(path: Path, metric_key: str, by_tag: Mapping[str, Mapping[str, Any]]) -> Path:
    """Bar chart of ``metric_key`` per tag with 95% CI error bars; undefined tags omitted."""
    plt = _pyplot()
    tags = ["all"] + sorted(t for t in by_tag if t != "all")
    tags = [t for t in tags if by_tag[t]["mean"] is not None]
    means = np.array([by_tag[t]["mean"] for t in tags])
    lo = np.array(
        [
            by_tag[t]["ci_low"] if by_tag[t]["ci_low"] is not None else by_tag[t]["mean"]
            for t in tags
        ]
    )
    hi = np.array(
        [
            by_tag[t]["ci_high"] if by_tag[t]["ci_high"] is not None else by_tag[t]["mean"]
            for t in tags
        ]
    )
    fig, ax = plt.subplots(figsize=(max(4.0, 0.55 * len(tags) + 1.5), 3.2), dpi=100)
    ax.bar(range(len(tags)), means, color=["#4c72b0"] + ["#8da0cb"] * (len(tags) - 1))
    ax.errorbar(
        range(len(tags)),
        means,
        yerr=[means - lo, hi - means],
        fmt="none",
        ecolor="black",
        capsize=3,
    )
    ax.set_xticks(
        range(len(tags)),
        [f"{t}\nn={by_tag[t]['n']}" for t in tags],
        rotation=45,
        ha="right",
        fontsize=7,
    )
    ax.set_ylabel(metric_key)
    ax.set_title(f"{metric_key} by tag (95% CI)")
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, metadata=_PNG_META)
    plt.close(fig)
    return path


def plot_gallery(path: Path, items: Sequence[GalleryItem], columns: int = 3) -> Path:
    """Grid of images with the heatmap overlaid (jet, alpha 0.5) and GT boxes in green."""
    plt = _pyplot()
    from matplotlib.patches import Rectangle

    rows = max(1, -(-len(items) // columns))
    fig, axes = plt.subplots(
        rows, columns, figsize=(3.2 * columns, 3.4 * rows), dpi=100, squeeze=False
    )
    for ax in axes.flat:
        ax.axis("off")
    for ax, item in zip(axes.flat, items, strict=False):
        h, w = item.image.shape[:2]
        ax.imshow(item.image, extent=(0, w, h, 0))
        hm = np.nan_to_num(item.heatmap[:h, :w].astype(np.float64))
        if hm.max() > hm.min():
            hm = (hm - hm.min()) / (hm.max() - hm.min())
        ax.imshow(hm, cmap="jet", alpha=0.5, extent=(0, w, h, 0), vmin=0, vmax=1)
        for x0, y0, x1, y1 in item.boxes:
            ax.add_patch(
                Rectangle((x0, y0), x1 - x0, y1 - y0, fill=False, edgecolor="lime", linewidth=1.5)
            )
        peak = np.unravel_index(np.argmax(hm), hm.shape)
        ax.plot(peak[1] + 0.5, peak[0] + 0.5, marker="+", color="white", markersize=10, mew=2)
        ax.set_title(item.title, fontsize=7)
    fig.tight_layout()
    fig.savefig(path, metadata=_PNG_META)
    plt.close(fig)
    return path
