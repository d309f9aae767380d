from __future__ import annotations

import torch

from groundbench.model import load_config
from groundbench.model.grounding import NO_RELATION
from groundbench.model.network import GroundingModel

TYPES = [0, 1, 1, 1, 2, 2]  # <unk>; three colours; two shapes


def _inputs(B=2, Q=3, P=4):
    query = torch.tensor([[[4, 0, 0, 0], [1, 0, 0, 0], [0, 0, 0, 0]]]).expand(B, -1, -1)
    target = torch.tensor([[2, 5, 0]]).expand(B, -1)  # third pair is padding
    partner = torch.zeros(B, Q, P, dtype=torch.long)
    relation = torch.full((B, Q), NO_RELATION)
    return query, target, partner, relation


def test_typed_head_predicts_within_the_hidden_words_type():
    cfg = load_config("tiny").model
    model = GroundingModel(cfg, TYPES)
    out = model(torch.rand(2, 3, 32, 32), *_inputs())
    colours = out.word_logits[:, 0]
    assert torch.isinf(colours[:, [0, 4, 5]]).all() and torch.isfinite(colours[:, 1:4]).all()
    shapes = out.word_logits[:, 1]
    assert torch.isfinite(shapes[:, 4:]).all() and torch.isinf(shapes[:, :4]).all()
    assert torch.isfinite(out.word_logits[:, 2]).all()  # padding: finite, no NaN gradient


def test_vocabulary_head_predicts_among_every_word():
    model = GroundingModel(load_config("tiny", overrides=["model.head=vocabulary"]).model, TYPES)
    out = model(torch.rand(2, 3, 32, 32), *_inputs())
    assert torch.isinf(out.word_logits[:, :2, 0]).all()
    assert torch.isfinite(out.word_logits[:, :2, 1:]).all()


def test_the_image_reaches_the_prediction_only_through_the_attention():
    torch.manual_seed(0)
    model = GroundingModel(load_config("tiny").model, TYPES).eval()
    images = torch.rand(2, 3, 32, 32)
    out = model(images, *_inputs())
    keys, values = model.encode(images)
    att = out.attention  # B Q H N
    pooled = torch.einsum("bqhn,bnhe->bqhe", att, values).flatten(2)
    torch.testing.assert_close(model.predict(pooled, _inputs()[1]), out.word_logits)


def test_contrast_logits_use_another_image():
    torch.manual_seed(0)
    model = GroundingModel(load_config("tiny").model, TYPES).eval()
    out = model(torch.rand(2, 3, 32, 32), *_inputs(), contrast=True)
    assert out.contrast_logits.shape == out.word_logits.shape
    assert not torch.equal(out.contrast_logits, out.word_logits)


def _mask_model():
    torch.manual_seed(0)
    cfg = load_config("tiny", overrides=["model.mask=sigmoid"]).model
    model = GroundingModel(cfg, TYPES).eval()
    with torch.no_grad():
        model.mask_bias.fill_(-0.5)
    return model


def test_the_sigmoid_mask_pools_a_foreground_and_its_complement():
    model = _mask_model()
    images = torch.rand(2, 3, 32, 32)
    inputs = _inputs()
    out = model(images, *inputs)
    keys, values = model.encode(images)
    logits = model.logits(keys, values, *[inputs[0], inputs[2], inputs[3]])
    m = torch.sigmoid(logits + -0.5)  # B Q H N
    torch.testing.assert_close(out.mask, m)
    torch.testing.assert_close(out.attention, logits.softmax(-1))  # the same logits
    for weight, got in ((m, out.foreground_logits), (1 - m, out.background_logits)):
        w = weight / weight.sum(-1, keepdim=True)
        pooled = torch.einsum("bqhn,bnhe->bqhe", w, values).flatten(2)
        torch.testing.assert_close(model.predict(pooled, inputs[1]), got, rtol=1e-3, atol=1e-3)


def test_a_model_without_a_mask_has_no_mask_parameter_or_output():
    model = GroundingModel(load_config("tiny").model, TYPES)
    assert "mask_bias" not in dict(model.named_parameters())
    out = model(torch.rand(2, 3, 32, 32), *_inputs())
    assert out.mask is None and out.foreground_logits is None and out.background_logits is None
