from __future__ import annotations

import numpy as np
import pytest
import torch

from groundbench.errors import MethodError
from groundbench.model import load_config
from groundbench.model.infer import pass_masks, read_out, referent_tokens
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


def test_referent_is_the_first_noun_phrase():
    words = "the small white star over the red ring".split()
    assert referent_tokens(words, list(range(8))) == [1, 2, 3]
    assert referent_tokens(["the", "ring"], [0, 1]) == [1]


def test_pass_masks_hide_the_referent_only_when_context_remains():
    words = "the small white star over the ring".split()
    masks = pass_masks(words, [1, 2, 3], passes=5, generator=torch.Generator().manual_seed(0))
    assert not masks[0].any()  # pass 0: every word visible
    assert masks[1].nonzero().flatten().tolist() == [1, 2, 3]  # pass 1: the whole referent
    for p in range(2, 5):  # later: a non-empty strict part of the referent, nothing else
        hidden = set(masks[p].nonzero().flatten().tolist())
        assert hidden and hidden < {1, 2, 3}
    alone = pass_masks(
        ["the", "red", "ring"], [1, 2], passes=3, generator=torch.Generator().manual_seed(0)
    )
    assert not alone.any()  # no context: hiding the referent would leave nothing to read


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
