"""Draw docs/figures/synth_scenes.png: synthetic scenes with an expression and its box each.

Run from the repository root: ``python docs/figures/synth_scenes.py``. The scenes are those of
the default settings, seed 0 (no dataset is written).
"""

from __future__ import annotations

import io
import textwrap
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from groundbench.synthetic import Settings, make_scene  # noqa: E402

PANELS = [("test", 0), ("test", 1), ("relational", 2), ("relational", 5), ("distractors", 0),
          ("occlusion", 1), ("compositional", 0), ("paraphrase", 0), ("small", 3), ("off_centre", 0)]  # fmt: skip


def main() -> None:
    settings = Settings()
    fig, axes = plt.subplots(2, 5, figsize=(12.5, 6.2))
    for ax, (split, index) in zip(axes.flat, PANELS, strict=True):
        png, records = make_scene(settings, 0, split, index)
        rec = records[-1] if split == "paraphrase" else records[0]
        ax.imshow(
            np.asarray(Image.open(io.BytesIO(png))), interpolation="nearest", extent=(0, 64, 64, 0)
        )
        x0, y0, x1, y1 = rec["boxes"][0]
        ax.add_patch(
            plt.Rectangle((x0, y0), x1 - x0, y1 - y0, fill=False, edgecolor="lime", linewidth=2)
        )
        ax.set_title(f"[{split}]\n" + "\n".join(textwrap.wrap(rec["text"], 28)), fontsize=8.5)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.tight_layout()
    out = Path(__file__).with_suffix(".png")
    fig.savefig(out, dpi=90, metadata={"Software": None})
    print(out)


if __name__ == "__main__":
    main()
