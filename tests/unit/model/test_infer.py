from __future__ import annotations

import numpy as np
import pytest
import torch

from groundbench.errors import MethodError
from groundbench.model import load_config
from groundbench.model.infer import pass_masks, read_out
from groundbench.model.network import GroundingModel
from groundbench.model.text import Vocabulary
from groundbench.types import GroundingSample


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
def model_and_vocab():
    vocab = Vocabulary.build(["a red circle left of a blue square"])
    torch.manual_seed(0)
    return GroundingModel(load_config("tiny").model, len(vocab)).eval(), vocab


def test_pass_masks_hide_phrase_and_some_context():
    words = "a red circle left of a blue square".split()
    masks = pass_masks(
        words,
        [1, 2],
        passes=3,
        context_rate=0.5,
        mask_phrase="auto",
        generator=torch.Generator().manual_seed(0),
    )
    assert masks[:, [1, 2]].all()
    assert masks[0].sum() == 2 and masks[1].sum() == 2 + 3 and masks[2].sum() == 5
    alone = pass_masks(
        ["red", "circle"],
        [0, 1],
        passes=1,
        context_rate=0.0,
        mask_phrase="auto",
        generator=torch.Generator().manual_seed(0),
    )
    assert not alone.any()  # the phrase is the whole text: keep it visible


def test_read_out_shapes_determinism_and_gate(model_and_vocab):
    model, vocab = model_and_vocab
    samples = [
        _sample(0, "a red circle left of a blue square", "a red circle"),
        _sample(1, "a blue square", "blue square"),
    ]
    images = [np.zeros((30, 40, 3), np.uint8), np.full((30, 40, 3), 200, np.uint8)]
    maps = read_out(model, vocab, samples, images, passes=3)
    assert maps.kind == "attention" and maps.ids == ("s/0", "s/1")
    assert maps.maps[0].shape == (3, 2, 2, 4, 4)  # P L H h w
    torch.testing.assert_close(maps.maps[0].sum((-2, -1)), torch.ones(3, 2, 2))
    torch.testing.assert_close(maps.head_weights.sum(), torch.tensor(1.0))
    again = read_out(
        model, vocab, samples[::-1], images[::-1], passes=3
    )  # batch order does not matter
    torch.testing.assert_close(again.maps[1], maps.maps[0], rtol=1e-5, atol=1e-6)


def test_read_out_refuses_bad_passes(model_and_vocab):
    model, vocab = model_and_vocab
    with pytest.raises(MethodError, match="read-out passes must be >= 1, got 0"):
        read_out(
            model,
            vocab,
            [_sample(0, "a red circle", "red")],
            [np.zeros((30, 40, 3), np.uint8)],
            passes=0,
        )
