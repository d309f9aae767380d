"""Core types and the one pixel-coordinate convention every module shares.

Coordinates
-----------
A box is ``[x0, y0, x1, y1]`` in float **continuous pixel coordinates** (``xyxy``): x grows
to the right, y grows downwards, the image spans ``[0, width] × [0, height]``, and the
pixel at (row ``i``, column ``j``) covers the half-open square ``[j, j+1) × [i, i+1)``, so
its centre is ``(j + 0.5, i + 0.5)``. A pixel is **inside** a box when its centre lies in
the *closed* box: ``x0 <= j + 0.5 <= x1`` and ``y0 <= i + 0.5 <= y1``. A COCO box
``[x, y, w, h]`` is ``[x, y, x + w, y + h]`` here (:func:`xywh_to_xyxy`). Rasterising a
phrase's boxes (:func:`rasterise_boxes`) gives the union of the pixels inside any of them.

Heatmaps are float tensors indexed ``[..., row, column]`` (``[..., y, x]``); batches are
padded to the largest size in the batch and carry a ``valid`` mask for the real pixels.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal

import numpy as np
import torch

from groundbench.bounds import MAX_IMAGE_PIXELS
from groundbench.errors import DataFormatError

Supervision = Literal["box-free", "detector", "box-supervised", "training-free"]
SUPERVISION_CLASSES: tuple[str, ...] = ("box-free", "detector", "box-supervised", "training-free")
#: The class of maps nobody declared (a heatmap file without a card): never ranked as box-free.
UNDECLARED = "undeclared"


# --------------------------------------------------------------------------- boxes


def xywh_to_xyxy(bbox_xywh: np.ndarray | Sequence[float]) -> np.ndarray:
    """Convert COCO-style ``[x, y, w, h]`` boxes (pixels, top-left + size) to ``xyxy``.

    Args:
        bbox_xywh: ``(4,)`` or ``(k, 4)`` boxes.

    Returns:
        float64 array of the same shape, ``[x, y, x + w, y + h]``.

    Example:
        >>> xywh_to_xyxy([10, 20, 30, 40]).tolist()
        [10.0, 20.0, 40.0, 60.0]
    """
    b = np.asarray(bbox_xywh, dtype=np.float64)
    out = b.copy()
    out[..., 2] = b[..., 0] + b[..., 2]
    out[..., 3] = b[..., 1] + b[..., 3]
    return out


def xyxy_to_xywh(boxes_xyxy: np.ndarray | Sequence[float]) -> np.ndarray:
    """Convert ``xyxy`` boxes back to ``[x, y, w, h]`` (inverse of :func:`xywh_to_xyxy`).

    Example:
        >>> xyxy_to_xywh([10, 20, 40, 60]).tolist()
        [10.0, 20.0, 30.0, 40.0]
    """
    b = np.asarray(boxes_xyxy, dtype=np.float64)
    out = b.copy()
    out[..., 2] = b[..., 2] - b[..., 0]
    out[..., 3] = b[..., 3] - b[..., 1]
    return out


def box_area(boxes_xyxy: np.ndarray | Sequence[float]) -> np.ndarray:
    """Return the continuous area ``(x1 - x0) * (y1 - y0)`` of ``xyxy`` boxes, in px²."""
    b = np.asarray(boxes_xyxy, dtype=np.float64)
    return np.clip(b[..., 2] - b[..., 0], 0, None) * np.clip(b[..., 3] - b[..., 1], 0, None)


def rasterise_boxes(
    boxes: torch.Tensor, box_count: torch.Tensor, height: int, width: int
) -> torch.Tensor:
    """Rasterise padded ``xyxy`` boxes into union masks by the pixel-centre rule.

    Args:
        boxes: ``(B, K, 4)`` float boxes in continuous pixels; rows ``>= box_count`` are padding.
        box_count: ``(B,)`` integer number of real boxes per sample.
        height: mask height in pixels (rows).
        width: mask width in pixels (columns).

    Returns:
        ``(B, height, width)`` bool: True where a pixel centre lies in any real closed box.

    Example:
        >>> m = rasterise_boxes(torch.tensor([[[1.0, 0.0, 3.0, 1.0]]]), torch.tensor([1]), 2, 4)
        >>> m[0].int().tolist()
        [[0, 1, 1, 0], [0, 0, 0, 0]]
    """
    boxes = boxes.to(torch.float64)
    device = boxes.device
    B, K = boxes.shape[:2]
    cx = torch.arange(width, device=device, dtype=torch.float64) + 0.5
    cy = torch.arange(height, device=device, dtype=torch.float64) + 0.5
    real = torch.arange(K, device=device)[None, :] < box_count.to(device)[:, None]  # B K
    in_x = (cx[None, None, :] >= boxes[..., 0:1]) & (cx[None, None, :] <= boxes[..., 2:3])  # B K X
    in_y = (cy[None, None, :] >= boxes[..., 1:2]) & (cy[None, None, :] <= boxes[..., 3:4])  # B K Y
    in_x = in_x & real[..., None]
    # union over boxes without a (B, K, Y, X) intermediate when K is small
    mask = torch.zeros(B, height, width, dtype=torch.bool, device=device)
    for k in range(K):
        mask |= in_y[:, k, :, None] & in_x[:, k, None, :]
    return mask


def pad_boxes(per_sample: Sequence[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
    """Stack ragged ``(k_i, 4)`` box arrays into ``(B, K, 4)`` float64 + ``(B,)`` counts."""
    counts = [len(b) for b in per_sample]
    K = max(counts, default=0) or 1
    out = torch.zeros(len(per_sample), K, 4, dtype=torch.float64)
    for i, b in enumerate(per_sample):
        if len(b):
            out[i, : len(b)] = torch.tensor(np.asarray(b, dtype=np.float64))
    return out, torch.tensor(counts, dtype=torch.long)


# --------------------------------------------------------------------------- samples


def _check_boxes(boxes: Any, where: str, allow_empty: bool) -> np.ndarray:
    b = np.asarray(boxes, dtype=np.float64)
    if b.size == 0:
        b = b.reshape(0, 4)
    if b.ndim != 2 or b.shape[1] != 4:
        raise DataFormatError(f"{where}: boxes must have shape (k, 4) xyxy, got {b.shape}")
    if not allow_empty and len(b) == 0:
        raise DataFormatError(f"{where}: a grounding sample needs at least one box, got none")
    if not np.isfinite(b).all():
        raise DataFormatError(f"{where}: boxes contain NaN or Inf: {b.tolist()}")
    if (b[:, 2] < b[:, 0]).any() or (b[:, 3] < b[:, 1]).any():
        raise DataFormatError(
            f"{where}: boxes must be xyxy with x1 >= x0 and y1 >= y0, got {b.tolist()} "
            "(convert [x, y, w, h] boxes with groundbench.types.xywh_to_xyxy)"
        )
    b.setflags(write=False)
    return b


def load_image(path: str) -> np.ndarray:
    """Read an image file as ``(height, width, 3)`` uint8 RGB.

    Raises:
        DataFormatError: the file is missing or cannot be decoded (names the file).
    """
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            return np.asarray(im.convert("RGB"))
    except FileNotFoundError as exc:
        raise DataFormatError(f"image {path} does not exist; check the dataset root") from exc
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise DataFormatError(f"image {path} cannot be decoded ({exc}); re-extract it") from exc


@dataclass(frozen=True, eq=False)
class GroundingSample:
    """One phrase to ground in one image. Holds no pixels, so it pickles cheaply.

    Attributes:
        id: stable, path-like id, e.g. ``refcoco/unc/val/r123/s456``.
        image_path: absolute path of the image file (read lazily by :meth:`load_image`).
        width: image width in pixels.
        height: image height in pixels.
        text: the full caption or referring expression.
        phrase: the words to ground; ``text[span[0]:span[1]] == phrase``.
        span: ``(start, end)`` character offsets of ``phrase`` in ``text`` (end exclusive).
        boxes: ``(k, 4)`` float64 ``xyxy`` boxes, ``k >= 1``; several boxes = one phrase with
            several referents. Boxes may reach outside the image; metrics rasterise them.
        mask: optional COCO RLE ``{"size": [height, width], "counts": str}`` of the referent.
        tags: probe and category tags (``relational``, ``small``, ``category=dog``, ...).
        meta: anything else the adapter knows (read-only).
    """

    id: str
    image_path: str
    width: int
    height: int
    text: str
    phrase: str
    span: tuple[int, int]
    boxes: np.ndarray
    mask: Mapping[str, Any] | None = None
    tags: frozenset[str] = frozenset()
    meta: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        where = f"sample {self.id!r}"
        if not isinstance(self.id, str) or not self.id:
            raise DataFormatError(f"{where}: id must be a non-empty string")
        if int(self.width) <= 0 or int(self.height) <= 0:
            raise DataFormatError(
                f"{where}: width and height must be positive pixels, got {self.width}×{self.height}"
            )
        if int(self.width) * int(self.height) > MAX_IMAGE_PIXELS:
            raise DataFormatError(
                f"{where}: an image of {self.width}×{self.height} pixels is over the limit of "
                f"{MAX_IMAGE_PIXELS:,} pixels (docs/formats.md, Limits); check the record's size"
            )
        if self.mask is not None and (
            not isinstance(self.mask, Mapping)
            or list(self.mask.get("size", ())) != [int(self.height), int(self.width)]
        ):
            shown = self.mask.get("size") if isinstance(self.mask, Mapping) else self.mask
            raise DataFormatError(
                f"{where}: mask size {shown!r} is not the image's [height, width] = "
                f"[{self.height}, {self.width}]; a COCO RLE is sized like its image"
            )
        start, end = (int(v) for v in self.span)
        if self.text[start:end] != self.phrase:
            raise DataFormatError(
                f"{where}: span {self.span} selects {self.text[start:end]!r} of the text, "
                f"not the phrase {self.phrase!r}"
            )
        object.__setattr__(self, "width", int(self.width))
        object.__setattr__(self, "height", int(self.height))
        object.__setattr__(self, "span", (start, end))
        object.__setattr__(self, "boxes", _check_boxes(self.boxes, where, allow_empty=False))
        object.__setattr__(self, "tags", frozenset(self.tags))
        object.__setattr__(self, "meta", MappingProxyType(dict(self.meta)))

    def load_image(self) -> np.ndarray:
        """Read the image as ``(height, width, 3)`` uint8 RGB."""
        return load_image(self.image_path)

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["meta"] = dict(self.meta)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        state["meta"] = MappingProxyType(state["meta"])
        self.__dict__.update(state)


@dataclass(frozen=True)
class CaptionRecord:
    """One image–caption pair for training. It has no box field: training never sees boxes.

    Attributes:
        id: stable, path-like id.
        image_path: absolute path of the image file.
        width: image width in pixels.
        height: image height in pixels.
        text: the caption.
        tags: tags the adapter knows (never derived from boxes).
    """

    id: str
    image_path: str
    width: int
    height: int
    text: str
    tags: frozenset[str] = frozenset()

    def load_image(self) -> np.ndarray:
        """Read the image as ``(height, width, 3)`` uint8 RGB."""
        return load_image(self.image_path)


# --------------------------------------------------------------------------- maps


@dataclass(frozen=True)
class RawMaps:
    """What a method returns for a batch of samples, before post-processing.

    ``kind == "heatmap"``: each map is ``(h, w)`` or ``(P, h, w)`` (P passes), any resolution.
    ``kind == "attention"``: each map is ``(L, H, h, w)`` or ``(P, L, H, h, w)`` cross-attention
    (layers × heads over an ``h × w`` visual grid). Resolutions may differ between samples.

    Attributes:
        ids: sample ids, aligned with ``maps``.
        maps: one float tensor per sample.
        kind: ``"heatmap"`` or ``"attention"``.
        head_weights: optional ``(L, H)`` weights (e.g. a learned gate) the ``aggregate`` step
            may use; only for ``kind == "attention"``.
        extents: optional, one per sample: None (the map covers the whole image) or the
            rectangle ``[x0, y0, x1, y1]`` of the image, in image pixels (continuous
            coordinates, like a box), that the map covers: a centre crop lies inside the
            image, a letterboxed square reaches beyond it. Pixels outside it get the map's
            lowest value (docs/postprocess.md, upsample).
        notes: optional, one tag set per sample that the method adds to the sample's tags,
            saying why its map may not follow the phrase (the reference model's
            ``text:no-referent``); the report counts and scores them like any tag.
    """

    ids: tuple[str, ...]
    maps: tuple[torch.Tensor, ...]
    kind: Literal["heatmap", "attention"] = "heatmap"
    head_weights: torch.Tensor | None = None
    extents: tuple[tuple[float, float, float, float] | None, ...] | None = None
    notes: tuple[frozenset[str], ...] | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "ids", tuple(self.ids))
        object.__setattr__(self, "maps", tuple(self.maps))
        if self.kind not in ("heatmap", "attention"):
            raise DataFormatError(
                f"RawMaps.kind must be 'heatmap' or 'attention', got {self.kind!r}"
            )
        if len(self.ids) != len(self.maps):
            raise DataFormatError(
                f"RawMaps has {len(self.ids)} ids but {len(self.maps)} maps; they must align"
            )
        ndims = (2, 3) if self.kind == "heatmap" else (4, 5)
        for sid, m in zip(self.ids, self.maps, strict=True):
            if not isinstance(m, torch.Tensor):
                raise DataFormatError(f"sample {sid!r}: map must be a torch.Tensor, got {type(m)}")
            if m.ndim not in ndims:
                want = (
                    "(h, w) or (P, h, w)"
                    if self.kind == "heatmap"
                    else "(L, H, h, w) or (P, L, H, h, w)"
                )
                raise DataFormatError(
                    f"sample {sid!r}: {self.kind} map must be {want}, got shape {tuple(m.shape)}"
                )
            if not (m.is_floating_point()):
                raise DataFormatError(f"sample {sid!r}: map must be floating point, got {m.dtype}")
        if self.extents is not None:
            object.__setattr__(self, "extents", check_extents(self.ids, self.extents))
        if self.notes is not None:
            notes = tuple(frozenset(n) for n in self.notes)
            if len(notes) != len(self.ids):
                raise DataFormatError(
                    f"RawMaps has {len(self.ids)} ids but {len(notes)} note sets; give one per "
                    "sample (an empty set where there is nothing to say)"
                )
            object.__setattr__(self, "notes", notes)


def check_extents(ids: tuple[str, ...], extents) -> tuple[tuple[float, ...] | None, ...]:
    """Check one extent (None or ``[x0, y0, x1, y1]``, x1 > x0, y1 > y0) per id; float tuples.

    Raises:
        DataFormatError: a count other than the ids', or a bad rectangle (names the sample).
    """
    extents = tuple(extents)
    if len(extents) != len(ids):
        raise DataFormatError(
            f"RawMaps has {len(ids)} ids but {len(extents)} extents; give one per sample "
            "(None for a map of the whole image)"
        )
    out = []
    for sid, e in zip(ids, extents, strict=True):
        if e is None:
            out.append(None)
            continue
        try:
            v = np.asarray(e, dtype=np.float64).reshape(-1)
        except (TypeError, ValueError):
            v = np.full(1, np.nan)
        if v.shape != (4,) or not np.isfinite(v).all() or v[2] <= v[0] or v[3] <= v[1]:
            shown = v.tolist() if v.shape == (4,) else e
            raise DataFormatError(
                f"sample {sid!r}: extent must be [x0, y0, x1, y1] image pixels with x1 > x0 "
                f"and y1 > y0, got {shown!r}"
            )
        out.append(tuple(float(x) for x in v))
    return tuple(out)


@dataclass(frozen=True)
class HeatmapBatch:
    """What metrics see: image-resolution heatmaps with their ground truth, padded.

    Y, X are the padded height and width (the largest in the batch).

    Attributes:
        ids: ``B`` sample ids.
        heatmap: ``(B, Y, X)`` float32 heatmaps.
        valid: ``(B, Y, X)`` bool, True on real pixels, False on padding.
        region: ``(B, Y, X)`` bool ground-truth region (boxes rasterised by the pixel-centre
            rule, or the mask when the protocol says ``region: mask``); False on padding.
        boxes: ``(B, K, 4)`` float64 ``xyxy`` boxes, padded.
        box_count: ``(B,)`` long, real boxes per sample.
        pred_mask: ``(B, Y, X)`` bool thresholded heatmap, or None if no threshold step ran.
        pred_box: ``(B, 4)`` float64 predicted ``xyxy`` box (NaN row = no prediction), or None.
        proposals: ``(B, M, 4)`` float64 ``xyxy`` candidate boxes at the evaluation size,
            padded, or None when the protocol ranks no proposals.
        proposal_count: ``(B,)`` long, real proposals per sample, or None.
    """

    ids: tuple[str, ...]
    heatmap: torch.Tensor
    valid: torch.Tensor
    region: torch.Tensor
    boxes: torch.Tensor
    box_count: torch.Tensor
    pred_mask: torch.Tensor | None = None
    pred_box: torch.Tensor | None = None
    proposals: torch.Tensor | None = None
    proposal_count: torch.Tensor | None = None


class Undefined(enum.IntEnum):
    """Why a metric value is undefined (NaN). 0 means it is defined."""

    DEFINED = 0
    EMPTY_REGION = 1  # the ground-truth region has no pixel
    FULL_REGION = 2  # the region covers every valid pixel: nothing to separate it from
    NAN_INPUT = 3  # the heatmap holds NaN or Inf
    CONSTANT_MAP = 4  # the heatmap is constant where a correlation needs variance
    NO_BOX = 5  # a box metric got a sample with no box
    MISSING_IMAGE = 6  # the image could not be read, so the method produced no map
    NO_PROPOSAL = 7  # region ranking: the sample's image has no candidate box
    NO_POSITIVE_SCORE = 8  # region ranking: no candidate box scores above 0
    NO_CORRECT_PROPOSAL = 9  # the rank of the correct box: no candidate reaches the IoU
    IMAGE_SIZE_MISMATCH = 10  # the image's real size is not its record's, so it was not scored

    @property
    def label(self) -> str:
        """Lowercase name used in reports (``empty_region``)."""
        return self.name.lower()


@dataclass(frozen=True)
class MetricOutput:
    """Per-sample values of one metric on one batch.

    Attributes:
        values: ``(B,)`` float64, NaN where undefined.
        undefined: ``(B,)`` int8 :class:`Undefined` codes (0 = defined).
        extras: other per-sample ``(B,)`` outputs, e.g. ``{"tie_count": ...}`` for pointing.
    """

    values: torch.Tensor
    undefined: torch.Tensor
    extras: Mapping[str, torch.Tensor] = field(default_factory=dict)
