from __future__ import annotations

import numpy as np
import pytest
import torch

from groundbench.errors import MethodError
from groundbench.model import load_config
from groundbench.model.grounding import NO_RELATION, relation_code
from groundbench.model.infer import phrase_queries, read_out
from groundbench.model.language import Vocabulary
from groundbench.model.network import GroundingModel
from groundbench.types import GroundingSample

VOCAB = Vocabulary(["<unk>", "blue", "circle", "red", "square"], [0, 1, 2, 1, 2])


def _sample(i: int, text: str, phrase: str) -> GroundingSample:
    start = text.index(phrase)
    return GroundingSample(
        f"s/{i}",
        "unused.png",
        40,
        30,
        text,
        phrase,
        (start, start + len(phrase)),
        np.array([[0.0, 0.0, 10.0, 10.0]]),
    )


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return GroundingModel(load_config("tiny").model, VOCAB.types).eval()


def test_the_referent_is_one_query_with_its_landmark():
    q, landmark, code = phrase_queries("the red circle left of a blue square", VOCAB, 4)
    assert q.tolist() == [[3, 2, 0, 0]] and landmark.tolist() == [1, 4, 0, 0]
    assert code == relation_code("left", inverse=False)
    q, landmark, code = phrase_queries("under the blue square, the red circle", VOCAB, 4)
    assert q.tolist() == [[3, 2, 0, 0]] and landmark.tolist() == [1, 4, 0, 0]
    assert code == relation_code("under", inverse=False)
    q, landmark, code = phrase_queries("they", VOCAB, 4)
    assert q.tolist() == [[0, 0, 0, 0]] and code == NO_RELATION


def test_masked_passes_hide_one_word_each():
    q, _, _ = phrase_queries("the red circle", VOCAB, 3, "masked")
    assert q.tolist() == [[2, 0, 0], [3, 0, 0]]
    q, _, _ = phrase_queries("the circle", VOCAB, 3, "masked")
    assert q.tolist() == [[2, 0, 0]]  # one word: nothing left to hide it behind
    with pytest.raises(MethodError, match="read-out passes must be 'full' or 'masked', got 'all'"):
        phrase_queries("the circle", VOCAB, 3, "all")


def test_read_out_shapes_and_batch_invariance(model):
    text = "a red circle left of a blue square"
    samples = [_sample(i, text, p) for i, p in enumerate(["red circle", "blue square", text])]
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 255, (30, 40, 3), dtype=np.uint8) for _ in samples]
    raw = read_out(model, VOCAB, samples, images)
    assert raw.kind == "attention" and raw.ids == ("s/0", "s/1", "s/2")
    assert all(m.shape == (1, 1, 8, 8) for m in raw.maps)
    torch.testing.assert_close(raw.maps[0].sum(), torch.tensor(1.0))
    one_by_one = [
        read_out(model, VOCAB, [s], [im]).maps[0] for s, im in zip(samples, images, strict=True)
    ]
    for a, b in zip(raw.maps, one_by_one, strict=True):
        assert torch.equal(a, b)
    masked = read_out(model, VOCAB, samples, images, passes="masked")
    assert masked.maps[0].shape == (2, 1, 1, 8, 8)


def test_read_out_refuses_misaligned_images(model):
    with pytest.raises(MethodError, match="read_out got 0 images for 1 samples"):
        read_out(model, VOCAB, [_sample(0, "a red circle", "red circle")], [])


def test_gradcam_read_out_is_textbook_gradcam_of_the_masked_word_logits(model):
    from groundbench.model.data import image_to_uint8
    from groundbench.model.infer import gradcam_read_out

    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (30, 40, 3), dtype=np.uint8)
    s = _sample(0, "a blue square", "blue square")
    got = gradcam_read_out(model, VOCAB, [s], [image]).maps[0]
    # independent: hide "blue" (query: square) and "square" (query: blue), sum the two logits
    cfg = model.cfg
    x = image_to_uint8(image, cfg.image_size)[None].float() / 255.0
    tokens = model.encoder(x).detach().requires_grad_(True)
    keys, values = model.grounding.keys_values(tokens)
    query = torch.tensor(
        [[[4, 0, 0, 0][: cfg.max_phrase_words], [1, 0, 0, 0][: cfg.max_phrase_words]]]
    )
    empty = torch.zeros_like(query)
    _, pooled = model.ground(keys, values, query, empty, torch.full((1, 2), NO_RELATION))
    logits = model.predict(pooled, torch.tensor([[1, 4]]))
    (grad,) = torch.autograd.grad(logits[0, 0, 1] + logits[0, 1, 4], [tokens])
    a = tokens.detach()[0].numpy().T.reshape(-1, cfg.grid, cfg.grid)  # C h w
    g = grad[0].numpy().T.reshape(-1, cfg.grid, cfg.grid)
    expected = np.maximum((g.mean(axis=(1, 2))[:, None, None] * a).sum(0), 0)
    assert got.shape == (cfg.grid, cfg.grid)
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-4, atol=1e-6)
    assert got.max() > 0


def test_gradcam_read_out_of_a_phrase_without_known_words_is_zero(model):
    from groundbench.model.infer import gradcam_read_out

    s = _sample(0, "the thing", "the thing")
    got = gradcam_read_out(model, VOCAB, [s], [np.zeros((30, 40, 3), np.uint8)]).maps[0]
    assert got.abs().sum() == 0


def test_a_long_phrase_keeps_its_head_noun():
    q, landmark, _ = phrase_queries("the big blue red circle left of a big blue square", VOCAB, 2)
    assert q.tolist() == [[3, 2]] and landmark.tolist() == [1, 4]  # red circle, blue square


def test_the_checkpoint_method_notes_phrases_it_cannot_read(tmp_path, model):
    from groundbench.methods.checkpoint import CheckpointMethod
    from groundbench.model.checkpoint import save_checkpoint

    path = save_checkpoint(tmp_path / "m.safetensors", model, load_config("tiny"), VOCAB, "f" * 64)
    method = CheckpointMethod(path)
    texts = ["circle on left", "circle on right", "second from right", "a zebra", "a red circle"]
    samples = [_sample(i, t, t) for i, t in enumerate(texts)]
    images = [np.zeros((30, 40, 3), np.uint8)] * len(samples)
    raw = method.predict(samples, images, device=torch.device("cpu"))
    assert raw.notes == (
        {"text:location-unused"},
        {"text:location-unused"},
        {"text:no-referent", "text:location-unused"},
        {"text:no-known-word"},
        frozenset(),
    )
    assert torch.equal(raw.maps[0], raw.maps[1])  # the same map, but no longer silently


def test_the_checkpoint_fingerprint_moves_with_the_chunking_rules(tmp_path, model, monkeypatch):
    from groundbench.methods.checkpoint import CheckpointMethod
    from groundbench.model import language
    from groundbench.model.checkpoint import save_checkpoint

    path = save_checkpoint(tmp_path / "m.safetensors", model, load_config("tiny"), VOCAB, "f" * 64)
    before = CheckpointMethod(path).fingerprint()
    assert CheckpointMethod(path).fingerprint() == before
    monkeypatch.setattr(language, "PARSE_RULES", language.PARSE_RULES + 1)
    assert CheckpointMethod(path).fingerprint() != before


def _logits_of(model, sample, image):
    from groundbench.model.data import image_to_uint8

    cfg = model.cfg
    q, landmark, code = phrase_queries(sample.phrase, VOCAB, cfg.max_phrase_words)
    keys, values = model.encode(image_to_uint8(image, cfg.image_size)[None].float() / 255.0)
    args = (q[None], landmark[None, None], torch.full((1, 1), code))
    return model.logits(keys, values, *args)[0, 0], model.ground(keys, values, *args)[0][0, 0]


def test_read_out_temperature_flattens_the_softmax_of_the_same_logits(model):
    from dataclasses import replace

    s = _sample(0, "a red circle left of a blue square", "red circle")
    image = np.random.default_rng(1).integers(0, 255, (30, 40, 3), dtype=np.uint8)
    logits, attention = _logits_of(model, s, image)
    plain = read_out(model, VOCAB, [s], [image]).maps[0]
    assert torch.equal(plain.flatten(), attention.flatten())  # T = 1: the training attention
    hot = GroundingModel(replace(model.cfg, readout_temperature=6.0), VOCAB.types).eval()
    hot.load_state_dict(model.state_dict())
    flat = read_out(hot, VOCAB, [s], [image]).maps[0]
    torch.testing.assert_close(flat.flatten(), (logits / 6.0).softmax(-1).flatten())
    assert flat.max() < plain.max() and flat.argmax() == plain.argmax()


def test_mask_read_out_is_the_sigmoid_of_the_logits_and_does_not_sum_to_one():
    cfg = load_config("tiny", overrides=["model.mask=sigmoid", "model.readout=mask"]).model
    torch.manual_seed(0)
    model = GroundingModel(cfg, VOCAB.types).eval()
    with torch.no_grad():
        model.mask_bias.fill_(2.0)
    s = _sample(0, "a blue square", "blue square")
    image = np.random.default_rng(2).integers(0, 255, (30, 40, 3), dtype=np.uint8)
    logits, _ = _logits_of(model, s, image)
    got = read_out(model, VOCAB, [s], [image]).maps[0]
    assert got.shape == (1, 1, cfg.grid, cfg.grid)
    torch.testing.assert_close(got.flatten(), torch.sigmoid(logits + 2.0).flatten())
    assert float(got.sum()) > 1.5 and 0 < float(got.min()) and float(got.max()) < 1
