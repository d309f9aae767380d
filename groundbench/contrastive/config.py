"""The contrastive baseline's settings: one frozen dataclass, ``KEY=VALUE`` overrides."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields, replace

from groundbench.errors import GroundbenchError, did_you_mean


@dataclass(frozen=True)
class ClipTrainConfig:
    """Model size and optimisation of the small CLIP (defaults: about 10 minutes on 2 CPU cores).

    Attributes:
        image_size: input side in pixels (images are resized to it, as the processor does).
        patch_size: ViT patch side in pixels; the attribution grid is ``image_size / patch_size``.
        width: hidden size of both towers (and the projection).
        layers: transformer blocks per tower.
        heads: attention heads per block.
        max_text_tokens: tokenizer limit, [BOS] and [EOS] included.
        steps: optimiser steps.
        batch_size: images per step, one caption each (in-batch negatives).
        lr: peak AdamW learning rate (linear warm-up, cosine to 0).
        warmup_steps: warm-up length in steps.
        weight_decay: AdamW weight decay on matrices (not on norms, biases, embeddings).
        seed: initialisation, image order and caption choice.
    """

    image_size: int = 64
    patch_size: int = 8
    width: int = 96
    layers: int = 4
    heads: int = 4
    max_text_tokens: int = 32
    steps: int = 500
    batch_size: int = 128
    lr: float = 1e-3
    warmup_steps: int = 20
    weight_decay: float = 0.1
    seed: int = 0

    def to_dict(self) -> dict:
        """Return the settings as a plain dict (stored beside the weights)."""
        return asdict(self)

    def with_overrides(self, overrides: Sequence[str]) -> ClipTrainConfig:
        """Apply ``KEY=VALUE`` strings (``steps=50``), typed like the field they set.

        Raises:
            GroundbenchError: a malformed override, an unknown key or a value of the wrong type.

        Example:
            >>> ClipTrainConfig().with_overrides(["steps=5", "lr=3e-4"]).steps
            5
        """
        types = {f.name: f.type for f in fields(self)}
        changes = {}
        for item in overrides:
            key, sep, value = item.partition("=")
            if not sep:
                raise GroundbenchError(f"--set {item!r}: write it as KEY=VALUE, e.g. steps=50")
            if key not in types:
                raise GroundbenchError(
                    f"--set {item!r}: no setting {key!r}{did_you_mean(key, types)}; "
                    f"valid: {', '.join(types)}"
                )
            cast = float if types[key] == "float" else int
            try:
                changes[key] = cast(value)
            except ValueError:
                raise GroundbenchError(
                    f"--set {item!r}: {key} takes a {types[key]}, got {value!r}"
                ) from None
        out = replace(self, **changes)
        out.check()
        return out

    def check(self) -> None:
        """Refuse settings the model cannot be built with.

        Raises:
            GroundbenchError: a non-positive size, a patch that does not tile the image, or a
                width the heads do not divide.
        """
        for name in ("image_size", "patch_size", "width", "layers", "heads", "steps", "batch_size"):
            if getattr(self, name) < 1:
                raise GroundbenchError(
                    f"contrastive setting {name} must be ≥ 1, got {getattr(self, name)}"
                )
        if self.image_size % self.patch_size:
            raise GroundbenchError(
                f"contrastive setting patch_size={self.patch_size} does not tile "
                f"image_size={self.image_size}; pick a divisor"
            )
        if self.width % self.heads:
            raise GroundbenchError(
                f"contrastive setting width={self.width} is not divisible by heads={self.heads}"
            )
        if self.max_text_tokens < 3:
            raise GroundbenchError(
                "contrastive setting max_text_tokens must be ≥ 3 ([BOS], a word, [EOS])"
            )
