"""Where a training step's inputs come from: decoded images, streamed files or cached tokens.

Every source follows one image order (:func:`step_images`), so step ``s`` sees the same
images whichever source feeds it and whatever the restart:

* ``memory`` (the default): every image decoded once into one uint8 tensor, indexed per step;
* ``stream`` (``train.loader: stream``): each step's images read and resized (Pillow,
  bilinear, the whole image to ``image_size × image_size``: the same pixels as ``memory``)
  by ``train.workers`` DataLoader workers, for sets that do not fit in memory;
* cached tokens (a frozen pretrained backbone with ``train.cache_tokens``): each image's
  backbone tokens, computed once (:mod:`groundbench.model.token_cache`).

No geometric augmentation is applied: a flip would contradict ``left``/``right`` in the
captions unless they were swapped too, and a crop can cut the named object out of the image.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from groundbench.model.config import Config
from groundbench.model.data import TrainingData, image_to_uint8
from groundbench.types import load_image


def step_images(
    step: int, n_images: int, per_step: int, rank: int, world: int, seed: int
) -> torch.Tensor:
    """Return the image indices ``(per_step,)`` of ``step`` for ``rank``.

    Each epoch is a permutation seeded by ``(seed, epoch)``; an epoch holds
    ``n_images // (per_step * world)`` steps, and the ranks take disjoint slices.

    Example:
        >>> step_images(0, 10, 2, 0, 1, 0).tolist() != step_images(1, 10, 2, 0, 1, 0).tolist()
        True
    """
    per_epoch = n_images // (per_step * world)
    epoch, within = divmod(step, per_epoch)
    perm = torch.randperm(n_images, generator=torch.Generator().manual_seed(seed * 100_003 + epoch))
    start = (within * world + rank) * per_step
    return perm[start : start + per_step]


class ImageFiles(Dataset):
    """Image files read on demand: item ``i`` is ``(i, (3, size, size) uint8)``."""

    def __init__(self, paths: Sequence[str], size: int) -> None:
        self.paths, self.size = list(paths), size

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> tuple[int, torch.Tensor]:
        return i, image_to_uint8(load_image(self.paths[i]), self.size)


class _StepSampler(Sampler):
    """The image indices of steps ``start .. stop`` (one list per step) for one rank."""

    def __init__(self, n_images: int, cfg: Config, start: int, rank: int, world: int) -> None:
        self.n, self.cfg, self.start, self.rank, self.world = n_images, cfg, start, rank, world

    def __len__(self) -> int:
        return max(0, self.cfg.train.steps - self.start)

    def __iter__(self) -> Iterator[list[int]]:
        t = self.cfg.train
        for step in range(self.start, t.steps):
            yield step_images(step, self.n, t.images_per_step, self.rank, self.world, t.seed)


def image_loader(
    paths: Sequence[str], size: int, batch_sampler: Sampler | Sequence, *, workers: int, pin: bool
) -> DataLoader:
    """A DataLoader of :class:`ImageFiles` batches ``(index (B,), images (B, 3, S, S) uint8)``."""
    return DataLoader(
        ImageFiles(paths, size),
        batch_sampler=batch_sampler,
        num_workers=workers,
        pin_memory=pin,
        prefetch_factor=4 if workers > 0 else None,
    )


def step_batches(
    data: TrainingData,
    cfg: Config,
    *,
    start: int,
    rank: int,
    world: int,
    device: torch.device,
    cache=None,
) -> Iterator[dict[str, torch.Tensor]]:
    """Yield the batch of each step ``start .. train.steps``: ``images`` (float in ``[0, 1]``)
    or, from a :class:`~groundbench.model.token_cache.TokenCache`, ``features`` (fp16
    backbone tokens), with the step's pairs (:meth:`TrainingData.pairs`), on ``device``."""
    t = cfg.train
    n = len(data)
    if cache is not None or data.images is not None:
        for step in range(start, t.steps):
            index = step_images(step, n, t.images_per_step, rank, world, t.seed).to(device)
            if cache is not None:
                yield {"features": cache.batch(index), **data.pairs(index)}
            else:
                yield data.batch(index)
        return
    loader = image_loader(
        data.image_paths,
        cfg.model.image_size,
        _StepSampler(n, cfg, start, rank, world),
        workers=t.workers,
        pin=device.type == "cuda",
    )
    for index, images in loader:
        index = index.to(device)
        pixels = images.to(device, non_blocking=True).float().div_(255.0)
        yield {"images": pixels, **data.pairs(index)}
