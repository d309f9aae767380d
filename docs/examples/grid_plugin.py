"""An example plugin: a colour matcher on an 8 × 8 grid (docs/plugins.md).

For each sample it averages the image's colour over an 8 × 8 grid of cells and scores each
cell by how close its mean colour is to the colour word in the phrase (one of the synthetic
benchmark's colours); a phrase without a colour word gets a flat map. It is training-free
and loads no weights. Evaluate it with::

    PYTHONPATH=docs/examples groundbench evaluate --protocol synth_test.albef \\
        --method plugin:grid_plugin:colour_grid --out runs/colour_grid
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from groundbench.synthetic.settings import COLOURS
from groundbench.types import RawMaps

GRID = 8  # cells per side of the map; the pipeline upsamples it to the image


def colour_grid(samples, images):
    """Return one ``(GRID, GRID)`` map per sample, higher where the named colour is.

    Args:
        samples: the batch of :class:`~groundbench.types.GroundingSample`.
        images: one ``(height, width, 3)`` uint8 RGB array per sample, the image at its
            stored size (no resize, no normalisation).
    """
    maps = []
    for sample, image in zip(samples, images, strict=True):
        pixels = torch.tensor(image, dtype=torch.float32).permute(2, 0, 1)  # 3 height width
        cells = F.adaptive_avg_pool2d(pixels[None], (GRID, GRID))[0]  # 3 GRID GRID
        words = sample.phrase.lower().split()
        named = [COLOURS[w] for w in words if w in COLOURS]
        if named:
            target = torch.tensor(named[0], dtype=torch.float32)[:, None, None]
            maps.append(-(cells - target).norm(dim=0))  # GRID GRID: minus the colour distance
        else:
            maps.append(torch.zeros(GRID, GRID))
    return RawMaps(ids=tuple(s.id for s in samples), maps=tuple(maps), kind="heatmap")


colour_grid.supervision = "training-free"  # box-free, detector, box-supervised, training-free
colour_grid.depends_on = []  # no weights: its code is everything its maps depend on
