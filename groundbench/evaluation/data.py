"""Load a protocol's samples, fingerprint them, and serve batches (with images) to methods."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from dataset_adapters import open_dataset
from groundbench.errors import DataFormatError, GroundbenchError
from groundbench.probes import blind_control, select_samples
from groundbench.protocol import Protocol
from groundbench.types import GroundingSample

log = logging.getLogger(__name__)


def dataset_root(protocol: Protocol, data_root: str | Path | None) -> Path:
    """Return the dataset root: ``data_root``, or the generated default for ``synth``."""
    if data_root is not None:
        return Path(data_root)
    if protocol.dataset.name == "synth":
        from groundbench.synthetic import ensure_default_dataset

        return ensure_default_dataset()
    raise DataFormatError(
        f"protocol {protocol.name} reads the {protocol.dataset.name} dataset: pass its folder "
        "with --data-root (layouts in docs/adapters.md)"
    )


def load_samples(
    protocol: Protocol, data_root: str | Path | None, limit: int | None = None
) -> list[GroundingSample]:
    """Return the protocol's samples: selected, controlled, sorted by id, limited.

    Raises:
        DataFormatError: duplicate ids, or no sample left after selection.
    """
    ds = protocol.dataset
    adapter = open_dataset(ds.adapter, dataset_root(protocol, data_root), **dict(ds.options))
    samples = select_samples(adapter.load_samples(ds.split), protocol.select)
    if protocol.control == "blind":
        samples = blind_control(samples, protocol.bootstrap.seed)
    samples = sorted(samples, key=lambda s: s.id)
    for a, b in zip(samples, samples[1:], strict=False):
        if a.id == b.id:
            raise DataFormatError(f"{ds.adapter} split {ds.split}: sample id {a.id!r} occurs twice")
    if limit is not None:
        samples = samples[:limit]
    if not samples:
        raise DataFormatError(
            f"protocol {protocol.name}: no sample of {ds.name}/{ds.split} is left after selection "
            f"{protocol.canonical['select']}; check the dataset root and the select keys"
        )
    return samples


def dataset_fingerprint(samples: Sequence[GroundingSample]) -> str:
    """sha256 over the samples' ids, phrases and boxes (certifies the data, wherever it lives)."""
    h = hashlib.sha256()
    for s in samples:
        h.update(s.id.encode())
        h.update(b"\0")
        h.update(s.phrase.encode())
        h.update(b"\0")
        h.update(np.ascontiguousarray(s.boxes, dtype="<f8").tobytes())
        h.update(b"\n")
    return h.hexdigest()


class _ImageDataset(torch.utils.data.Dataset):
    """Index → (index, image or None, error message or None); decoding runs in workers."""

    def __init__(self, samples: Sequence[GroundingSample], with_images: bool) -> None:
        self.samples = samples
        self.with_images = with_images

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int) -> tuple[int, np.ndarray | None, str | None]:
        if not self.with_images:
            return i, None, None
        try:
            return i, self.samples[i].load_image(), None
        except GroundbenchError as exc:
            return i, None, str(exc)


def _as_list(batch: list) -> list:
    return batch


def batches(
    samples: Sequence[GroundingSample], *, with_images: bool, batch_size: int, num_workers: int
):
    """Yield ``(samples, images, errors)`` batches in order; a missing image is None + message."""
    loader = torch.utils.data.DataLoader(
        _ImageDataset(samples, with_images),
        batch_size=batch_size,
        shuffle=False,
        num_workers=num_workers,
        collate_fn=_as_list,
    )
    for items in loader:
        yield (
            [samples[i] for i, _, _ in items],
            [img for _, img, _ in items],
            [err for _, _, err in items],
        )
