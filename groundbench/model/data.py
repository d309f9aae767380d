"""The training data path: CaptionRecords → image tensors + words. It never sees a box.

:class:`CaptionDataset` accepts only :class:`~groundbench.types.CaptionRecord` (which has no
box field) and refuses anything else, so no grounding annotation can leak into training.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from PIL import Image

from groundbench.errors import DataFormatError
from groundbench.model.text import PAD_ID, Vocabulary, tokenize
from groundbench.types import CaptionRecord


def captions_fingerprint(records: Sequence[CaptionRecord]) -> str:
    """Return the sha256 hex of the records' ids and texts (the checkpoint's data fingerprint)."""
    h = hashlib.sha256()
    for r in records:
        h.update(r.id.encode("utf-8") + b"\x00" + r.text.encode("utf-8") + b"\x00")
    return h.hexdigest()


def image_to_tensor(image: np.ndarray, size: int) -> torch.Tensor:
    """Resize a ``(height, width, 3)`` uint8 RGB image to ``(3, size, size)`` float in [0, 1]."""
    pil = Image.fromarray(image)
    if pil.size != (size, size):
        pil = pil.resize((size, size), Image.BILINEAR)
    return torch.from_numpy(np.asarray(pil, dtype=np.float32) / 255.0).permute(2, 0, 1).contiguous()


class CaptionDataset(torch.utils.data.Dataset):
    """Image–caption pairs for training.

    Args:
        records: CaptionRecords only.
        vocab: the vocabulary that encodes the words.
        image_size: side of the square model input, pixels.
        max_words: captions are truncated to this many words.

    Raises:
        DataFormatError: an element is not a CaptionRecord (e.g. a GroundingSample with boxes).
    """

    def __init__(
        self, records: Sequence[CaptionRecord], vocab: Vocabulary, image_size: int, max_words: int
    ) -> None:
        for r in records:
            if type(r) is not CaptionRecord:
                raise DataFormatError(
                    f"training data must be CaptionRecords (image + caption, no boxes), got "
                    f"{type(r).__name__} for {getattr(r, 'id', '?')!r}; load it with "
                    "adapter.load_captions(split), never load_samples"
                )
        self.records = list(records)
        self.vocab = vocab
        self.image_size = image_size
        self.max_words = max_words

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, index: int) -> dict[str, Any]:
        r = self.records[index]
        words = tokenize(r.text)[0][: self.max_words]
        return {
            "image": image_to_tensor(r.load_image(), self.image_size),
            "words": words,
            "ids": [self.vocab.id(w) for w in words],
        }


def collate(items: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Stack images ``(B, 3, S, S)``, pad ids to ``(B, T)`` with ``pad (B, T)`` bool."""
    T = max(1, max(len(it["ids"]) for it in items))
    ids = torch.full((len(items), T), PAD_ID, dtype=torch.long)
    for b, it in enumerate(items):
        ids[b, : len(it["ids"])] = torch.tensor(it["ids"], dtype=torch.long)
    return {
        "images": torch.stack([it["image"] for it in items]),
        "ids": ids,
        "pad": ids == PAD_ID,
        "words": [it["words"] for it in items],
    }
