"""Baseline methods: what a grounding method must beat, and the ceiling it cannot pass.

All baselines return maps at each sample's image resolution (``kind="heatmap"``) and read
no pixels. ``oracle_box`` reads the ground truth: it is a sanity check of the metrics
(every metric should score it at or near its best), never a competitor.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Sequence

import numpy as np
import torch

from groundbench import __version__
from groundbench.errors import MethodError
from groundbench.methods.base import METHODS
from groundbench.types import GroundingSample, RawMaps, pad_boxes, rasterise_boxes


def _fingerprint(*parts: object) -> str:
    return hashlib.sha256(":".join(map(str, (*parts, __version__))).encode()).hexdigest()


def _float_arg(name: str, arg: str | None, default: float) -> float:
    if arg is None or arg == "":
        return default
    try:
        return float(arg)
    except ValueError:
        raise MethodError(
            f"method {name}:{arg}: the argument must be a number, e.g. {name}:{default}"
        ) from None


class Uniform:
    """The same value everywhere: every pixel ties for the maximum."""

    name = "uniform"
    supervision = "training-free"
    needs_images = False

    def fingerprint(self) -> str:
        return _fingerprint(self.name)

    def predict(
        self, samples: Sequence[GroundingSample], images, *, device: torch.device
    ) -> RawMaps:
        maps = tuple(torch.ones(s.height, s.width, device=device) for s in samples)
        return RawMaps(tuple(s.id for s in samples), maps)


class CentrePrior:
    """An isotropic Gaussian centred on the image, ``sigma`` a fraction of each side.

    Args:
        sigma: standard deviation as a fraction of the image width (x) and height (y).
    """

    supervision = "training-free"
    needs_images = False

    def __init__(self, sigma: float = 0.25) -> None:
        if not sigma > 0:
            raise MethodError(
                f"centre_prior:{sigma}: sigma must be a positive fraction of the image side"
            )
        self.sigma = sigma
        self.name = "centre_prior" if sigma == 0.25 else f"centre_prior:{sigma:g}"

    def fingerprint(self) -> str:
        return _fingerprint("centre_prior", self.sigma)

    def predict(
        self, samples: Sequence[GroundingSample], images, *, device: torch.device
    ) -> RawMaps:
        maps = tuple(self._prior(s.height, s.width).to(device) for s in samples)
        return RawMaps(tuple(s.id for s in samples), maps)

    @functools.lru_cache(maxsize=64)  # noqa: B019  (a handful of image sizes per dataset)
    def _prior(self, height: int, width: int) -> torch.Tensor:
        # pixel centres in units of the image side, centred on the image centre
        y = (torch.arange(height, dtype=torch.float64) + 0.5) / height - 0.5
        x = (torch.arange(width, dtype=torch.float64) + 0.5) / width - 0.5
        return torch.exp(-(y[:, None] ** 2 + x[None, :] ** 2) / (2 * self.sigma**2)).float()


class Random:
    """Independent uniform noise per pixel, seeded by the sample id (batch-size invariant).

    Args:
        seed: mixed with each sample id into the per-sample generator seed.
    """

    supervision = "training-free"
    needs_images = False

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed
        self.name = "random" if seed == 0 else f"random:{seed}"

    def fingerprint(self) -> str:
        return _fingerprint("random", self.seed)

    def predict(
        self, samples: Sequence[GroundingSample], images, *, device: torch.device
    ) -> RawMaps:
        maps = []
        for s in samples:
            digest = hashlib.sha256(f"{self.seed}:{s.id}".encode()).digest()
            gen = np.random.default_rng(int.from_bytes(digest[:8], "little"))
            maps.append(
                torch.from_numpy(gen.random((s.height, s.width), dtype=np.float32)).to(device)
            )
        return RawMaps(tuple(s.id for s in samples), tuple(maps))


#: Height of the oracle's ridge above its flat top (a fraction of it): enough to make the
#: deepest region pixel the first maximum, too small to move a threshold or an IoU.
ORACLE_RIDGE = 1e-3


def _oracle_map(region: np.ndarray) -> np.ndarray:
    """The region indicator raised by ``ORACLE_RIDGE`` × the pixel's distance to the region's
    edge (the image border counts as edge), normalised: its maximum lies deepest inside.

    A region covering the whole image stays flat: min-max normalisation would stretch its
    ridge to the full range and a threshold would cut the region.
    """
    from scipy.ndimage import distance_transform_edt

    if region.all():
        return region.astype(np.float32)
    depth = distance_transform_edt(np.pad(region, 1))[1:-1, 1:-1]
    top = depth.max()
    ridge = depth / top if top > 0 else depth
    return (region * (1.0 + ORACLE_RIDGE * ridge)).astype(np.float32)


class OracleBox:
    """The ground-truth region indicator (union of the phrase's boxes): the upper bound.

    Its flat top carries a slight ridge (:func:`_oracle_map`), so that a pointing rule that
    takes the *first* maximum (the lineages' ``argmax``) lands deep inside the region rather
    than on its top-left edge.
    """

    name = "oracle_box"
    supervision = "box-supervised"
    needs_images = False

    def fingerprint(self) -> str:
        return _fingerprint(self.name)

    def predict(
        self, samples: Sequence[GroundingSample], images, *, device: torch.device
    ) -> RawMaps:
        maps = []
        for s in samples:
            boxes, count = pad_boxes([s.boxes])
            region = rasterise_boxes(boxes, count, s.height, s.width)[0].numpy()
            maps.append(torch.from_numpy(_oracle_map(region)).to(device))
        return RawMaps(tuple(s.id for s in samples), tuple(maps))


@METHODS.register("uniform", supervision="training-free", arg=None)
def uniform(arg: str | None) -> Uniform:
    """``uniform``: a constant map."""
    if arg:
        raise MethodError(f"method uniform:{arg}: uniform takes no argument; use 'uniform'")
    return Uniform()


@METHODS.register(
    "centre_prior", supervision="training-free", arg="SIGMA (fraction of the side, default 0.25)"
)
def centre_prior(arg: str | None) -> CentrePrior:
    """``centre_prior[:SIGMA]``: a Gaussian centre prior."""
    return CentrePrior(_float_arg("centre_prior", arg, 0.25))


@METHODS.register("random", supervision="training-free", arg="SEED (default 0)")
def random(arg: str | None) -> Random:
    """``random[:SEED]``: seeded uniform noise."""
    return Random(int(_float_arg("random", arg, 0)))


@METHODS.register("oracle_box", supervision="box-supervised", arg=None)
def oracle_box(arg: str | None) -> OracleBox:
    """``oracle_box``: the ground-truth boxes as a map (a sanity check, not a competitor)."""
    if arg:
        raise MethodError(f"method oracle_box:{arg}: oracle_box takes no argument")
    return OracleBox()
