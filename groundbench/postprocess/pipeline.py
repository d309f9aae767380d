"""The post-processing pipeline: raw method maps → image-resolution heatmaps and predictions.

Order of the steps (each a pure batched function of its own module, looked up by name in
:data:`~groundbench.postprocess.PIPELINE_STEPS`, where it is registered under its config key):

1. ``average`` — reduce the pass axis ``P`` when the maps have one.
2. ``aggregate`` — attention maps only: select layers/heads and reduce ``(L, H)``.
3. ``normalise`` — per map, on the grid.
4. ``upsample`` — to each sample's ``(height, width)``.
5. ``smooth`` — Gaussian blur at image resolution (before padding, so borders reflect the
   image and not the padding).
6. ``threshold`` — binary mask over the valid pixels.
7. ``regions`` — predicted region and box.

Maps are batched by shape: every group of samples that shares a grid (and then an image
size) goes through each step as one tensor, on the requested device.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from groundbench.errors import DataFormatError
from groundbench.postprocess import PIPELINE_STEPS
from groundbench.postprocess.config import canonical_config
from groundbench.types import RawMaps

#: The steps in the order above, by registered name (each name is also its config key).
STEP_ORDER: tuple[str, ...] = (
    "average",
    "aggregate",
    "normalise",
    "upsample",
    "smooth",
    "threshold",
    "regions",
)


@dataclass(frozen=True)
class ProcessedMaps:
    """The pipeline's output for one batch, padded to its largest image.

    Attributes:
        ids: ``B`` sample ids, in the order of the input.
        heatmap: ``(B, Y, X)`` float32 heatmaps; 0 on padding.
        valid: ``(B, Y, X)`` bool, True on each sample's ``height × width`` top-left block.
        pred_mask: ``(B, Y, X)`` bool predicted region, or None without a threshold.
        pred_box: ``(B, 4)`` float64 ``xyxy`` predicted box (NaN row = nothing kept), or None
            without a regions step.
    """

    ids: tuple[str, ...]
    heatmap: torch.Tensor
    valid: torch.Tensor
    pred_mask: torch.Tensor | None
    pred_box: torch.Tensor | None


class Pipeline:
    """A validated post-processing configuration that turns :class:`RawMaps` into heatmaps.

    Example:
        >>> pipe = Pipeline.from_config({"upsample": {"mode": "nearest"}, "regions": "union_box"})
        >>> raw = RawMaps(ids=("a",), maps=(torch.tensor([[0.0, 1.0], [0.0, 0.0]]),))
        >>> out = pipe.run(raw, [(4, 4)])
        >>> out.pred_box.tolist()
        [[2.0, 0.0, 4.0, 2.0]]
    """

    def __init__(self, config: Mapping[str, Any]) -> None:
        self._config = canonical_config(config)
        self._steps: dict[str, Callable[..., Any]] = {
            name: PIPELINE_STEPS.get(name, asked_by="Pipeline") for name in STEP_ORDER
        }

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any] | None) -> Pipeline:
        """Build a pipeline from the ``pipeline`` section of a protocol (None = defaults).

        Raises:
            ProtocolError: an unknown step or key, or a bad value (see :mod:`.config`).
        """
        return cls({} if cfg is None else cfg)

    @property
    def config(self) -> dict[str, Any]:
        """The full canonical config (every default filled in); a fresh copy each time."""
        return canonical_config(self._config)

    def __repr__(self) -> str:
        return f"Pipeline({self._config!r})"

    def run(
        self,
        raw: RawMaps,
        sizes: Sequence[tuple[int, int]],
        *,
        device: torch.device | str | None = None,
        extents: Sequence[tuple[float, float, float, float] | None] | None = None,
    ) -> ProcessedMaps:
        """Post-process a batch of raw maps.

        Args:
            raw: the method's maps (``heatmap`` or ``attention`` kind, any grid per sample).
            sizes: ``(height, width)`` in pixels per sample: the image or evaluation size.
            device: where to compute; None = the device of the first map.
            extents: per sample, None or the ``[x0, y0, x1, y1]`` rectangle of the output
                (pixels of ``sizes``) that its map covers (:func:`.upsample.upsample_maps`).

        Returns:
            :class:`ProcessedMaps` on ``device``.

        Raises:
            DataFormatError: ``sizes`` does not match the batch.
            MethodError: the maps do not fit the aggregate settings (layer/head out of
                range, ``gate`` without head weights).
        """
        sizes = _check_sizes(raw, sizes)
        extents = (
            [None] * len(sizes)
            if extents is None
            else [None if e is None else tuple(float(v) for v in e) for e in extents]
        )
        if len(extents) != len(sizes):
            raise DataFormatError(
                f"Pipeline.run got {len(extents)} extents for {len(sizes)} maps; pass one "
                "(None or [x0, y0, x1, y1]) per sample"
            )
        if device is None:
            device = raw.maps[0].device if raw.maps else torch.device("cpu")
        device = torch.device(device)
        B = len(raw.ids)
        Y = max((h for h, _ in sizes), default=0)
        X = max((w for _, w in sizes), default=0)
        parts = [
            ([idx[p] for p in pos], self._to_image(grid[pos], size, extent))
            for idx, grid in self._grids(raw, device)
            for (size, extent), pos in _group(
                range(len(idx)), [(sizes[i], extents[i]) for i in idx]
            ).items()
        ]
        if len(parts) == 1 and parts[0][0] == list(range(B)):
            # one grid shape and one image size, in order: no padding, no copy
            heatmap = parts[0][1].contiguous()
            valid = torch.ones(B, Y, X, device=device, dtype=torch.bool)
        else:
            heatmap = torch.zeros(B, Y, X, device=device, dtype=torch.float32)
            valid = torch.zeros(B, Y, X, device=device, dtype=torch.bool)
            for sub, maps in parts:
                heatmap[sub, : maps.shape[1], : maps.shape[2]] = maps
                valid[sub, : maps.shape[1], : maps.shape[2]] = True
        # one image size: every pixel is valid, and the threshold can skip the masking
        pred_mask, pred_box = self._predict(heatmap, valid, all_valid=len(set(sizes)) <= 1)
        return ProcessedMaps(raw.ids, heatmap, valid, pred_mask, pred_box)

    def _predict(
        self, heatmap: torch.Tensor, valid: torch.Tensor, *, all_valid: bool
    ) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        cfg, step = self._config, self._steps
        if isinstance(cfg["regions"], dict):  # a rule on the map itself, no threshold
            rule = cfg["regions"]
            mask = None if all_valid else valid
            return step["regions"](
                None, rule["rule"], heatmap=heatmap, valid=mask, alpha=rule["alpha"]
            )
        if cfg["threshold"] is None:
            return None, None
        if heatmap.shape[0] == 0:
            empty_box = torch.empty(0, 4, device=heatmap.device, dtype=torch.float64)
            return valid, (empty_box if cfg["regions"] is not None else None)
        pred_mask = step["threshold"](
            heatmap, valid=None if all_valid else valid, **cfg["threshold"]
        )
        if cfg["regions"] is None:
            return pred_mask, None
        return step["regions"](pred_mask, cfg["regions"], heatmap=heatmap)

    def _grids(self, raw: RawMaps, device: torch.device):
        """Yield ``(sample indices, (n, h, w) normalised grid maps)`` per raw-map shape."""
        cfg, step = self._config, self._steps
        pass_ndim = 3 if raw.kind == "heatmap" else 5
        for shape, idx in _group(range(len(raw.maps)), [tuple(m.shape) for m in raw.maps]).items():
            maps = torch.stack([raw.maps[i] for i in idx]).to(device=device, dtype=torch.float32)
            if len(shape) == pass_ndim:
                maps = step["average"](maps, **cfg["average"])
            if raw.kind == "attention":
                maps = step["aggregate"](maps, head_weights=raw.head_weights, **cfg["aggregate"])
            yield idx, step["normalise"](maps, cfg["normalise"])

    def _to_image(self, grid: torch.Tensor, size: tuple[int, int], extent=None) -> torch.Tensor:
        cfg, step = self._config, self._steps
        maps = step["upsample"](grid, size, **cfg["upsample"], extent=extent)
        return step["smooth"](maps, cfg["smooth"]["sigma_px"])


def _group(indices: Sequence[int], keys: Sequence[Any]) -> dict[Any, list[int]]:
    groups: dict[Any, list[int]] = defaultdict(list)
    for i, key in zip(indices, keys, strict=True):
        groups[key].append(i)
    return dict(groups)


def _check_sizes(raw: RawMaps, sizes: Sequence[tuple[int, int]]) -> list[tuple[int, int]]:
    if len(sizes) != len(raw.ids):
        raise DataFormatError(
            f"Pipeline.run got {len(sizes)} sizes for {len(raw.ids)} maps; pass one "
            "(height, width) per sample"
        )
    out = []
    for sid, size in zip(raw.ids, sizes, strict=True):
        h, w = (int(v) for v in size)
        if h <= 0 or w <= 0:
            raise DataFormatError(f"sample {sid!r}: output size must be positive, got {size}")
        out.append((h, w))
    return out
