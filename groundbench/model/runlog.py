"""Scalar logging for training: a CSV file, TensorBoard when installed, a loss-curve PNG."""

from __future__ import annotations

import csv
import logging
from pathlib import Path

log = logging.getLogger(__name__)


class ScalarLog:
    """Append rows of scalars to ``log.csv`` (and TensorBoard if the package is installed:
    ``pip install groundbench[tensorboard]``).

    The CSV header is fixed by the first row. A run resumed at step ``resume_step`` keeps
    the rows up to that step and drops the later ones (the steps about to be run again);
    ``resume_step`` 0 starts a new file.
    """

    def __init__(self, out_dir: Path, *, resume_step: int = 0) -> None:
        self.path = out_dir / "log.csv"
        if resume_step > 0 and self.path.exists():
            _keep_rows_up_to(self.path, resume_step)
        elif self.path.exists():
            self.path.unlink()
        self._writer = None
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            log.info("tensorboard is not installed; scalars go to %s only", self.path)
        else:
            self._writer = SummaryWriter(
                str(out_dir / "tensorboard"), purge_step=resume_step + 1 if resume_step else None
            )

    def write(self, row: dict[str, float | None]) -> None:
        """Append one row (keys: ``step``, ``lr``, loss terms, ``images_per_s``; a loss term
        is None, written empty, when no step of the row had a pair)."""
        new = not self.path.exists()
        with self.path.open("a", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, fieldnames=list(row))
            if new:
                writer.writeheader()
            writer.writerow(row)
        if self._writer is not None:
            for key, value in row.items():
                if key != "step" and value is not None:
                    self._writer.add_scalar(key, value, int(row["step"]))

    def close(self) -> None:
        """Flush TensorBoard."""
        if self._writer is not None:
            self._writer.close()


def _keep_rows_up_to(path: Path, step: int) -> None:
    with path.open(encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f)
        fields = reader.fieldnames or []
        rows = [r for r in reader if int(float(r["step"])) <= step]
    tmp = path.with_name(f".{path.name}.tmp")
    with tmp.open("w", encoding="utf-8", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)
    tmp.replace(path)


def plot_loss_curve(csv_path: Path, png_path: Path, *, chance: float | None = None) -> Path | None:
    """Plot the loss columns of ``csv_path`` against the step into ``png_path``.

    Every column but ``step``, ``lr`` and ``images_per_s`` is a loss term; a term equal to
    ``loss`` on every row (``word`` without optional terms) is drawn once, as ``loss``.
    ``chance`` (nats) draws the loss of uniform guessing as a dashed line. The y axis is
    logarithmic when every value is positive, with ticks written as plain numbers (``2.9``,
    ``3``, ``5``, not ``3 × 10⁰``).

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
    keys = [k for k in rows[0] if k not in ("step", "lr", "images_per_s")]
    series = {
        k: [
            (s, float(r[k])) for s, r in zip(steps, rows, strict=True) if r.get(k) not in (None, "")
        ]
        for k in keys
    }
    keys = [k for k in keys if k == "loss" or series[k] != series.get("loss")]
    fig, ax = plt.subplots(figsize=(7, 4))
    for key in keys:
        if series[key]:
            ax.plot(*zip(*series[key], strict=True), label=key)
    values = [v for k in keys for _, v in series[k] if v == v]  # NaN left out
    if chance is not None and chance == chance:
        ax.axhline(chance, color="grey", linestyle="--", label=f"chance ({chance:.2f})")
        values.append(chance)
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
