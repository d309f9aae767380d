"""Cascading model-parameter randomisation (Adebayo et al. 2018), with Quantus' MPRT semantics.

For each tower separately, starting from the trained weights: reset its layers one by one
from the output side down (``top_down``, cascading: earlier resets stay), each reset preceded
by ``torch.manual_seed(seed + 1)`` and done by ``reset_parameters()`` on every sub-module of
the layer that has one; after each reset, explain again and compare every map with the
original one by the Spearman rank correlation of ``|map| / max |map|``. The tower's weights
are restored before the next tower. A method whose maps stay correlated with the original
after the whole tower is reset does not explain that tower.

``explain()`` is any callable that returns the maps of a fixed set of samples: nothing here
knows the model family. Caveats, as in Quantus: ``LayerNorm.reset_parameters`` sets weights to
1 and biases to 0 (deterministic, not random), and parameters owned directly by a layer
(e.g. a class embedding) have no ``reset_parameters`` and are left as trained; both are
listed per layer in the result.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from scipy.stats import rankdata

from groundbench.errors import MethodError

Explain = Callable[[], Sequence[torch.Tensor]]
DETERMINISTIC_RESETS = (torch.nn.LayerNorm, torch.nn.GroupNorm, torch.nn.BatchNorm2d)


def spearman_abs_max(a: torch.Tensor, b: torch.Tensor) -> float:
    """Spearman correlation of ``|a| / max|a|`` and ``|b| / max|b|`` over all elements.

    Mid-ranks for ties; NaN when either map is constant after that (nothing to rank).

    Example:
        >>> spearman_abs_max(torch.tensor([1.0, -2.0, 3.0]), torch.tensor([0.1, 0.2, 0.3]))
        1.0
    """
    x = _abs_max(a)
    y = _abs_max(b)
    if x.shape != y.shape:
        raise MethodError(
            f"randomisation: maps of shapes {tuple(a.shape)} and {tuple(b.shape)} differ"
        )
    rx, ry = rankdata(x), rankdata(y)
    if np.ptp(rx) == 0 or np.ptp(ry) == 0:
        return float("nan")
    return float(np.corrcoef(rx, ry)[0, 1])


def _abs_max(m: torch.Tensor) -> np.ndarray:
    x = np.abs(m.detach().to("cpu", torch.float64).numpy().ravel())
    top = x.max() if x.size else 0.0
    return x / top if top > 0 else x


@dataclass(frozen=True)
class LayerStep:
    """One cascading step: the layer just reset and the correlations after it.

    Attributes:
        tower: ``vision``, ``text``, ``fusion``, … (the key of the layers mapping).
        depth: 1 for the output-side layer, increasing downwards.
        layer: the layer's class name.
        reset: class names of the sub-modules reset (``reset_parameters``).
        deterministic: those whose reset is not random (norms reset to 1 / 0).
        kept: names of the layer's own parameters that nothing resets.
        spearman: ``(n,)`` float64 per-sample correlation with the original map (NaN =
            a constant map).
    """

    tower: str
    depth: int
    layer: str
    reset: tuple[str, ...]
    deterministic: tuple[str, ...]
    kept: tuple[str, ...]
    spearman: np.ndarray


def _reset(layer: torch.nn.Module, seed: int) -> tuple[list[str], list[str], list[str]]:
    reset, fixed = [], []
    torch.manual_seed(seed + 1)
    with torch.no_grad():
        for module in layer.modules():
            if callable(getattr(module, "reset_parameters", None)):
                module.reset_parameters()
                reset.append(type(module).__name__)
                if isinstance(module, DETERMINISTIC_RESETS):
                    fixed.append(type(module).__name__)
    covered = {
        id(p)
        for m in layer.modules()
        if callable(getattr(m, "reset_parameters", None))
        for p in m.parameters(recurse=False)
    }
    kept = [n for n, p in layer.named_parameters() if id(p) not in covered]
    return reset, fixed, kept


def _snapshot(layers: Sequence[torch.nn.Module]) -> list[tuple[torch.Tensor, torch.Tensor]]:
    seen, out = set(), []
    for layer in layers:
        for t in [*layer.parameters(), *layer.buffers()]:
            if id(t) not in seen:
                seen.add(id(t))
                out.append((t, t.detach().clone()))
    return out


def cascading_randomisation(
    explain: Explain,
    towers: Mapping[str, Sequence[torch.nn.Module]],
    *,
    seed: int = 42,
    max_layers: int | None = None,
) -> tuple[list[torch.Tensor], list[LayerStep]]:
    """Run the cascading randomisation of each tower; weights are restored afterwards.

    Args:
        explain: returns the maps of the fixed samples (any shapes, the same each call).
        towers: tower name → its parameterised layers, output side first.
        seed: Quantus' ``seed`` (each reset is preceded by ``torch.manual_seed(seed + 1)``).
        max_layers: reset at most this many layers per tower (None: all of them).

    Returns:
        The original maps and one :class:`LayerStep` per reset, tower by tower.

    Raises:
        MethodError: no tower has a layer, or a map changes shape.
    """
    if not any(towers.values()):
        raise MethodError("randomisation: the method named no layers to randomise")
    original = [m.detach().clone() for m in explain()]
    steps: list[LayerStep] = []
    rng_state = torch.random.get_rng_state()
    try:
        for tower, layers in towers.items():
            layers = list(layers)[:max_layers]
            saved = _snapshot(layers)
            try:
                for depth, layer in enumerate(layers, start=1):
                    reset, fixed, kept = _reset(layer, seed)
                    maps = explain()
                    rho = np.array(
                        [spearman_abs_max(a, b) for a, b in zip(original, maps, strict=True)]
                    )
                    steps.append(
                        LayerStep(
                            tower,
                            depth,
                            type(layer).__name__,
                            tuple(reset),
                            tuple(fixed),
                            tuple(kept),
                            rho,
                        )
                    )
            finally:
                with torch.no_grad():
                    for live, copy in saved:
                        live.copy_(copy)
    finally:
        torch.random.set_rng_state(rng_state)
    return original, steps
