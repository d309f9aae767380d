"""Scalar logging for training: a CSV file, TensorBoard when installed, a loss-curve PNG."""

from __future__ import annotations

import csv
import logging
from pathlib import Path

log = logging.getLogger(__name__)


class ScalarLog:
    """Append rows of scalars to ``log.csv`` (and TensorBoard if the package is installed).

    The CSV header is fixed by the first row; resuming appends to the existing file.
    """

    def __init__(self, out_dir: Path, *, resume: bool) -> None:
        self.path = out_dir / "log.csv"
        if not resume and self.path.exists():
            self.path.unlink()
        self._writer = None
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            log.info("tensorboard is not installed; scalars go to %s only", self.path)
        else:
            self._writer = SummaryWriter(str(out_dir / "tensorboard"))

    def write(self, row: dict[str, float]) -> None:
        """Append one row (keys: ``step``, ``epoch``, ``lr``, loss terms, ``images_per_s``)."""
        new = not self.path.exists()
        with self.path.open("a", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, fieldnames=list(row))
            if new:
                writer.writeheader()
            writer.writerow(row)
        if self._writer is not None:
            for key, value in row.items():
                if key != "step":
                    self._writer.add_scalar(key, value, int(row["step"]))

    def close(self) -> None:
        """Flush TensorBoard."""
        if self._writer is not None:
            self._writer.close()


def plot_loss_curve(csv_path: Path, png_path: Path) -> Path | None:
    """Plot every loss column of ``csv_path`` against the step into ``png_path``.

    Every column but ``step``, ``epoch``, ``lr`` and ``images_per_s`` is a loss term. The
    y axis is logarithmic when every value is positive, with ticks written as plain numbers
    (``2.9``, ``3``, ``5``, not ``3 × 10⁰``).

    Returns:
        ``png_path``, or None when the log has no rows.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter, LogLocator, MaxNLocator, NullLocator

    with csv_path.open(encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    if not rows:
        return None
    steps = [float(r["step"]) for r in rows]
    keys = [k for k in rows[0] if k not in ("step", "epoch", "lr", "images_per_s")]
    series = {k: [float(r[k]) for r in rows if r.get(k) not in (None, "")] for k in keys}
    fig, ax = plt.subplots(figsize=(7, 4))
    for key in keys:
        if len(series[key]) == len(steps):
            ax.plot(steps, series[key], label=key)
    values = [v for vs in series.values() for v in vs if v == v]  # NaN left out
    if values and min(values) > 0:
        ax.set_yscale("log")
        ax.set_ylabel("loss (log scale)")
        if max(values) / min(values) < 10:  # under a decade: evenly spaced plain ticks
            ax.yaxis.set_major_locator(MaxNLocator(nbins=6))
        else:
            ax.yaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
        ax.yaxis.set_minor_locator(NullLocator())
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:.4g}"))
    else:
        ax.set_ylabel("loss")
    ax.set_xlabel("optimiser step")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(png_path, dpi=100)
    plt.close(fig)
    return png_path
