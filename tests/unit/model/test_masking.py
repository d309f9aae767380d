from __future__ import annotations

import pytest
import torch

from groundbench.model.masking import anneal, mask_patches, mask_words

WEIGHTS = {"content": 1.0, "relation": 0.0, "other": 0.0}


def test_anneal_goes_from_easy_to_hard():
    assert anneal((0.1, 0.3), 0.0, True) == 0.1
    assert anneal((0.1, 0.3), 1.0, True) == 0.3
    assert anneal((0.1, 0.3), 2.0, True) == 0.3
    assert anneal((0.1, 0.3), 0.0, False) == 0.3


def test_words_masked_by_class_never_padding():
    words = [["a", "red", "circle", "left", "of", "a", "blue", "square"], ["a", "ring"]]
    mask = mask_words(
        words,
        8,
        rate=0.3,
        class_weights=WEIGHTS,
        group_prob=0.0,
        generator=torch.Generator().manual_seed(0),
    )
    assert mask[0].sum() == 2  # round(0.3 * 8)
    assert set(mask[0].nonzero().flatten().tolist()) <= {1, 2, 6, 7}  # content words only
    assert mask[1].tolist() == [False, True] + [False] * 6


def test_group_masking_hides_one_whole_phrase():
    words = [["a", "red", "circle", "left", "of", "a", "blue", "square"]]
    for seed in range(5):
        mask = mask_words(
            words,
            8,
            rate=0.1,
            class_weights=WEIGHTS,
            group_prob=1.0,
            generator=torch.Generator().manual_seed(seed),
        )
        assert mask[0].nonzero().flatten().tolist() in ([1, 2], [6, 7])


def test_masks_are_deterministic_per_seed():
    words = [["a", "big", "red", "circle", "near", "green", "ring"]] * 4

    def draw(s):
        return mask_words(
            words,
            7,
            rate=0.3,
            class_weights={"content": 1, "relation": 1, "other": 1},
            group_prob=0.5,
            generator=torch.Generator().manual_seed(s),
        )

    assert torch.equal(draw(1), draw(1))
    assert not all(torch.equal(draw(1), draw(s)) for s in range(2, 6))


@pytest.mark.parametrize("rate,count", [(0.0, 0), (0.25, 4), (1.0, 16)])
def test_patch_mask_count(rate, count):
    mask = mask_patches(3, 16, rate=rate, generator=torch.Generator().manual_seed(0))
    assert mask.shape == (3, 16)
    assert mask.sum(1).tolist() == [count] * 3
