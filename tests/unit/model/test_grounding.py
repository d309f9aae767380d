from __future__ import annotations

import torch

from groundbench.model import load_config
from groundbench.model.grounding import (
    NO_RELATION,
    GroundingAttention,
    displacement_index,
    relation_code,
)
from groundbench.model.language import RELATION_WORDS


def _reference_bias(att, kernel, grid, inverse):
    """``b_i = Σ_j A_j K[pos_i − pos_j]`` (or ``b_j = Σ_i A_i K[pos_i − pos_j]``), by loops."""
    out = torch.zeros(grid * grid, dtype=torch.float64)
    c = grid - 1
    for i in range(grid * grid):
        for j in range(grid * grid):
            (yi, xi), (yj, xj) = divmod(i, grid), divmod(j, grid)
            k = kernel[yi - yj + c, xi - xj + c]
            if inverse:
                out[j] += att[i] * k
            else:
                out[i] += att[j] * k
    return out


def test_relation_bias_matches_the_displacement_sum():
    cfg = load_config("tiny").model  # 8 x 8 grid
    torch.manual_seed(0)
    g = GroundingAttention(cfg, 5)
    with torch.no_grad():
        g.kernels.normal_()
    att = torch.rand(4, cfg.grid**2).softmax(-1)
    codes = torch.tensor(
        [
            relation_code("left", inverse=False),
            NO_RELATION,
            relation_code("above", inverse=True),
            relation_code("left", inverse=False),
        ]
    )
    bias = g.relation_bias(att, codes).detach().double()
    assert torch.equal(bias[1], torch.zeros_like(bias[1]))
    for row, (word, inverse) in ((0, ("left", False)), (2, ("above", True)), (3, ("left", False))):
        kernel = g.kernels[RELATION_WORDS.index(word)].detach().double()
        want = 5.0 * _reference_bias(att[row].double(), kernel, cfg.grid, inverse)
        torch.testing.assert_close(bias[row], want, rtol=1e-5, atol=1e-5)


def test_displacement_index_centre_is_zero_offset():
    idx = displacement_index(16)
    assert idx.shape == (256, 256)
    assert (idx.diagonal() == 15 * 31 + 15).all()


def test_attention_is_a_distribution_and_pools_values():
    cfg = load_config("tiny", overrides=["model.heads=2"]).model
    g = GroundingAttention(cfg, 6)
    keys, values = g.keys_values(torch.randn(2, 9, cfg.width))
    att, pooled = g.attend(g.query(torch.tensor([[[1, 2, 0, 0]], [[0, 0, 0, 0]]])), keys, values)
    assert att.shape == (2, 1, 2, 9) and pooled.shape == (2, 1, cfg.value_dim)
    torch.testing.assert_close(att.sum(-1), torch.ones(2, 1, 2))


def test_unknown_words_add_nothing_to_a_query():
    g = GroundingAttention(load_config("tiny").model, 6)
    torch.testing.assert_close(
        g.query(torch.tensor([3, 0, 0])), g.query(torch.tensor([3, 0, 0, 0]))
    )
    torch.testing.assert_close(g.query(torch.tensor([0, 0])), g.query_bias)
