"""Each recipe against a short independent numpy reference, exact in float64."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from groundbench.attribution import (
    gradcam,
    itm_gradcam,
    occlusion,
    patchsim,
    pooled_relevance,
    relevance,
    rise,
    rise_masks,
    tokens_to_grid,
)
from groundbench.errors import MethodError


def t(a):
    return torch.from_numpy(a)


def test_itm_gradcam_token_rules_match_albef_and_lavis(rng):
    B, H, T, N = 2, 3, 6, 1 + 2 * 3  # non-square 2×3 grid after the image [CLS]
    a, g = rng.random((B, H, T, N)), rng.standard_normal((B, H, T, N))
    mask = np.array([[1, 1, 1, 1, 1, 1], [1, 1, 1, 1, 0, 0]], dtype=np.float64)
    cam = (a[..., 1:] * np.clip(g[..., 1:], 0, None) * mask[:, None, :, None]).mean(1)  # B T N
    n = mask.sum(1)
    albef = cam.sum(1) / n[:, None]
    lavis = np.stack([cam[b, 1 : int(n[b]) - 1].sum(0) / (n[b] - 2) for b in range(B)])
    for rule, want in (("all", albef), ("words", lavis), ("first", cam[:, 0])):
        got = itm_gradcam(t(a), t(g), t(mask), tokens=rule).numpy()
        np.testing.assert_allclose(got, want, rtol=1e-13)
    # ALBEF's literal mean over the padded length is the same map times n / T
    np.testing.assert_allclose(albef[1] * n[1] / T, cam[1].mean(0), rtol=1e-13)
    with pytest.raises(MethodError, match="tokens must be one of"):
        itm_gradcam(t(a), t(g), t(mask), tokens="cls")


def test_relevance_matches_the_rollout_formula_for_every_start_layer(rng):
    L, B, H, N = 3, 2, 2, 5
    a = [rng.random((B, H, N, N)) for _ in range(L)]
    g = [rng.standard_normal((B, H, N, N)) for _ in range(L)]
    for start in (0, 1, -1):
        R = np.broadcast_to(np.eye(N), (B, N, N)).copy()
        for k in range(start % L, L):
            cam = np.clip(a[k] * g[k], 0, None).mean(1)
            R = R + cam @ R
        got = relevance([t(x) for x in a], [t(x) for x in g], start_layer=start).numpy()
        np.testing.assert_allclose(got, R, rtol=1e-12)
    pa, pg = rng.random((B, H, 1, N)), rng.standard_normal((B, H, 1, N))
    want = (np.clip(pa * pg, 0, None).mean(1) @ R)[:, 0]
    np.testing.assert_allclose(pooled_relevance(t(pa), t(pg), t(R)).numpy(), want, rtol=1e-12)
    with pytest.raises(MethodError, match="start_layer 3 is outside the tower's 3 layers"):
        relevance([t(x) for x in a], [t(x) for x in g], start_layer=3)


def test_gradcam_is_the_textbook_formula_on_a_non_square_grid(rng):
    act, grad = rng.standard_normal((2, 4, 2, 3)), rng.standard_normal((2, 4, 2, 3))
    w = grad.mean(axis=(2, 3))
    want = np.maximum(np.einsum("bc,bchw->bhw", w, act), 0)
    np.testing.assert_allclose(gradcam(t(act), t(grad)).numpy(), want, rtol=1e-12)
    np.testing.assert_allclose(
        gradcam(t(act), t(grad), relu=False).numpy(), np.einsum("bc,bchw->bhw", w, act), rtol=1e-12
    )
    tokens = rng.standard_normal((2, 7, 4))
    grid = tokens_to_grid(t(tokens), (2, 3)).numpy()
    assert grid[1, :, 1, 2].tolist() == tokens[1, 1 + 1 * 3 + 2].tolist()
    assert tokens_to_grid(t(tokens[:, 1:]), (2, 3), prefix=0).shape == (2, 4, 2, 3)  # no [CLS]


def test_patchsim_is_the_cosine(rng):
    p, q = rng.standard_normal((2, 6, 5)), rng.standard_normal((2, 5))
    want = (
        np.einsum("bnd,bd->bn", p, q)
        / np.linalg.norm(p, axis=-1)
        / np.linalg.norm(q, axis=-1)[:, None]
    )
    np.testing.assert_allclose(patchsim(t(p), t(q)).numpy(), want, rtol=1e-12)


def test_rise_is_the_mask_weighted_mean_of_the_sigmoid_score(rng):
    image = t(rng.standard_normal((3, 10, 14)))
    w = t(rng.standard_normal((3, 10, 14)))

    def score(x):
        return (x * w).sum((1, 2, 3)) / 50

    masks = torch.cat(list(rise_masks(70, 7, 0.5, (10, 14), torch.Generator().manual_seed(3))))
    assert masks.shape == (70, 1, 10, 14) and 0 <= float(masks.min()) and float(masks.max()) <= 1
    s = 1 / (1 + np.exp(-score(image[None] * masks).numpy()))
    want = (s[:, None] * masks.reshape(70, -1).double().numpy()).sum(0) / 70
    got = rise(score, image, num_masks=70, num_cells=7, p=0.5, seed=3)
    np.testing.assert_allclose(got.numpy().ravel(), want, rtol=1e-10)
    # seeded by its own generator: the global RNG is neither read nor moved
    state = torch.get_rng_state()
    assert torch.equal(rise(score, image, num_masks=70, seed=3), got)
    assert torch.equal(state, torch.get_rng_state())


def test_rise_and_occlusion_point_at_the_region_a_score_depends_on():
    image = torch.ones(3, 16, 24)

    def score(x):  # depends only on rows 8..11, columns 16..19
        return x[:, :, 8:12, 16:20].mean((1, 2, 3)) * 4 - 2

    sal = rise(score, image, num_masks=500, num_cells=4, p=0.5)
    r, c = divmod(int(sal.argmax()), 24)
    assert 8 <= r < 12 and 16 <= c < 20
    occ = occlusion(score, image, window=4)
    assert occ.shape == (4, 6) and divmod(int(occ.argmax()), 6) == (2, 4)
    assert float(occ[2, 4]) == 4.0 and float(occ.abs().sum()) == 4.0
    with pytest.raises(MethodError, match="window 5 px does not tile a 16×24 image"):
        occlusion(score, image, window=5)


def test_rise_and_occlusion_of_several_texts_equal_one_call_per_text(rng):
    image = t(rng.standard_normal((3, 12, 16)))
    weights = [t(rng.standard_normal((3, 12, 16))) for _ in range(3)]
    calls = []

    def one(w):
        return lambda x: (x * w).sum((1, 2, 3)) / 40

    def many(x):  # (N, T): one pass over the perturbed images for every text
        calls.append(len(x))
        return torch.stack([one(w)(x) for w in weights], dim=1)

    sal = rise(many, image, num_masks=70, num_cells=4, p=0.5, seed=2)
    assert sal.shape == (3, 12, 16) and sum(calls) == 70
    occ = occlusion(many, image, window=4)
    assert occ.shape == (3, 3, 4)
    for k, w in enumerate(weights):
        np.testing.assert_allclose(
            sal[k].numpy(),
            rise(one(w), image, num_masks=70, num_cells=4, p=0.5, seed=2).numpy(),
            rtol=1e-12,
        )
        np.testing.assert_allclose(
            occ[k].numpy(), occlusion(one(w), image, window=4).numpy(), rtol=1e-12
        )
