"""Candidate boxes for region ranking: detector proposal files, or the split's own boxes.

Two file formats, both JSON, both with ``[x, y, w, h]`` boxes in image pixels (COCO's
convention, converted at once to groundbench's ``xyxy``):

* **MAttNet's detections**: a list of ``{"det_id", "image_id", "box": [x, y, w, h],
  "category_id", "score", ...}`` (``tools/run_detect.py``).
* **ALBEF / ReCLIP's dict**: ``{"<image_id>": [[x, y, w, h, ...], ...], ...}`` (extra numbers
  after the box, such as a score, are ignored).

A sample's proposals are those of its image: ``meta["image_id"]`` when the adapter records
one (RefCOCO), else the image file's stem. Nothing is dropped silently: ids that match no
image of the split, boxes reaching outside their image (clipped to it), boxes that are NaN,
±Inf or empty (``w <= 0`` or ``h <= 0``; dropped) and images with no proposal are counted
and named in :attr:`Proposals.warnings`.

``gt`` proposals are the ground-truth boxes of every sample of the split that shares the
image (deduplicated, in sample-id order): the easier protocol ReCLIP falls back to without a
detector file, named as its own protocol here.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from groundbench.errors import DataFormatError
from groundbench.types import GroundingSample

# ids and boxes named in a warning, at most
_SHOWN = 5


@dataclass(frozen=True)
class Proposals:
    """Candidate boxes per image, with what reading them found.

    Attributes:
        source: the file name, or ``"gt"``.
        sha256: of the file's bytes (None for ``gt``); joins the dataset fingerprint.
        boxes: image key → ``(m, 4)`` float64 ``xyxy`` boxes in image pixels, file order.
        counts: ``unknown_image_ids``, ``outside`` (clipped), ``non_finite``, ``empty_box``
            (dropped), ``images_without_proposals``.
        warnings: one line per non-zero count, naming the first few cases.
    """

    source: str
    sha256: str | None
    boxes: dict[str, np.ndarray]
    counts: dict[str, int] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()

    def of(self, sample: GroundingSample) -> np.ndarray:
        """The ``(m, 4)`` proposals of ``sample``'s image (``m`` may be 0)."""
        return self.boxes.get(image_key(sample), np.zeros((0, 4)))


def image_key(sample: GroundingSample) -> str:
    """The key proposals are filed under: ``meta["image_id"]``, else the image file's stem."""
    image_id = sample.meta.get("image_id") if sample.meta else None
    return str(image_id) if image_id is not None else Path(sample.image_path).stem


def read_proposals(path: str | Path, samples: Sequence[GroundingSample]) -> Proposals:
    """Read a proposal file (either format) for the images of ``samples``.

    Raises:
        DataFormatError: the file is missing, not JSON, or neither format (the message
            names the file and the element).
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DataFormatError(
            f"{path}: cannot read the proposal file ({exc.strerror}); put it under the "
            "dataset root or fix proposals.file in the protocol"
        ) from None
    try:
        raw = json.loads(data)
    except ValueError as exc:
        raise DataFormatError(f"{path}: not a JSON file ({exc})") from None
    per_image = _per_image(raw, path)
    sizes = {image_key(s): (s.width, s.height) for s in samples}
    return _validated(path.name, hashlib.sha256(data).hexdigest(), per_image, sizes)


def gt_proposals(samples: Sequence[GroundingSample]) -> Proposals:
    """The split's own ground-truth boxes, per image, as proposals (``gt``)."""
    per_image: dict[str, list[list[float]]] = {}
    for s in sorted(samples, key=lambda s: s.id):
        boxes = per_image.setdefault(image_key(s), [])
        for b in np.asarray(s.boxes, dtype=np.float64).tolist():
            xywh = [b[0], b[1], b[2] - b[0], b[3] - b[1]]
            if xywh not in boxes:
                boxes.append(xywh)
    sizes = {image_key(s): (s.width, s.height) for s in samples}
    return _validated("gt", None, per_image, sizes)


def _per_image(raw: Any, path: Path) -> dict[str, list[Any]]:
    """Group either format into image key → list of ``[x, y, w, h]`` (unchecked)."""
    out: dict[str, list[Any]] = {}
    if isinstance(raw, dict):
        for key, dets in raw.items():
            if not isinstance(dets, list):
                raise DataFormatError(
                    f"{path}: image {key!r}: expected a list of [x, y, w, h, ...] boxes, got "
                    f"{type(dets).__name__}"
                )
            out[str(key)] = [_box(d, path, f"image {key!r} box {j}") for j, d in enumerate(dets)]
        return out
    if isinstance(raw, list):
        for i, det in enumerate(raw):
            if not isinstance(det, dict) or "image_id" not in det or "box" not in det:
                raise DataFormatError(
                    f"{path}: element {i}: a MAttNet detection needs 'image_id' and 'box' "
                    f"([x, y, w, h]), got {det!r:.80}"
                )
            out.setdefault(str(det["image_id"]), []).append(
                _box(det["box"], path, f"element {i} box")
            )
        return out
    raise DataFormatError(
        f"{path}: expected a list of MAttNet detections or a dict image_id -> boxes, got "
        f"{type(raw).__name__}"
    )


def _box(value: Any, path: Path, where: str) -> list[float]:
    if (
        not isinstance(value, list)
        or len(value) < 4
        or not all(isinstance(v, int | float) and not isinstance(v, bool) for v in value[:4])
    ):
        raise DataFormatError(f"{path}: {where}: expected [x, y, w, h, ...] numbers, got {value!r}")
    return [float(v) for v in value[:4]]


def _validated(
    source: str,
    sha256: str | None,
    per_image: dict[str, list[list[float]]],
    sizes: dict[str, tuple[int, int]],
) -> Proposals:
    """Convert to ``xyxy``, clip to the image, and count everything left out or changed."""
    found: dict[str, list[str]] = {
        "unknown_image_ids": [],
        "non_finite": [],
        "empty_box": [],
        "outside": [],
        "images_without_proposals": [],
    }
    boxes: dict[str, np.ndarray] = {}
    for key, dets in per_image.items():
        if key not in sizes:
            found["unknown_image_ids"].append(key)
            continue
        width, height = sizes[key]
        kept = []
        for j, (x, y, w, h) in enumerate(dets):
            name = f"{key}#{j}"
            if not all(math.isfinite(v) for v in (x, y, w, h)):
                found["non_finite"].append(name)
                continue
            x0, y0, x1, y1 = max(x, 0.0), max(y, 0.0), min(x + w, width), min(y + h, height)
            if w <= 0 or h <= 0 or x1 <= x0 or y1 <= y0:
                found["empty_box"].append(name)  # empty, or empty once inside the image
                continue
            if (x0, y0, x1, y1) != (x, y, x + w, y + h):
                found["outside"].append(name)
            kept.append((x0, y0, x1, y1))
        boxes[key] = np.array(kept, dtype=np.float64).reshape(-1, 4)
    found["images_without_proposals"] = sorted(k for k in sizes if not len(boxes.get(k, ())))
    notes = {
        "unknown_image_ids": "image ids match no image of the split (ignored)",
        "non_finite": "boxes hold NaN or Inf (dropped)",
        "empty_box": "boxes are empty or lie outside their image (dropped)",
        "outside": "boxes reach outside their image (clipped to it)",
        "images_without_proposals": "images of the split have no proposal (their samples "
        "score undefined: no_proposal)",
    }
    warnings = tuple(
        f"proposals {source}: {len(v)} {notes[k]}, e.g. {', '.join(v[:_SHOWN])}"
        for k, v in found.items()
        if v
    )
    return Proposals(source, sha256, boxes, {k: len(v) for k, v in found.items()}, warnings)
