"""Each dataset's box convention, converted to groundbench's ``xyxy`` continuous pixels.

groundbench boxes are ``[x0, y0, x1, y1]`` floats; the pixel in row ``i``, column ``j``
covers ``[j, j+1) × [i, i+1)`` (see :mod:`groundbench.types`). The datasets store:

- COCO / RefCOCO / MDETR ``bbox``: ``[x, y, w, h]`` continuous, top-left corner plus size
  → ``[x, y, x + w, y + h]`` (:func:`groundbench.types.xywh_to_xyxy`).
- Visual Genome ``x, y, width, height``: integer top-left pixel plus size, the same
  geometry as COCO → ``[x, y, x + width, y + height]`` (:func:`vg_region_to_xyxy`).
- Flickr30k Entities ``bndbox``: ``xmin, ymin, xmax, ymax`` as **1-based inclusive** pixel
  indices (the box spans columns ``xmin..xmax``) → ``[xmin - 1, ymin - 1, xmax, ymax]``
  (:func:`corners_1based_to_xyxy`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from groundbench.types import xywh_to_xyxy


def corners_1based_to_xyxy(corners_1based: np.ndarray | Sequence[float]) -> np.ndarray:
    """Convert 1-based inclusive pixel corners ``[xmin, ymin, xmax, ymax]`` to ``xyxy``.

    Pixel column ``xmin`` (1-based) is column ``xmin - 1`` (0-based), whose left edge is the
    continuous coordinate ``xmin - 1``; column ``xmax`` (1-based, inclusive) ends at ``xmax``.

    Args:
        corners_1based: ``(4,)`` or ``(k, 4)`` corners.

    Returns:
        float64 array of the same shape, ``[xmin - 1, ymin - 1, xmax, ymax]``.

    Example:
        >>> corners_1based_to_xyxy([1, 1, 10, 20]).tolist()
        [0.0, 0.0, 10.0, 20.0]
    """
    b = np.asarray(corners_1based, dtype=np.float64)
    out = b.copy()
    out[..., 0] = b[..., 0] - 1.0
    out[..., 1] = b[..., 1] - 1.0
    return out


def vg_region_to_xyxy(x: float, y: float, width: float, height: float) -> np.ndarray:
    """Convert a Visual Genome region/object ``x, y, width, height`` to ``xyxy``.

    Example:
        >>> vg_region_to_xyxy(5, 6, 10, 20).tolist()
        [5.0, 6.0, 15.0, 26.0]
    """
    return xywh_to_xyxy([x, y, width, height])


def coco_bbox_to_xyxy(bbox_xywh: Sequence[float]) -> np.ndarray:
    """Convert a COCO ``bbox`` ``[x, y, w, h]`` to ``xyxy`` (RefCOCO and MDETR use it).

    Example:
        >>> coco_bbox_to_xyxy([10.5, 20.0, 30.0, 40.25]).tolist()
        [10.5, 20.0, 40.5, 60.25]
    """
    return xywh_to_xyxy(bbox_xywh)
