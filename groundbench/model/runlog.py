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

    Returns:
        ``png_path``, or None when the log has no rows.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with csv_path.open(encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    if not rows:
        return None
    steps = [float(r["step"]) for r in rows]
    fig, ax = plt.subplots(figsize=(7, 4))
    for key in rows[0]:
        if key in ("loss", "word", "gate", "patch"):
            ax.plot(steps, [float(r[key]) for r in rows], label=key)
    ax.set_xlabel("optimiser step")
    ax.set_ylabel("loss")
    ax.set_yscale("log")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(png_path, dpi=100)
    plt.close(fig)
    return png_path
