"""Images and texts in the form a checkpoint expects, and the rules recorded for each.

Images are resized to the model's square input **without a crop** (``squash``, as ALBEF's
test transform and CLIP Surgery do), so the map's grid covers the whole image and the
pipeline's upsampling puts it back in the image frame. The processor's ``resample`` filter,
``rescale_factor`` and ``image_mean``/``image_std`` are used as saved; a processor that
would centre-crop is overridden (recorded as ``crop: none``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from groundbench.errors import CheckpointError, MethodError

_RESAMPLE = {0: "nearest", 1: "lanczos", 2: "bilinear", 3: "bicubic", 4: "box", 5: "hamming"}


class ImagePrep:
    """Squash-resize, rescale and normalise images for one checkpoint.

    Args:
        processor: ``preprocessor_config.json`` as a dict.
        size: the model's square input side in pixels.
        where: the file name for errors.
    """

    def __init__(self, processor: dict[str, Any], size: int, where: str) -> None:
        try:
            self.mean = [float(v) for v in processor["image_mean"]]
            self.std = [float(v) for v in processor["image_std"]]
        except (KeyError, TypeError, ValueError):
            raise CheckpointError(
                f"{where}: needs image_mean and image_std (3 numbers each)"
            ) from None
        if len(self.mean) != 3 or len(self.std) != 3 or min(self.std) <= 0:
            raise CheckpointError(f"{where}: image_mean/image_std must be 3 numbers, std > 0")
        resample = processor.get("resample", 3)
        if resample not in _RESAMPLE:
            raise CheckpointError(f"{where}: resample {resample!r} is not a PIL filter code 0-5")
        self.resample = int(resample)
        self.rescale = float(processor.get("rescale_factor", 1 / 255))
        self.size = int(size)
        self._mean = torch.tensor(self.mean).view(3, 1, 1)
        self._std = torch.tensor(self.std).view(3, 1, 1)

    def settings(self) -> dict[str, Any]:
        """The preprocessing rules, readable."""
        return {
            "input_px": [self.size, self.size],
            "resize": f"squash to {self.size}x{self.size}, PIL {_RESAMPLE[self.resample]}",
            "crop": "none",
            "rescale_factor": self.rescale,
            "image_mean": self.mean,
            "image_std": self.std,
        }

    def __call__(self, image: np.ndarray) -> torch.Tensor:
        """``(height, width, 3)`` uint8 RGB → ``(3, size, size)`` float32, normalised."""
        from PIL import Image

        im = Image.fromarray(image).resize((self.size, self.size), resample=self.resample)
        x = torch.from_numpy(np.asarray(im, dtype=np.float32) * self.rescale).permute(2, 0, 1)
        return (x - self._mean) / self._std


def tokenize(tokenizer, texts: list[str], limit: int, *, pad_to: int | None, spec: str):
    """Tokenise ``texts`` (padded to the longest, or to ``pad_to``); refuse any over ``limit``.

    Raises:
        MethodError: a text needs more than ``limit`` tokens (names it).
    """
    lengths = [len(ids) for ids in tokenizer(texts)["input_ids"]]
    for text, n in zip(texts, lengths, strict=True):
        if n > limit:
            raise MethodError(
                f"{spec}: the text {text!r} is {n} tokens, over the model's limit of {limit}; "
                "shorten the prompt or the phrase (texts are never truncated silently)"
            )
    padding = "max_length" if pad_to else True
    return tokenizer(texts, padding=padding, max_length=pad_to, return_tensors="pt")
