"""Boxes and masks written to disk agree with the rendered pixels."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from pycocotools import mask as mask_utils

from groundbench.synthetic import PROBE_SPLITS, Settings, generate
from groundbench.synthetic.render import paint, png_bytes, stencil
from groundbench.synthetic.scene import sample_scene
from groundbench.synthetic.settings import COLOURS, SHAPES
from groundbench.synthetic.writer import scene_rng
from groundbench.types import load_image


@pytest.fixture(scope="module")
def tiny_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny dataset (seed 3) written once for this module."""
    scenes = {"train": 30, "val": 10, "test": 10} | {s: 8 for s in PROBE_SPLITS}
    return generate(
        tmp_path_factory.mktemp("synth") / "tiny", {"scenes": scenes}, seed=3, progress=False
    )


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("side", [5, 8, 13, 19])
def test_every_stencil_fills_its_square_tightly(shape: str, side: int) -> None:
    m = stencil(shape, side)
    assert m.shape == (side, side)
    assert m[0].any() and m[-1].any() and m[:, 0].any() and m[:, -1].any()


def _records(root: Path, split: str) -> list[dict]:
    return [json.loads(line) for line in (root / f"{split}.jsonl").read_text().splitlines()]


@pytest.mark.parametrize("split", ["test", "occlusion", "small", "off_centre"])
def test_box_is_the_tight_box_of_the_mask(tiny_root: Path, split: str) -> None:
    for rec in _records(tiny_root, split):
        m = mask_utils.decode(
            {"size": rec["mask"]["size"], "counts": rec["mask"]["counts"].encode()}
        )
        assert m.shape == (rec["height"], rec["width"])
        rows, cols = np.nonzero(m)
        assert rec["boxes"] == [[cols.min(), rows.min(), cols.max() + 1.0, rows.max() + 1.0]], rec[
            "id"
        ]


def test_masks_match_the_rendered_pixels_without_noise() -> None:
    """With noise and clutter off, a pixel has the target's colour iff it is in its mask."""
    settings = Settings.from_mapping({"noise_std": 0, "clutter": 0})
    for i in range(40):
        rng = scene_rng(0, "occlusion", i)
        scene = sample_scene(rng, settings, "occlusion")
        objs = scene.objects
        img = paint(
            scene.label,
            objs,
            rng,
            noise_std=0,
            clutter=0,
        )
        factors = np.array([1.0, 0.72, 0.75, 0.7])  # the texture brightness factors
        for k, o in enumerate(objs):
            visible = scene.label == k
            expected = (
                np.asarray(COLOURS[o.colour], dtype=np.float64)[None, None, :]
                * factors[:, None, None]
            )
            err = np.abs(
                img[visible].astype(np.float64)[:, None, :] - expected[:, 0, :][None]
            )  # m F 3
            assert (err.max(-1).min(-1) <= 1).all(), (i, k)
            assert visible.sum() == o.visible
            x0, y0, x1, y1 = (int(v) for v in o.box)
            rows, cols = np.nonzero(visible)
            assert (x0, y0, x1, y1) == (cols.min(), rows.min(), cols.max() + 1, rows.max() + 1)
        background = img[scene.label < 0].astype(np.int64)
        assert (np.ptp(background, axis=-1) <= 12).all()  # grey up to the small tint
        assert objs[0].visible_fraction < 0.9  # the occlusion split hides part of its focus
        assert all(o.visible_fraction >= settings.min_visible for o in objs)


def test_written_png_is_the_painted_image(tiny_root: Path) -> None:
    rec = _records(tiny_root, "val")[0]
    img = load_image(str(tiny_root / rec["image"]))
    assert img.shape == (64, 64, 3) and img.dtype == np.uint8
    import io

    from PIL import Image

    pixels = np.random.default_rng(0).integers(0, 256, (5, 7, 3), dtype=np.uint8)
    assert (np.asarray(Image.open(io.BytesIO(png_bytes(pixels)))) == pixels).all()
