"""Scene sampling: which objects, where, and what each probe split forces on its scenes.

A scene is a list of :class:`SceneObject` painted in order onto a label map (later objects
occlude earlier ones). Each split has a *recipe*: ``train``/``val``/``test``/``relational``/
``paraphrase`` draw ordinary scenes; the other probe splits force one property on the
scene's first object, the *focus* that their expressions then refer to.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from groundbench.synthetic.render import TEXTURES, stencil
from groundbench.synthetic.settings import Settings, SynthesisError

SIZES: tuple[str, ...] = ("small", "large")
_PLACE_TRIES = 60
_SCENE_TRIES = 50


@dataclass
class SceneObject:
    """One object of a scene.

    Attributes:
        shape, colour, size, texture: its attributes (``size`` is ``small`` or ``large``).
        side: side of its square stencil, in pixels.
        top, left: row and column of the stencil's top-left pixel.
        pixels: stencil pixel count (before occlusion).
        visible: pixels still visible after later objects are painted.
        box: ``[x0, y0, x1, y1]`` tight box of the visible pixels (project convention).
    """

    shape: str
    colour: str
    size: str
    texture: str
    side: int
    top: int = 0
    left: int = 0
    pixels: int = 0
    visible: int = 0
    box: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.0)

    @property
    def visible_fraction(self) -> float:
        """Visible share of the object's stencil pixels, in ``[0, 1]``."""
        return self.visible / self.pixels

    @property
    def centre(self) -> tuple[float, float]:
        """``(x, y)`` centre of the visible box, continuous pixels."""
        x0, y0, x1, y1 = self.box
        return (x0 + x1) / 2, (y0 + y1) / 2


@dataclass
class Scene:
    """Objects plus the ``(height, width)`` int16 label map they were painted into."""

    objects: list[SceneObject]
    label: np.ndarray


def allowed_pairs(settings: Settings, split: str) -> list[tuple[str, str]]:
    """Return the ``(colour, shape)`` pairs ordinary objects of ``split`` may have."""
    held = set(settings.heldout_pairs)
    return [(c, s) for c in settings.colours for s in settings.shapes if f"{c} {s}" not in held]


def sample_scene(rng: np.random.Generator, settings: Settings, split: str) -> Scene:
    """Draw one scene for ``split`` with the split's forced property on object 0.

    Raises:
        SynthesisError: no valid layout was found in many tries (settings too tight).
    """
    for _ in range(_SCENE_TRIES):
        scene = _try_scene(rng, settings, split)
        if scene is not None:
            return scene
    raise SynthesisError(
        f"could not lay out a {split!r} scene in {_SCENE_TRIES} tries at "
        f"{settings.height}×{settings.width} px; lower max_objects or object sizes"
    )


def _new_object(
    rng: np.random.Generator, settings: Settings, pairs, size: str | None = None
) -> SceneObject:
    colour, shape = pairs[rng.integers(len(pairs))]
    size = size or SIZES[rng.integers(2)]
    lo, hi = settings.size_range_px(size)
    return SceneObject(
        shape=shape,
        colour=colour,
        size=size,
        texture=TEXTURES[rng.integers(len(TEXTURES))],
        side=int(rng.integers(lo, hi + 1)),
    )


def _plan(rng: np.random.Generator, settings: Settings, split: str) -> list[SceneObject]:
    """Choose the objects (attributes only) of one scene, the split's focus first."""
    pairs = allowed_pairs(settings, split)
    n = int(rng.integers(settings.min_objects, settings.max_objects + 1))
    objs: list[SceneObject] = []
    if split == "compositional":
        held = [tuple(p.split(" ")) for p in settings.heldout_pairs]
        objs.append(_new_object(rng, settings, held))
    elif split == "distractors":
        # the focus plus one object differing from it in each attribute alone: only the
        # full "size colour shape" description identifies it
        t = _new_object(rng, settings, pairs)
        objs.append(t)
        other_size = "small" if t.size == "large" else "large"
        same_shape = [p for p in pairs if p[1] == t.shape and p[0] != t.colour]
        same_colour = [p for p in pairs if p[0] == t.colour and p[1] != t.shape]
        objs.append(_new_object(rng, settings, [(t.colour, t.shape)], other_size))
        if same_shape:
            objs.append(_new_object(rng, settings, same_shape, t.size))
        if same_colour:
            objs.append(_new_object(rng, settings, same_colour, t.size))
        n = max(n, len(objs))
    elif split == "small":
        lo, _ = settings.size_range_px("small")
        t = _new_object(rng, settings, pairs, "small")
        t.side = lo
        objs.append(t)
        n = max(n, min(settings.max_objects, 5))
    elif split == "relational":
        n = max(n, min(settings.max_objects, 3))
        if rng.random() < 0.5:
            # two objects of one shape make "between the two <shape>s" possible
            first = _new_object(rng, settings, pairs)
            same = [p for p in pairs if p[1] == first.shape and p[0] != first.colour]
            objs += [first, _new_object(rng, settings, same)]
    while len(objs) < n:
        objs.append(_new_object(rng, settings, pairs))
    return objs


def _try_scene(rng: np.random.Generator, settings: Settings, split: str) -> Scene | None:
    height, width = settings.height, settings.width
    objs = _plan(rng, settings, split)
    overlap = split == "occlusion" or rng.random() < settings.occlusion_rate
    label = np.full((height, width), -1, dtype=np.int16)
    placed: list[SceneObject] = []
    for k, obj in enumerate(objs):
        ok = False
        z = rng.standard_normal((_PLACE_TRIES, 2))  # centre-biased draws, one row per try
        for tr in range(_PLACE_TRIES):
            top, left = _position(rng, z[tr], settings, split, k, obj, placed)
            if _fits(label, placed, obj, top, left, overlap, settings.min_visible):
                ok = True
                break
        if not ok:
            if k < max(settings.min_objects, _forced_count(split)):
                return None
            break
        obj.top, obj.left = top, left
        m = stencil(obj.shape, obj.side)
        win = label[top : top + obj.side, left : left + obj.side]
        lost = np.bincount(win[m & (win >= 0)], minlength=len(placed))
        for p, n_lost in zip(placed, lost, strict=False):
            p.visible -= int(n_lost)
        win[m] = len(placed)
        obj.pixels = obj.visible = int(m.sum())
        placed.append(obj)
    if split == "occlusion" and placed[0].visible_fraction > 0.9:
        return None
    for k, obj in enumerate(placed):
        rows, cols = np.nonzero(
            label[obj.top : obj.top + obj.side, obj.left : obj.left + obj.side] == k
        )
        obj.box = (
            float(obj.left + cols.min()),
            float(obj.top + rows.min()),
            float(obj.left + cols.max() + 1),
            float(obj.top + rows.max() + 1),
        )
    return Scene(placed, label)


def _forced_count(split: str) -> int:
    return {"distractors": 4, "small": 1, "occlusion": 2}.get(split, 1)


def _position(
    rng, z, settings: Settings, split: str, k: int, obj: SceneObject, placed
) -> tuple[int, int]:
    """Top-left ``(row, col)`` for ``obj``: centre-biased, except for forced probe layouts."""
    max_top, max_left = settings.height - obj.side, settings.width - obj.side
    if k == 0 and split == "off_centre":
        # a corner band: the object's box stays clear of the image centre
        band_r, band_c = max(1, max_top // 4), max(1, max_left // 4)
        top = int(rng.integers(0, band_r + 1))
        left = int(rng.integers(0, band_c + 1))
        if rng.random() < 0.5:
            top = max_top - top
        if rng.random() < 0.5:
            left = max_left - left
        return top, left
    if k == 1 and split == "occlusion":
        # overlap the focus by a fraction of a side so it is partly hidden
        f = placed[0]
        dy, dx = rng.integers(-obj.side + 2, f.side - 1, size=2)
        return min(max(int(f.top + dy), 0), max_top), min(max(int(f.left + dx), 0), max_left)
    # a centre bias like photographs' (the off_centre probe tests it)
    top = max_top / 2 + 0.33 * max_top * z[0]
    left = max_left / 2 + 0.33 * max_left * z[1]
    return min(max(round(top), 0), max_top), min(max(round(left), 0), max_left)


def _fits(
    label, placed, obj: SceneObject, top: int, left: int, overlap: bool, min_visible: float
) -> bool:
    """Whether ``obj`` at ``(top, left)`` keeps every object visible enough."""
    if not overlap:
        # boxes 1 px apart at least: objects never touch
        for p in placed:
            if (
                left < p.left + p.side + 1
                and p.left < left + obj.side + 1
                and top < p.top + p.side + 1
                and p.top < top + obj.side + 1
            ):
                return False
        return True
    m = stencil(obj.shape, obj.side)
    win = label[top : top + obj.side, left : left + obj.side]
    hit = win[m & (win >= 0)]
    if hit.size == 0:
        return True
    lost = np.bincount(hit, minlength=len(placed))
    for p, n_lost in zip(placed, lost, strict=False):
        if n_lost and p.visible - n_lost < min_visible * p.pixels:
            return False
    return True
