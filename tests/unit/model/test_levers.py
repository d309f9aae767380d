"""The masking levers of the method: more hidden query words (with an easy-to-hard
schedule), a consistency term across one phrase's pairs, and hidden image patches with a
decoder that reconstructs their tokens (``docs/model.md``, *Ablations*)."""

from __future__ import annotations

import csv
from dataclasses import replace

import pytest
import torch

from groundbench.model import load_config
from groundbench.model.augment import drop_query_words, hide_patches, query_drop_prob
from groundbench.model.config import ConfigError
from groundbench.model.data import build_training_data
from groundbench.model.network import GroundingModel, PairOutput
from groundbench.model.objective import _consistency, compute_loss
from groundbench.model.train import train


def test_query_drop_hides_words_but_never_a_querys_last():
    q = torch.randint(1, 50, (64, 6, 5))
    q[:, :, 3:] = 0  # three words, then padding
    q[0, 0] = torch.tensor([7, 0, 0, 0, 0])  # one word only
    out = drop_query_words(q, 0.5, seed=3, step=11)
    assert torch.equal(out, drop_query_words(q, 0.5, seed=3, step=11))  # seeded
    assert not torch.equal(out, drop_query_words(q, 0.5, seed=3, step=12))
    assert torch.equal(out[..., 2], q[..., 2]) and torch.equal(out[0, 0], q[0, 0])
    assert ((out == 0) | (out == q)).all()  # a word is kept or hidden, never changed
    hidden = ((out == 0) & (q > 0))[..., :2].float().mean()
    assert 0.4 < float(hidden) < 0.6
    assert torch.equal(drop_query_words(q, 0.0, seed=3, step=11), q)


def test_the_linear_schedule_goes_from_easy_to_hard():
    probs = [query_drop_prob(s, 11, 0.6, "linear") for s in range(11)]
    assert probs[0] == 0.0 and probs[-1] == pytest.approx(0.6)
    assert probs == sorted(probs)
    assert query_drop_prob(0, 11, 0.6, "constant") == 0.6


def test_hidden_patches_are_whole_grey_token_cells():
    images = torch.rand(3, 3, 16, 16)
    view, hidden = hide_patches(images, 0.25, 4, seed=0, step=5)
    assert hidden.shape == (3, 16) and hidden.sum(1).tolist() == [4, 4, 4]
    cells = hidden.view(3, 1, 4, 1, 4, 1).expand(3, 3, 4, 4, 4, 4).reshape(3, 3, 16, 16)
    assert (view[cells] == 0.5).all() and torch.equal(view[~cells], images[~cells])
    assert not torch.equal(hidden, hide_patches(images, 0.25, 4, seed=0, step=6)[1])


def test_consistency_is_zero_for_agreeing_maps_and_counts_only_shared_phrases():
    a = torch.softmax(torch.randn(1, 4, 1, 9), -1)
    group = torch.tensor([[1, 1, 2, 0]])
    real = torch.tensor([[True, True, True, False]])
    same = a.clone()
    same[0, 1] = same[0, 0]
    assert float(_consistency(same, group, real)) == pytest.approx(0.0, abs=1e-6)
    # the independent formula: mean over the two pairs of KL(a_i || their mean)
    mean = (a[0, 0] + a[0, 1]) / 2
    kl = [float((a[0, i] * (a[0, i] / mean).log()).sum()) for i in (0, 1)]
    assert float(_consistency(a, group, real)) == pytest.approx(sum(kl) / 2, rel=1e-5)
    alone = torch.tensor([[1, 2, 3, 0]])  # no phrase with two pairs: nothing to compare
    assert float(_consistency(a, alone, real)) == 0.0


def test_consistency_term_is_weighted_logged_and_pulls_maps_together(square_records):
    cfg = load_config("tiny", overrides=["train.loss_consistency=2"])
    data = build_training_data(square_records[:8], cfg, progress=False)
    batch = data.batch(torch.arange(4))
    torch.manual_seed(0)
    model = GroundingModel(cfg.model, data.vocab.types)
    loss, parts = compute_loss(model, batch, cfg)
    torch.testing.assert_close(loss.detach(), parts["word"] + 2 * parts["consistency"])
    alone = replace(cfg, train=replace(cfg.train, loss_word=0.0))
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    before = float(parts["consistency"])
    for _ in range(3):
        compute_loss(model, batch, alone)[0].backward()
        opt.step()
        opt.zero_grad()
    assert float(compute_loss(model, batch, alone)[1]["consistency"]) < before


def test_patch_masking_needs_a_fraction_and_a_decoder():
    with pytest.raises(ConfigError, match=r"model.patch_decoder"):
        load_config("tiny", overrides=["train.patch_mask=0.5", "train.loss_patch=1"])
    with pytest.raises(ConfigError, match=r"train.patch_mask"):
        load_config("tiny", overrides=["model.patch_decoder=1", "train.patch_mask_joint=true"])
    with pytest.raises(ConfigError, match=r"query_drop_schedule: 'cosine' is not one of"):
        load_config("tiny", overrides=["train.query_drop_schedule=cosine"])


@pytest.mark.parametrize("joint", [False, True])
def test_patch_masking_trains_the_decoder_and_reads_words_from_the_chosen_view(
    square_records, tmp_path, joint
):
    overrides = ["model.patch_decoder=1", "train.patch_mask=0.5", "train.loss_patch=1"]
    cfg = load_config("tiny", overrides=[*overrides, f"train.patch_mask_joint={joint}"])
    data = build_training_data(square_records[:8], cfg, progress=False)
    batch = data.batch(torch.arange(4))
    batch["masked_images"], batch["hidden"] = hide_patches(
        batch["images"], 0.5, cfg.model.token_stride, seed=0, step=0
    )
    torch.manual_seed(0)
    model = GroundingModel(cfg.model, data.vocab.types)
    model.eval()  # batch norm by running statistics: each view's tokens stand alone
    out = model(
        batch["images"],
        batch["query"],
        batch["target"],
        batch["partner"],
        batch["relation"],
        masked=(batch["masked_images"], batch["hidden"]),
        joint=joint,
    )
    assert isinstance(out, PairOutput) and out.patch_error is not None
    view = batch["masked_images"] if joint else batch["images"]
    plain = model(view, batch["query"], batch["target"], batch["partner"], batch["relation"])
    torch.testing.assert_close(out.word_logits, plain.word_logits)
    _, parts = compute_loss(model, batch, cfg)
    assert float(parts["patch"]) > 0
    cfg = replace(cfg, train=replace(cfg.train, steps=3))
    train(cfg, square_records[:16], tmp_path / "run", progress=False)
    with (tmp_path / "run" / "log.csv").open() as f:
        assert float(next(csv.DictReader(f))["patch"]) > 0


def test_query_drop_runs_in_training(square_records, tmp_path):
    cfg = load_config(
        "tiny",
        overrides=["train.steps=2", "train.query_drop=0.5", "train.query_drop_schedule=linear"],
    )
    result = train(cfg, square_records[:16], tmp_path / "run", progress=False)
    assert result.steps == 2
