"""AUC: hand cases, undefined cases and agreement with scikit-learn's roc_auc_score."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score

from groundbench.metrics import auc
from groundbench.types import Undefined


def test_ties_count_half():
    h = torch.tensor([[[0.9, 0.1], [0.5, 0.5]]])
    region = torch.tensor([[[True, False], [True, False]]])
    # pairs: (0.9 > 0.1) 1, (0.9 > 0.5) 1, (0.5 > 0.1) 1, (0.5 = 0.5) 1/2 -> 3.5 / 4
    assert auc(h, region=region).values.tolist() == [0.875]


def test_indicator_scores_one_negation_zero_constant_half():
    region = torch.zeros(1, 5, 5, dtype=torch.bool)
    region[0, 1:3, 2:4] = True
    assert auc(region.float(), region=region).values.tolist() == [1.0]
    assert auc(-region.float(), region=region).values.tolist() == [0.0]
    assert auc(torch.ones(1, 5, 5), region=region).values.tolist() == [0.5]


def test_undefined_cases():
    h = torch.rand(3, 4, 4)
    h[2, 0, 0] = math.inf
    region = torch.zeros(3, 4, 4, dtype=torch.bool)
    region[1] = True
    region[2, 0, 0] = True
    out = auc(h, region=region)
    assert out.undefined.tolist() == [
        Undefined.EMPTY_REGION,
        Undefined.FULL_REGION,
        Undefined.NAN_INPUT,
    ]
    assert torch.isnan(out.values).all()


def test_padding_is_neither_positive_nor_negative():
    h = torch.tensor([[[1.0, 0.0, 5.0, 5.0]]])
    region = torch.tensor([[[True, False, False, False]]])
    valid = torch.tensor([[[True, True, False, False]]])
    assert auc(h, region=region, valid=valid).values.tolist() == [1.0]


@pytest.mark.parametrize("levels", [None, 5])
def test_agrees_with_sklearn(rng, levels):
    h = rng.random((6, 23, 31)).astype(np.float32)
    if levels:  # heavy ties
        h = np.floor(h * levels).astype(np.float32)
    region = rng.random((6, 23, 31)) < 0.2
    valid = np.ones_like(region)
    valid[:, :, 25:] = False
    region &= valid
    out = auc(torch.from_numpy(h), region=torch.from_numpy(region), valid=torch.from_numpy(valid))
    for i in range(6):
        ref = roc_auc_score(region[i][valid[i]], h[i][valid[i]])
        assert out.values[i].item() == pytest.approx(ref, abs=1e-12)
