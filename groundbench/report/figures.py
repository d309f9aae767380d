"""Report figures (matplotlib, Agg): per-tag bars with CIs, and a gallery of images and maps."""

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
        # a percentile interval need not hold the mean: draw only the part that reaches out
        yerr=[np.clip(means - lo, 0, None), np.clip(hi - means, 0, None)],
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


GT_COLOUR = "lime"
PEAK_COLOUR = "white"
MAP_CMAP = "inferno"


def shorten(text: str, limit: int) -> str:
    """Cut ``text`` to at most ``limit`` characters, marking a cut with an ellipsis.

    Example:
        >>> shorten("the cyan cross between the two squares", 20)
        'the cyan cross betw…'
        >>> shorten("the heart", 20)
        'the heart'
    """
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def map_peak(heatmap: np.ndarray) -> tuple[int, int] | None:
    """Return the ``(row, column)`` of the map's highest pixel, or None for a constant map.

    Only finite values count; the first maximum in row-major order wins a tie.

    Example:
        >>> map_peak(np.array([[0.0, 2.0], [1.0, 2.0]]))
        (0, 1)
        >>> map_peak(np.full((2, 2), 0.25)) is None
        True
    """
    hm = np.asarray(heatmap, dtype=np.float64)
    finite = hm[np.isfinite(hm)]
    if finite.size == 0 or not finite.max() > finite.min():
        return None
    row, col = np.unravel_index(np.argmax(np.where(np.isfinite(hm), hm, -np.inf)), hm.shape)
    return int(row), int(col)


def plot_gallery(path: Path, items: Sequence[GalleryItem], columns: int = 3) -> Path:
    """Grid of sample pairs: the image untinted, and beside it the map over a grey copy.

    The map is min–max scaled per panel and drawn translucent (``inferno``, more opaque where
    higher; one shared colour bar) over the image in grey, so the image's own colours stay readable on the left. Both
    panels carry the GT boxes and the map's peak; a constant map has no peak and says so.
    """
    plt = _pyplot()
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize
    from matplotlib.lines import Line2D

    rows = max(1, -(-len(items) // columns))
    fig = plt.figure(figsize=(4.6 * columns + 0.8, 2.75 * rows + 0.9), dpi=100)
    grid = fig.add_gridspec(
        rows,
        2 * columns + 1,
        width_ratios=[1.0] * (2 * columns) + [0.06],
        left=0.01,
        right=0.94,
        top=1 - 0.95 / fig.get_figheight(),
        bottom=0.02,
        hspace=0.35,
        wspace=0.06,
    )
    for n, item in enumerate(items):
        r, c = divmod(n, columns)
        image_ax = fig.add_subplot(grid[r, 2 * c])
        map_ax = fig.add_subplot(grid[r, 2 * c + 1])
        _draw_pair(image_ax, map_ax, item)
    norm = Normalize(0.0, 1.0)
    colour_bar = fig.colorbar(
        ScalarMappable(norm=norm, cmap=MAP_CMAP), cax=fig.add_subplot(grid[:, -1])
    )
    colour_bar.set_label("map value (min–max scaled per panel)", fontsize=8)
    colour_bar.ax.tick_params(labelsize=7)
    handles = [
        Line2D([], [], color=GT_COLOUR, linewidth=2, label="ground-truth box"),
        Line2D(
            [],
            [],
            color=PEAK_COLOUR,
            marker="+",
            markersize=10,
            mew=2,
            linestyle="none",
            markeredgecolor="black",
            label="map peak (its highest pixel)",
        ),
    ]
    legend = fig.legend(
        handles=handles,
        loc="upper center",
        ncol=2,
        fontsize=8,
        frameon=False,
        title="left: the image; right: the map over the image in grey",
        title_fontsize=8,
    )
    legend.legend_handles[1].set_path_effects(_outline())
    fig.savefig(path, metadata=_PNG_META)
    plt.close(fig)
    return path


def _outline(width: float = 3.5) -> list:
    """A black stroke under a line or marker, so it shows on any image."""
    from matplotlib import patheffects

    return [patheffects.withStroke(linewidth=width, foreground="black")]


def _draw_pair(image_ax: Any, map_ax: Any, item: GalleryItem) -> None:
    from matplotlib.patches import Rectangle

    h, w = item.image.shape[:2]
    extent = (0, w, h, 0)
    peak = map_peak(item.heatmap[:h, :w])
    hm = np.nan_to_num(item.heatmap[:h, :w].astype(np.float64), posinf=0.0, neginf=0.0)
    if peak is None:
        hm = np.zeros_like(hm)
    else:
        finite = item.heatmap[:h, :w][np.isfinite(item.heatmap[:h, :w])]
        hm = np.clip((hm - finite.min()) / (finite.max() - finite.min()), 0.0, 1.0)
    grey = item.image if item.image.ndim == 2 else item.image[..., :3].mean(axis=-1)
    image_ax.imshow(item.image, extent=extent)
    map_ax.imshow(grey, cmap="gray", extent=extent, vmin=0, vmax=255 if grey.max() > 1 else 1)
    # low values more transparent, so the grey image shows where the map is weak
    map_ax.imshow(hm, cmap=MAP_CMAP, alpha=0.35 + 0.55 * hm, extent=extent, vmin=0, vmax=1)
    for ax in (image_ax, map_ax):
        ax.set_xticks([])
        ax.set_yticks([])
        for x0, y0, x1, y1 in item.boxes:
            box = Rectangle(
                (x0, y0), x1 - x0, y1 - y0, fill=False, edgecolor=GT_COLOUR, linewidth=1.5
            )
            box.set_path_effects(_outline(3.0))
            ax.add_patch(box)
        if peak is None:
            continue
        (marker,) = ax.plot(
            peak[1] + 0.5, peak[0] + 0.5, marker="+", color=PEAK_COLOUR, markersize=10, mew=2
        )
        marker.set_path_effects(_outline())
    if peak is None:
        map_ax.text(
            0.5,
            0.5,
            "constant map:\nno peak",
            transform=map_ax.transAxes,
            ha="center",
            va="center",
            fontsize=8,
            color="white",
            bbox={"facecolor": "black", "alpha": 0.6, "linewidth": 0},
        )
    image_ax.set_title(item.title, fontsize=7, loc="left")
