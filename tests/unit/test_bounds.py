"""Sizes taken from the files being read: image records, RLE masks."""

import re

import numpy as np
import pytest
from pycocotools import mask as mask_utils

from dataset_adapters.refcoco import segmentation_to_rle
from groundbench.bounds import rle_run_total
from groundbench.errors import DataFormatError
from groundbench.protocol_scorer import decode_mask
from groundbench.types import GroundingSample


def sample(width=7, height=5, mask=None):
    return GroundingSample(
        id="t/0", image_path="none.png", width=width, height=height, text="a cup",
        phrase="cup", span=(2, 5), boxes=np.array([[1.0, 1.0, 3.0, 3.0]]), mask=mask,
    )  # fmt: skip


def rle(m):
    r = mask_utils.encode(np.asfortranarray(m.astype(np.uint8)))
    return {"size": [int(v) for v in r["size"]], "counts": r["counts"].decode()}


@pytest.mark.parametrize("seed", range(20))
def test_rle_run_total_matches_pycocotools(seed):
    rng = np.random.default_rng(seed)
    h, w = rng.integers(1, 300, size=2)
    m = rng.random((h, w)) < rng.random()
    assert rle_run_total(rle(m)["counts"]) == h * w


def test_rle_run_total_rejects_characters_outside_the_alphabet():
    with pytest.raises(ValueError, match="not in the RLE alphabet"):
        rle_run_total("0 1")


def test_record_declaring_a_huge_image_is_refused():
    with pytest.raises(DataFormatError) as err:
        sample(width=100000, height=100000)
    assert str(err.value) == (
        "sample 't/0': an image of 100000×100000 pixels is over the limit of 134,217,728 "
        "pixels (docs/formats.md, Limits); check the record's size"
    )


def test_mask_sized_for_another_image_is_refused():
    big = rle(np.ones((50000, 1), bool))
    with pytest.raises(DataFormatError) as err:
        sample(mask=big)
    assert str(err.value) == (
        "sample 't/0': mask size [50000, 1] is not the image's [height, width] = [5, 7]; "
        "a COCO RLE is sized like its image"
    )


def test_mask_whose_runs_overrun_its_size_is_refused_before_decoding():
    m = np.zeros((5, 7), bool)
    m[1:3, 2:5] = True
    good = rle(m)
    assert decode_mask(sample(mask=good), 5, 7).sum() == 6
    overrun = rle(np.ones((50, 70), bool))  # 3500 pixels of runs under a 5×7 size
    with pytest.raises(DataFormatError) as err:
        decode_mask(sample(mask={"size": [5, 7], "counts": overrun["counts"]}), 5, 7)
    assert str(err.value) == (
        "sample 't/0': its mask's RLE counts cover 3500 pixels, not its size 5×7 = 35; "
        "re-export the mask as a compressed COCO RLE of the image"
    )


def test_refcoco_compressed_segmentation_of_another_size_is_refused():
    seg = rle(np.ones((480, 640), bool))
    with pytest.raises(
        DataFormatError,
        match=re.escape(
            "ann 3: segmentation size [480, 640] is not the image's [height, width] = [240, 320]; "
            "the annotation belongs to another image or resolution"
        ),
    ):
        segmentation_to_rle(seg, 240, 320, "ann 3")
