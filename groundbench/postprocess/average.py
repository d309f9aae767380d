"""Multi-pass average: reduce the pass axis ``P`` of raw maps.

A method that reads attention over several masked passes returns ``(P, ...)`` maps per
sample; this step combines the passes into one map before any other step runs.
"""

from __future__ import annotations

from typing import Literal

import torch

from groundbench.postprocess import PIPELINE_STEPS

PASS_MODES: tuple[str, ...] = ("mean", "max")


@PIPELINE_STEPS.register(
    "average", config_key="average", input="(B, P, ...) float", output="(B, ...) float32"
)
def average_passes(maps: torch.Tensor, *, passes: Literal["mean", "max"] = "mean") -> torch.Tensor:
    """Combine the passes of a batch of multi-pass maps.

    Args:
        maps: ``(B, P, ...)`` float maps; dimension 1 holds the ``P`` passes.
        passes: ``"mean"`` (arithmetic mean) or ``"max"`` (pixel-wise maximum).

    Returns:
        ``(B, ...)`` float32 maps. A NaN in any pass stays NaN in the result.

    Example:
        >>> average_passes(torch.tensor([[[0.0, 2.0], [2.0, 0.0]]]), passes="max").tolist()
        [[2.0, 2.0]]
    """
    maps = maps.to(torch.float32)
    if passes == "mean":
        return maps.mean(dim=1)
    if passes == "max":
        # amax propagates NaN, unlike a comparison-based maximum
        return maps.amax(dim=1)
    raise ValueError(f"average_passes: passes must be one of {PASS_MODES}, got {passes!r}")
