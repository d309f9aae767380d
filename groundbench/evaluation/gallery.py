"""The report gallery: which samples it shows, and their maps kept while scoring.

The gallery shows, for the first metric, the ``k`` best and ``k`` worst samples (ties by
id) and ``k`` more drawn by a seeded hash of their id among the other defined samples. The
choice is a function of the final records only, so it does not depend on batch size,
ranks or resume. While scoring, :class:`GalleryKeeper` holds the maps of every sample that
can still be chosen (at most ``5k``), so the method and the pipeline do not run again for
the gallery; only samples scored by an earlier run or another rank are recomputed. Maps
are kept (and drawn) at most :data:`GALLERY_SIDE_PX` on their longer side, by max-pooling,
so the cell that holds a map's peak still shows its highest value and a photo-sized map
costs the keeper no more than a small one.
"""

from __future__ import annotations

import hashlib
import heapq
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from groundbench.errors import GroundbenchError
from groundbench.postprocess import ProcessedMaps
from groundbench.probes import BLIND_TAG
from groundbench.report.figures import GalleryItem, shorten
from groundbench.report.records import Records
from groundbench.types import GroundingSample

GALLERY_K = 3
#: Longest side, in pixels, of a map as the gallery keeps and draws it (a panel is ~270 px).
GALLERY_SIDE_PX = 384


def thumbnail(heatmap: torch.Tensor) -> np.ndarray:
    """A ``(h, w)`` map max-pooled so that its longer side is at most :data:`GALLERY_SIDE_PX`.

    Returns ``(h', w')`` float32 with ``h' = ceil(h / f)``, ``w' = ceil(w / f)`` for the
    smallest integer factor ``f`` that fits; a map that already fits is returned as it is.

    Example:
        >>> thumbnail(torch.zeros(3000, 4000)).shape
        (273, 364)
    """
    h, w = heatmap.shape
    factor = -(-max(h, w) // GALLERY_SIDE_PX)
    heatmap = heatmap.float()
    if factor > 1:
        heatmap = F.max_pool2d(heatmap[None, None], factor, ceil_mode=True)[0, 0]
    return heatmap.cpu().numpy()


def draw_key(seed: int, sample_id: str) -> bytes:
    """The seeded order in which the gallery's random samples are drawn."""
    return hashlib.sha256(f"{seed}\0{sample_id}".encode()).digest()


def gallery_choice(
    records: Records, key: str, higher_is_better: bool, seed: int, k: int = GALLERY_K
) -> list[tuple[int, str]]:
    """Return ``(row, label)`` of the best, worst and random samples by metric ``key``."""
    values, codes = records.column(key)
    sign = -1.0 if higher_is_better else 1.0
    defined = [i for i in range(len(records)) if codes[i] == 0]
    order = sorted(defined, key=lambda i: (values[i] * sign, records.ids[i]))
    best = order[:k]
    worst = [i for i in order[::-1][:k] if i not in best]
    taken = set(best) | set(worst)
    rest = sorted(
        (i for i in defined if i not in taken), key=lambda i: draw_key(seed, records.ids[i])
    )
    return (
        [(i, "best") for i in best]
        + [(i, "worst") for i in worst]
        + [(i, "random") for i in rest[:k]]
    )


class GalleryKeeper:
    """Keeps the maps of the samples the gallery may still pick, batch by batch.

    Args:
        key: the metric display key the gallery ranks by.
        higher_is_better: the metric's direction.
        seed: the seed of the random draw.
        k: panels per kind.
    """

    def __init__(self, key: str, higher_is_better: bool, seed: int, k: int = GALLERY_K) -> None:
        self.key, self.seed, self.k = key, seed, k
        self.higher_is_better = higher_is_better
        self._sign = -1.0 if higher_is_better else 1.0
        # heaps of (priority, tie, id): the root is the first to drop out
        self._best: list = []
        self._worst: list = []
        self._draw: list = []
        self._maps: dict[str, np.ndarray] = {}

    def offer(self, records: Records, maps: ProcessedMaps | None) -> None:
        """Consider the samples of one scored batch."""
        if maps is None:
            return
        values, codes = records.column(self.key)
        row_of = {sid: i for i, sid in enumerate(records.ids)}
        for j, sid in enumerate(maps.ids):
            i = row_of[sid]
            if codes[i]:
                continue
            score = float(values[i]) * self._sign  # smaller = better
            keep = self._push(self._best, (-score, _Desc(sid)), sid, self.k)
            keep |= self._push(self._worst, (score, sid), sid, self.k)
            keep |= self._push(self._draw, (_Desc(draw_key(self.seed, sid)),), sid, 3 * self.k)
            if keep:
                h, w = _valid_size(maps.valid[j])
                self._maps[sid] = thumbnail(maps.heatmap[j, :h, :w])
        held = {e[-1] for heap in (self._best, self._worst, self._draw) for e in heap}
        for sid in list(self._maps):
            if sid not in held:
                del self._maps[sid]

    @staticmethod
    def _push(heap: list, priority: tuple, sid: str, size: int) -> bool:
        item = (*priority, sid)
        if len(heap) < size:
            heapq.heappush(heap, item)
            return True
        if item > heap[0]:
            heapq.heapreplace(heap, item)
            return True
        return False

    def get(self, sample_id: str) -> np.ndarray | None:
        """The kept map of ``sample_id`` (:func:`thumbnail` of its map), or None."""
        return self._maps.get(sample_id)


class _Desc:
    """Reverses the order of a comparable value (for max-heaps of ids and hashes)."""

    __slots__ = ("v",)

    def __init__(self, v) -> None:
        self.v = v

    def __lt__(self, other: _Desc) -> bool:
        return self.v > other.v

    def __gt__(self, other: _Desc) -> bool:
        return self.v < other.v

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Desc) and self.v == other.v


def gallery_items(
    scorer,
    samples: Sequence[GroundingSample],
    records: Records,
    chosen: Sequence[tuple[int, str]],
    keeper: GalleryKeeper | None,
) -> list[GalleryItem]:
    """The chosen samples' images with their maps (kept ones reused, others recomputed)."""
    key = records.keys[0]
    values = records.column(key)[0]
    items = []
    for i, label in chosen:
        sample = samples[i]
        try:
            image = sample.load_image()
        except GroundbenchError:
            continue
        heat = keeper.get(sample.id) if keeper is not None else None
        if heat is None:
            h, w = scorer.size_of(sample)
            heat = thumbnail(scorer.maps([sample], [image]).heatmap[0, :h, :w])
        h, w = heat.shape
        if (h, w) != image.shape[:2]:  # PIL: antialiased, in uint8 (a photo stays small)
            from PIL import Image

            image = np.asarray(Image.fromarray(image).resize((w, h), Image.Resampling.BILINEAR))
        boxes = sample.boxes * np.array([w / sample.width, h / sample.height] * 2)
        title = f"{label} {key}={values[i]:.2f}\n{_phrase_line(sample)}"
        items.append(GalleryItem(image=image, heatmap=heat, boxes=boxes, title=title))
    return items


def _valid_size(valid: torch.Tensor) -> tuple[int, int]:
    """(height, width) of the valid top-left block of a padded ``(Y, X)`` mask."""
    return int(valid.any(dim=1).sum()), int(valid.any(dim=0).sum())


def _phrase_line(sample: GroundingSample) -> str:
    """The phrase as the method saw it; under the blind control, said to be swapped in."""
    if BLIND_TAG in sample.tags:
        return f"blind control, phrase swapped in: “{shorten(sample.phrase, 36)}”"
    return f"“{shorten(sample.phrase, 60)}”"
