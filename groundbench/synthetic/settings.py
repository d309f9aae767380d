"""Generator settings: one frozen dataclass, validated and canonicalised before any pixel.

Every field can change the generated files, so :meth:`Settings.to_dict` is written into
``dataset.yaml`` and hashed into the dataset fingerprint. Sizes are fractions of the shorter
image side so a setting keeps its meaning at another image size.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from groundbench.errors import GroundbenchError, did_you_mean

#: Shape names the renderer can draw.
SHAPES: tuple[str, ...] = (
    "circle",
    "square",
    "triangle",
    "star",
    "diamond",
    "cross",
    "ring",
    "heart",
)

#: Colour names and their sRGB values (0–255), chosen far apart in hue and lightness.
COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (220, 30, 30),
    "green": (30, 170, 50),
    "blue": (40, 80, 235),
    "yellow": (240, 225, 40),
    "purple": (150, 50, 200),
    "orange": (250, 135, 20),
    "cyan": (40, 215, 225),
    "white": (250, 250, 250),
}

#: Probe splits, in the order they are generated after train, val and test.
PROBE_SPLITS: tuple[str, ...] = (
    "compositional",
    "relational",
    "distractors",
    "paraphrase",
    "occlusion",
    "off_centre",
    "small",
)
SPLITS: tuple[str, ...] = ("train", "val", "test", *PROBE_SPLITS)

# colour–shape pairs that never occur in train, val or test: a Latin-square diagonal, so
# every colour and every shape is still seen in training with other partners
_DEFAULT_HELDOUT = tuple(f"{c} {s}" for c, s in zip(COLOURS, SHAPES, strict=True))


class SynthesisError(GroundbenchError):
    """Generator settings are unknown or impossible, or the output root cannot be written."""


@dataclass(frozen=True)
class Settings:
    """Everything that shapes a synthetic dataset except the seed.

    Attributes:
        height: image height in pixels.
        width: image width in pixels.
        min_objects: fewest objects per scene.
        max_objects: most objects per scene.
        shapes: shape names used (subset of :data:`SHAPES`).
        colours: colour names used (subset of :data:`COLOURS`).
        small_size: ``(low, high)`` object side as a fraction of ``min(height, width)``
            for the ``small`` size word.
        large_size: the same for ``large``; must not overlap ``small_size``.
        noise_std: standard deviation of the per-pixel Gaussian noise, in 0–255 units.
        clutter: number of faint background blobs per scene.
        occlusion_rate: probability that a scene allows objects to overlap.
        min_visible: smallest visible fraction of any object's pixels (occluded ones too).
        heldout_pairs: ``"colour shape"`` pairs that appear only in the ``compositional``
            split (never in train, val or test).
        captions_per_scene: training captions written per ``train`` scene.
        expressions_per_scene: referring expressions per evaluation scene (the paraphrase
            split writes one source expression and ``expressions_per_scene - 1`` paraphrases).
        scenes: number of scenes per split.
    """

    height: int = 64
    width: int = 64
    min_objects: int = 2
    max_objects: int = 8
    shapes: tuple[str, ...] = SHAPES
    colours: tuple[str, ...] = tuple(COLOURS)
    small_size: tuple[float, float] = (0.12, 0.17)
    large_size: tuple[float, float] = (0.23, 0.31)
    noise_std: float = 6.0
    clutter: int = 6
    occlusion_rate: float = 0.25
    min_visible: float = 0.5
    heldout_pairs: tuple[str, ...] = _DEFAULT_HELDOUT
    captions_per_scene: int = 3
    expressions_per_scene: int = 3
    scenes: Mapping[str, int] = field(
        default_factory=lambda: (
            {"train": 8000, "val": 215, "test": 215} | {name: 100 for name in PROBE_SPLITS}
        )
    )

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any] | None) -> Settings:
        """Build settings from a plain mapping, filling defaults and checking every key.

        Args:
            values: any subset of the fields; ``scenes`` may name a subset of the splits.

        Raises:
            SynthesisError: an unknown key (with the closest valid one), a wrong type, or
                settings that cannot produce a dataset.

        Example:
            >>> Settings.from_mapping({"height": 48, "scenes": {"train": 10}}).scenes["train"]
            10
        """
        values = dict(values or {})
        names = [f.name for f in fields(cls)]
        for key in values:
            if key not in names:
                hint = did_you_mean(key, names)
                raise SynthesisError(
                    f"unknown synthetic setting {key!r}{hint} (valid: {', '.join(names)})"
                )
        scenes = dict(cls().scenes)
        given = values.pop("scenes", None) or {}
        if not isinstance(given, Mapping):
            raise SynthesisError(f"setting 'scenes' must map split names to counts, got {given!r}")
        for split, count in given.items():
            if split not in SPLITS:
                raise SynthesisError(
                    f"setting scenes.{split}: unknown split (valid: {', '.join(SPLITS)})"
                )
            scenes[split] = count
        kwargs: dict[str, Any] = {}
        for f in fields(cls):
            if f.name in values:
                kwargs[f.name] = _coerce(f.name, values[f.name], getattr(cls(), f.name))
        settings = cls(**kwargs, scenes={s: _coerce(f"scenes.{s}", scenes[s], 0) for s in SPLITS})
        settings.check()
        return settings

    def check(self) -> None:
        """Raise :class:`SynthesisError` if these settings cannot produce a dataset."""
        if self.height < 16 or self.width < 16:
            raise SynthesisError(f"image size {self.height}×{self.width} px is below 16×16 px")
        if not 2 <= self.min_objects <= self.max_objects:
            raise SynthesisError(
                f"need 2 <= min_objects <= max_objects, got {self.min_objects} and "
                f"{self.max_objects} (relations need two objects)"
            )
        for name, allowed, given in (
            ("shapes", SHAPES, self.shapes),
            ("colours", COLOURS, self.colours),
        ):
            bad = [v for v in given if v not in allowed]
            if bad or len(set(given)) != len(given) or len(given) < 2:
                raise SynthesisError(
                    f"setting {name}={list(given)}: need at least two distinct names from "
                    f"{list(allowed)} (unknown: {bad})"
                )
        lo_s, hi_s = self.small_size
        lo_l, hi_l = self.large_size
        if not 0 < lo_s <= hi_s < lo_l <= hi_l <= 0.5:
            raise SynthesisError(
                f"sizes must satisfy 0 < small_size low <= high < large_size low <= high <= 0.5, "
                f"got small_size={list(self.small_size)} large_size={list(self.large_size)}"
            )
        if self.size_range_px("small")[0] < 4:
            raise SynthesisError(
                f"small objects would be under 4 px at {self.height}×{self.width}; "
                "raise small_size or the image size"
            )
        # the worst case, every object large: they must at least fit side by side on a grid
        # with 1 px gaps (random placement then stops early when a scene is crowded)
        side = self.size_range_px("large")[1] + 1
        fit = ((self.height + 1) // side) * ((self.width + 1) // side)
        if self.max_objects > fit:
            raise SynthesisError(
                f"max_objects={self.max_objects} large objects ({side - 1} px) do not fit in "
                f"{self.height}×{self.width} px; at most {fit} fit: lower max_objects or "
                "large_size, or raise the image size"
            )
        for pair in self.heldout_pairs:
            parts = pair.split(" ")
            if len(parts) != 2 or parts[0] not in self.colours or parts[1] not in self.shapes:
                raise SynthesisError(
                    f"heldout pair {pair!r} must be 'colour shape' with a used colour and shape"
                )
        if len(self.heldout_pairs) >= len(self.colours) * len(self.shapes) // 2:
            raise SynthesisError("hold out fewer than half of the colour–shape pairs")
        if not 0 <= self.occlusion_rate <= 1 or not 0.2 <= self.min_visible <= 1:
            raise SynthesisError("need 0 <= occlusion_rate <= 1 and 0.2 <= min_visible <= 1")
        if self.noise_std < 0 or self.clutter < 0:
            raise SynthesisError("noise_std and clutter must be >= 0")
        if self.captions_per_scene < 1 or self.expressions_per_scene < 2:
            raise SynthesisError("need captions_per_scene >= 1 and expressions_per_scene >= 2")
        bad = {s: n for s, n in self.scenes.items() if n < 0}
        if bad:
            raise SynthesisError(f"scene counts must be >= 0, got {bad}")

    def size_range_px(self, size: str) -> tuple[int, int]:
        """Return the inclusive ``(low, high)`` object side in pixels for ``small``/``large``."""
        lo, hi = self.small_size if size == "small" else self.large_size
        side = min(self.height, self.width)
        return max(1, math.floor(lo * side)), max(1, math.floor(hi * side))

    def to_dict(self) -> dict[str, Any]:
        """Return the settings as plain JSON/YAML types (lists for tuples), every key present."""
        out = asdict(self)
        for key, value in out.items():
            if isinstance(value, tuple):
                out[key] = list(value)
        out["scenes"] = {s: int(self.scenes[s]) for s in SPLITS}
        return out


def _coerce(key: str, value: Any, default: Any) -> Any:
    """Coerce ``value`` to the type of ``default`` or raise naming ``key``."""
    try:
        if isinstance(default, bool):
            raise TypeError
        if isinstance(default, int):
            if isinstance(value, bool) or float(value) != int(value):
                raise TypeError
            return int(value)
        if isinstance(default, float):
            if isinstance(value, bool):
                raise TypeError
            return float(value)
        if isinstance(default, tuple):
            if isinstance(value, str) or not hasattr(value, "__iter__"):
                raise TypeError
            items = tuple(value)
            if default and isinstance(default[0], float):
                return tuple(float(v) for v in items)
            return tuple(str(v) for v in items)
    except (TypeError, ValueError) as exc:
        raise SynthesisError(
            f"setting {key}={value!r} has the wrong type; expected {type(default).__name__} "
            f"like {default!r}"
        ) from exc
    return value
