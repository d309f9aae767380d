"""compute_metric, display_key and MetricSuite."""

from __future__ import annotations

import pytest
import torch

from groundbench.errors import ProtocolError, UnknownNameError
from groundbench.metrics import METRICS, compute_metric, display_key, metric_params
from groundbench.metrics.suite import MetricSuite, check_spec
from groundbench.types import HeatmapBatch, rasterise_boxes


def _batch(ids=("a", "b"), with_pred=True):
    boxes = torch.tensor([[[0.0, 0.0, 2.0, 2.0]], [[2.0, 2.0, 4.0, 4.0]]])
    count = torch.tensor([1, 1])
    h = torch.zeros(2, 4, 4)
    h[0, 0, 0] = 1.0  # hit
    h[1, 0, 0] = 1.0  # miss
    return HeatmapBatch(
        ids=ids,
        heatmap=h,
        valid=torch.ones(2, 4, 4, dtype=torch.bool),
        region=rasterise_boxes(boxes, count, 4, 4),
        boxes=boxes,
        box_count=count,
        pred_mask=h > 0.5 if with_pred else None,
        pred_box=torch.tensor([[0.0, 0.0, 1.0, 1.0], [0.0, 0.0, 1.0, 1.0]]) if with_pred else None,
    )


def test_every_registered_metric_declares_its_metadata():
    for name in METRICS.names():
        meta = METRICS.meta(name)
        assert set(meta["needs"]) <= {"heatmap", "region", "boxes", "pred_mask", "pred_box"}
        assert isinstance(meta["higher_is_better"], bool)
        low, high = meta["range"]
        assert low < high


@pytest.mark.parametrize(
    ("name", "params", "key"),
    [
        ("pointing", {}, "pointing"),
        ("pointing", {"variant": "mg"}, "pointing[mg]"),
        ("pointing", {"variant": "albef"}, "pointing[albef]"),
        ("pointing", {"tolerance_px": 15}, "pointing@15px"),
        ("pointing", {"tolerance_px": 7.5}, "pointing@7.5px"),
        ("box_acc", {}, "box_acc@0.5"),
        ("box_acc", {"iou": 0.75}, "box_acc@0.75"),
        ("box_iou", {}, "box_iou"),
        ("soft_iou", {}, "soft_iou"),
        ("spearman", {"sigma_px": 0}, "spearman"),
        ("spearman", {"sigma_px": 4}, "spearman@sigma4px"),
    ],
)
def test_display_keys(name, params, key):
    assert display_key(name, params) == key


def test_unknown_param_names_the_key_path_and_closest_match():
    with pytest.raises(ProtocolError) as err:
        display_key("pointing", {"varaint": "mg"})
    assert str(err.value) == (
        "metric spec: unknown key pointing.varaint; valid keys under pointing: name, variant, "
        "tolerance_px, coords, ties, box_convention; did you mean 'variant'?"
    )


def test_metric_params_lists_defaults():
    assert metric_params("box_acc") == {"iou": 0.5}
    assert metric_params("auc") == {}


def test_compute_metric_feeds_from_the_batch():
    out = compute_metric("pointing", _batch(), variant="mg")
    assert out.values.tolist() == [1.0, 0.0]
    # index (0, 0) sits on the box's corner: outside an open box
    assert compute_metric("pointing", _batch(), variant="albef").values.tolist() == [0.0, 0.0]
    assert compute_metric("box_acc", _batch(), iou=0.25).values.tolist() == [1.0, 0.0]


def test_compute_metric_without_a_threshold_step_says_so():
    with pytest.raises(ProtocolError, match=r"^metric 'miou' needs pred_mask, which the pipeline"):
        compute_metric("miou", _batch(with_pred=False))
    with pytest.raises(UnknownNameError, match="did you mean 'auc'"):
        compute_metric("aucc", _batch())


def test_suite_accumulates_and_resets():
    suite = MetricSuite([{"name": "pointing", "variant": "mg"}, {"name": "box_acc", "iou": 0.25}])
    assert suite.keys == ("pointing[mg]", "box_acc@0.25")
    suite.update(_batch(), tags=[frozenset({"small"}), frozenset()])
    suite.update(_batch(ids=("c", "d")))
    assert suite.ids == ("a", "b", "c", "d")
    values, codes = suite.per_sample()["pointing[mg]"]
    assert values.tolist() == [1.0, 0.0, 1.0, 0.0] and codes.tolist() == [0, 0, 0, 0]
    result = suite.compute(resamples=100)
    assert result["pointing[mg]"]["all"].mean == 0.5
    assert result["pointing[mg]"]["small"].n == 1
    suite.reset()
    assert suite.ids == () and suite.per_sample()["box_acc@0.25"][0].size == 0


def test_suite_rejects_duplicates_and_nameless_specs():
    with pytest.raises(ProtocolError) as exc:
        MetricSuite([{"name": "pointing", "variant": "mg"}, {"name": "pointing", "variant": "mg"}])
    assert str(exc.value) == (
        "metrics.1 repeats metrics.0 (both report as 'pointing[mg]'); remove one"
    )
    with pytest.raises(ProtocolError, match=r"^metrics.0 must be a mapping with a name and"):
        MetricSuite([{"variant": "mg"}])
    with pytest.raises(ProtocolError, match=r"^unknown metrics 'aucc' \(asked for by metrics.0"):
        MetricSuite([{"name": "aucc"}])


def test_shared_ranks_rank_each_map_once_and_change_no_value(monkeypatch):
    from groundbench.metrics import _ranks, auc, shared_ranks, spearman

    g = torch.Generator().manual_seed(0)
    h = torch.rand(3, 6, 7, generator=g)
    region = torch.rand(3, 6, 7, generator=g) > 0.6
    h[1] = 0.5  # constant: ranked for auc, undefined for spearman
    plain = (auc(h, region=region).values, spearman(h, region=region).values)
    calls = []
    real = _ranks.rank_stats
    monkeypatch.setattr(_ranks, "rank_stats", lambda *a, **k: calls.append(1) or real(*a, **k))
    with shared_ranks():
        shared = (spearman(h, region=region).values, auc(h, region=region).values)
    assert len(calls) == 3  # spearman ranks maps 0 and 2, auc adds map 1 only
    assert torch.equal(shared[1], plain[0])
    assert torch.equal(shared[0].nan_to_num(-9.0), plain[1].nan_to_num(-9.0))
    auc(h, region=region)
    assert len(calls) == 6  # outside the block nothing is shared


def test_suite_bounds_distance_parameters_before_running_a_metric():
    # a tolerance of a million pixels used to allocate a (2, 2000001, 2000001) offset grid
    with pytest.raises(ProtocolError) as exc:
        MetricSuite([{"name": "pointing", "tolerance_px": 1e6}])
    assert str(exc.value) == (
        "metrics.0.tolerance_px: 1000000.0 is out of range; use a distance in pixels in [0, 4096]"
    )


def test_suite_scores_a_batch_as_one_matrix():
    suite = MetricSuite([{"name": "pointing", "variant": "mg"}, {"name": "box_acc"}])
    scores = suite.score(_batch())
    assert scores.values.shape == (2, 2) and scores.values.dtype.name == "float64"
    assert scores.undefined.dtype.name == "int8"
    assert scores.values[:, 0].tolist() == [1.0, 0.0]
    assert set(scores.extras) == {"pointing[mg]:tie_count"}


def test_pointing_rule_is_written_out_and_named_when_not_the_variants_own():
    short = check_spec({"name": "pointing", "variant": "albef"})
    spelled = check_spec(
        {"name": "pointing", "variant": "albef", "coords": "index", "ties": "first"}
    )
    assert short == spelled and short.params["coords"] == "index" and short.key == "pointing[albef]"
    old = check_spec({"name": "pointing", "variant": "mg", "coords": "centre", "ties": "expected"})
    assert old.key == "pointing[mg,centre,expected]"
    flickr = check_spec({"name": "pointing", "variant": "mg", "box_convention": "corners_1based"})
    assert flickr.key == "pointing[mg,corners_1based]"
    region = check_spec({"name": "pointing", "tolerance_px": 15})
    assert (region.params["coords"], region.params["ties"]) == ("centre", "expected")
    assert display_key("pointing", {"ties": "first"}) == "pointing[first]"
