from __future__ import annotations

import math

import pytest
import torch

from groundbench.model import load_config, losses


def test_masked_word_loss_is_cross_entropy_on_selected_positions():
    logits = torch.log(torch.tensor([[[0.5, 0.5], [0.9, 0.1]]]))
    targets = torch.tensor([[0, 1]])
    select = torch.tensor([[False, True]])
    assert math.isclose(
        float(losses.masked_word_loss(logits, targets, select)), -math.log(0.1), rel_tol=1e-6
    )
    none = losses.masked_word_loss(
        logits.requires_grad_(), targets, torch.zeros(1, 2, dtype=torch.bool)
    )
    assert float(none.detach()) == 0.0 and none.requires_grad


def test_patch_loss_zero_for_perfect_prediction_and_only_on_hidden_patches():
    images = torch.rand(2, 3, 8, 8)
    from groundbench.model.vision import normalise_patches, patchify

    target = normalise_patches(patchify(images, 4))
    hidden = torch.tensor([[True, False, False, False], [False, False, False, True]])
    pred = target.clone()
    pred[~hidden] += 5.0  # visible patches do not count
    assert float(losses.masked_patch_loss(pred, images, hidden, 4)) < 1e-10
    pred[hidden] += 1.0
    assert math.isclose(float(losses.masked_patch_loss(pred, images, hidden, 4)), 1.0, rel_tol=1e-5)


def test_entropy_is_zero_for_one_hot_and_one_for_uniform():
    one_hot = torch.tensor([[[0.0, 1.0, 0.0, 0.0]]])
    select = torch.tensor([[True]])
    assert float(losses.attention_entropy(one_hot, select)) < 1e-6
    assert math.isclose(
        float(losses.attention_entropy(torch.full((1, 1, 4), 0.25), select)), 1.0, rel_tol=1e-6
    )


def test_head_consistency():
    same = torch.tensor([0.5, 0.5, 0.0]).expand(1, 1, 2, 1, 3)  # B L H T N
    assert float(losses.head_consistency(same, torch.tensor([[True]]))) == 0.0
    apart = torch.stack([torch.tensor([1.0, 0, 0]), torch.tensor([0, 1.0, 0])]).view(1, 1, 2, 1, 3)
    assert math.isclose(float(losses.head_consistency(apart, torch.tensor([[True]]))), 0.5)


def test_mask_consistency_is_zero_only_for_equal_maps():
    a = torch.tensor([[[0.7, 0.3]]])
    b = torch.tensor([[[0.3, 0.7]]])
    select = torch.tensor([[True]])
    assert float(losses.mask_consistency(a, a, select)) < 1e-7
    assert math.isclose(
        float(losses.mask_consistency(a, b, select)), 0.4 * math.log(7 / 3), rel_tol=1e-5
    )


def test_distractor_overlap_only_across_phrases():
    maps = torch.tensor([[[0.6, 0.4], [0.6, 0.4], [0.0, 1.0]]])
    select = torch.tensor([[True, True, True]])
    groups = torch.tensor([[0, 0, 1]])
    # pairs (0,2), (1,2) and their mirrors overlap by 0.4 each; (0,1) is one phrase
    assert math.isclose(float(losses.distractor_overlap(maps, select, groups)), 0.4, rel_tol=1e-6)
    assert (
        float(losses.distractor_overlap(maps, select, torch.zeros(1, 3, dtype=torch.long))) == 0.0
    )


def test_image_contrast_rewards_own_image_evidence_only():
    targets = torch.tensor([[1, 2]])
    select = torch.tensor([[True, False]])
    own = torch.zeros(1, 2, 3)
    other = torch.zeros(1, 2, 3)
    # equal evidence on both images: log 2, whatever the level
    assert float(losses.image_contrast(own + 5.0, other + 5.0, targets, select)) == pytest.approx(
        math.log(2.0)
    )
    own[0, 0, 1] = 20.0  # the target word only on its own image
    assert float(losses.image_contrast(own, other, targets, select)) < 1e-8
    other[0, 1, 2] = 50.0  # unselected positions do not count
    assert float(losses.image_contrast(own, other, targets, select)) < 1e-8
    nothing = torch.zeros(1, 2, dtype=torch.bool)
    assert float(losses.image_contrast(own, other, targets, nothing)) == 0.0


def test_contrast_term_costs_a_second_pass_and_enters_the_total():
    from groundbench.model.network import GroundingModel
    from groundbench.model.objective import LOSS_NAMES, compute_loss

    assert "contrast" in LOSS_NAMES
    assert load_config("tiny").train.loss_contrast == 0.0
    torch.manual_seed(0)
    words = [["a", "red", "square"], ["a", "blue", "square"]]
    batch = {
        "images": torch.rand(2, 3, 32, 32),
        "ids": torch.tensor([[4, 5, 6], [4, 7, 6]]),
        "pad": torch.zeros(2, 3, dtype=torch.bool),
        "words": words,
    }
    totals = {}
    for weight in (0.0, 1.0):
        cfg = load_config("tiny", overrides=[f"train.loss_contrast={weight}"])
        torch.manual_seed(0)
        model = GroundingModel(cfg.model, vocab_size=8)
        total, logged = compute_loss(
            model,
            batch,
            cfg,
            progress=0.0,
            generator=torch.Generator().manual_seed(0),
            device=torch.device("cpu"),
            autocast_dtype=None,
        )
        totals[weight] = (float(total.detach()), logged)
    assert totals[0.0][1]["contrast"] == 0.0
    contrast = totals[1.0][1]["contrast"]
    assert 0.0 < contrast < 5.0
    assert totals[1.0][0] == pytest.approx(totals[0.0][0] + contrast, rel=1e-5)
