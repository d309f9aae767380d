"""``protocol.scorer(device)``: a report's numbers from raw maps in one call, each sample once."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np
import pytest
import torch

from groundbench.errors import DataFormatError, MethodError
from groundbench.evaluate import evaluate
from groundbench.evaluation.data import load_samples
from groundbench.methods import resolve_method
from groundbench.metrics import MetricSuite
from groundbench.protocol import load_protocol
from groundbench.synthetic import PROBE_SPLITS, generate
from groundbench.types import HeatmapBatch

ROOT = Path(__file__).resolve().parents[2]
CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    """A synthetic set with a 4-scene val split (12 samples)."""
    root = tmp_path_factory.mktemp("scorer")
    scenes = {"train": 1, "val": 4, "test": 1} | {name: 1 for name in PROBE_SPLITS}
    return generate(root / "synth", {"scenes": scenes}, seed=0, progress=False)


def _predict(method, samples):
    images = [s.load_image() for s in samples] if method.needs_images else None
    return method.predict(samples, images, device=CPU)


def test_the_scorer_gives_the_report_numbers(synth, tmp_path, monkeypatch):
    monkeypatch.setenv("GROUNDBENCH_CACHE", str(tmp_path / "cache"))
    protocol = load_protocol("synth_val.albef")
    method = resolve_method("centre_prior:0.2")
    result = evaluate(protocol, method, out_dir=tmp_path / "run", data_root=synth,
                      batch_size=5, progress=False)  # fmt: skip
    samples = load_samples(protocol, synth)
    scorer = protocol.scorer("cpu")
    for start in range(0, len(samples), 7):  # another batch size than the report's
        scores = scorer.update(
            _predict(method, samples[start : start + 7]), samples[start : start + 7]
        )
        assert scores.ids == tuple(s.id for s in samples[start : start + 7])
    aggregates = scorer.compute()
    for key in scorer.keys:
        got, want = aggregates[key]["all"].to_dict(), result.report["metrics"][key]["all"]
        assert got == want, key
    rows = list(csv.DictReader(io.StringIO((tmp_path / "run" / "samples.csv").read_text())))
    one = scorer.score(_predict(method, samples[:1]), samples[:1]).records()[0]
    assert one["id"] == rows[0]["id"] == samples[0].id
    assert one["pointing[albef]"] == float(rows[0]["pointing[albef]"])


@pytest.mark.parametrize("cluster", [None, "image"])
def test_the_intervals_do_not_depend_on_the_batch_order(synth, tmp_path, monkeypatch, cluster):
    monkeypatch.setenv("GROUNDBENCH_CACHE", str(tmp_path / "cache"))
    sets = () if cluster is None else ("bootstrap.cluster=image",)
    protocol = load_protocol("synth_val.albef", sets)
    method = resolve_method("centre_prior:0.2")
    result = evaluate(protocol, method, out_dir=tmp_path / "run", data_root=synth,
                      progress=False)  # fmt: skip
    samples = load_samples(protocol, synth)[::-1]  # the report's order, reversed
    scorer = protocol.scorer("cpu")
    for start in range(0, len(samples), 5):
        scorer.update(_predict(method, samples[start : start + 5]), samples[start : start + 5])
    aggregates = scorer.compute()
    for key in scorer.keys:
        assert aggregates[key]["all"].to_dict() == result.report["metrics"][key]["all"], key


def test_a_sample_scored_twice_is_refused_until_reset(synth):
    protocol = load_protocol("synth_val.albef")
    samples = load_samples(protocol, synth)[:4]
    raw = _predict(resolve_method("uniform"), samples)
    scorer = protocol.scorer("cpu")
    scorer.update(raw, samples)
    with pytest.raises(DataFormatError) as exc:
        scorer.update(raw, samples)
    assert str(exc.value) == (
        f"MetricSuite.update: 4 sample ids were already scored since the last reset or occur "
        f"twice in the batch (first: {samples[0].id!r}); each sample counts once: call reset() "
        "between passes over the data"
    )
    assert scorer.compute()["pointing[albef]"]["all"].n == 4
    scorer.reset()
    scorer.update(raw, samples)
    assert scorer.compute()["pointing[albef]"]["all"].n == 4


def test_maps_of_other_ids_are_refused(synth):
    protocol = load_protocol("synth_val.albef")
    samples = load_samples(protocol, synth)[:2]
    raw = _predict(resolve_method("uniform"), samples[::-1])
    with pytest.raises(MethodError, match=r"the RawMaps are for ids .* instead of the batch's"):
        protocol.scorer("cpu").score(raw, samples)


def test_metric_suite_refuses_an_id_twice_in_one_batch():
    suite = MetricSuite([{"name": "pointing"}])
    batch = HeatmapBatch(ids=("a", "a"), heatmap=torch.rand(2, 2, 2),
                         valid=torch.ones(2, 2, 2, dtype=torch.bool),
                         region=torch.ones(2, 2, 2, dtype=torch.bool),
                         boxes=torch.zeros(2, 1, 4), box_count=torch.ones(2, dtype=torch.long))  # fmt: skip
    with pytest.raises(DataFormatError, match="1 sample ids were already scored"):
        suite.update(batch)
    assert suite.ids == ()


def test_the_docs_example_runs(synth, capsys):
    text = (ROOT / "docs" / "metrics.md").read_text(encoding="utf-8")
    code = text.split("## Scoring inside a training loop", 1)[1].split("```python\n", 1)[1]
    code = code.split("```", 1)[0]
    centre = resolve_method("centre_prior")
    namespace = {"data_root": synth, "model_maps": lambda s, i: centre.predict(s, i, device=CPU)}
    exec(compile(code, "docs/metrics.md", "exec"), namespace)  # noqa: S102
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2 and lines[0].startswith("epoch 0: pointing ")
    assert lines[0][len("epoch 0") :] == lines[1][len("epoch 1") :]
    assert np.isfinite(namespace["pointing"].mean)


def _frame_protocol():
    from groundbench.protocol import protocol_from_mapping

    return protocol_from_mapping({"schema": 1, "dataset": {"adapter": "native", "split": "test"},
                                  "pipeline": {"upsample": {"mode": "nearest"}},
                                  "metrics": [{"name": "pointing"}]})  # fmt: skip


def _wide_sample(box=(32.0, 10.0, 40.0, 20.0)):
    from groundbench.types import GroundingSample

    return GroundingSample(id="wide/0", image_path="none.png", width=60, height=30,
                           text="the dot", phrase="dot", span=(4, 7), boxes=np.array([box]))  # fmt: skip


def test_a_transposed_map_is_refused():
    # A (W, H) map for an H × W image scored 0.102 instead of 1.000, silently.
    from groundbench.types import RawMaps

    sample = _wide_sample()
    raw = RawMaps(("wide/0",), (torch.rand(60, 30),))
    with pytest.raises(MethodError) as exc:
        _frame_protocol().scorer().score(raw, [sample])
    assert str(exc.value) == (
        "the map of sample 'wide/0' has 60 rows × 30 columns for an image 30 pixels high and 60 "
        "wide: it is transposed (numpy shapes are (height, width), PIL sizes (width, height)); "
        "return maps shaped (height, width)"
    )


def test_a_map_of_another_aspect_ratio_is_warned_about_once(caplog):
    from groundbench.types import RawMaps

    scorer = _frame_protocol().scorer()
    sample = _wide_sample()
    with caplog.at_level("WARNING", logger="groundbench.protocol_scorer"):
        scorer.score(RawMaps(("wide/0",), (torch.rand(15, 30),)), [sample])  # 1:2 like the image
        scorer.score(RawMaps(("wide/0",), (torch.rand(7, 15),)), [sample])  # off by one cell
        assert caplog.messages == []
        scorer.score(RawMaps(("wide/0",), (torch.rand(24, 24),)), [sample])
        scorer.score(RawMaps(("wide/0",), (torch.rand(24, 24),)), [sample])
    assert len(caplog.messages) == 1
    assert caplog.messages[0].startswith(
        "the map of sample 'wide/0' is 24×24 (rows × columns) for an image of 30×60 pixels: its "
        "aspect ratio differs by 50%, so it is stretched over the image; if the model saw a "
        "crop or a letterbox, give RawMaps.extents"
    )


def test_a_centre_crop_map_scores_where_it_points_once_its_extent_is_given():
    from groundbench.types import RawMaps

    # the model saw the centre 30 × 30 crop (columns 15..45) and points at the target's centre
    crop = torch.zeros(30, 30)
    crop[15, 36 - 15] = 1.0
    sample = _wide_sample()
    scorer = _frame_protocol().scorer()
    stretched = scorer.score(RawMaps(("wide/0",), (crop,)), [sample])
    placed = scorer.score(RawMaps(("wide/0",), (crop,), extents=[(15, 0, 45, 30)]), [sample])
    assert stretched.values[0, 0] == 0.0 and placed.values[0, 0] == 1.0


@pytest.mark.parametrize("region", ["boxes", "mask"])
def test_a_resolution_cap_scales_maps_boxes_and_masks_together(region):
    from pycocotools import mask as mask_utils

    from groundbench.protocol import protocol_from_mapping
    from groundbench.types import GroundingSample, RawMaps

    def protocol(resolution):
        return protocol_from_mapping({
            "schema": 1, "dataset": {"adapter": "native", "split": "test"},
            "resolution": resolution, "region": region,
            "pipeline": {"upsample": {"mode": "nearest"},
                         "threshold": {"method": "fraction_of_max", "value": 0.5},
                         "regions": "union_box"},
            "metrics": [{"name": "pointing"}, {"name": "box_acc", "iou": 0.9}, {"name": "miou"}],
        })  # fmt: skip

    box = [120.0, 60.0, 280.0, 180.0]  # on a 400 × 300 image
    truth = np.zeros((300, 400), np.uint8)
    truth[60:180, 120:280] = 1
    rle = mask_utils.encode(np.asfortranarray(truth))
    sample = GroundingSample(id="big/0", image_path="none.png", width=400, height=300,
                             text="a box", phrase="box", span=(2, 5), boxes=np.array([box]),
                             mask={"size": [300, 400], "counts": rle["counts"].decode()})  # fmt: skip
    raw = RawMaps(("big/0",), (torch.from_numpy(truth.astype(np.float32)),))
    capped = protocol({"max_side": 100}).scorer()
    maps = capped.heatmaps(raw, [sample])
    assert tuple(maps.heatmap.shape[1:]) == (75, 100)
    assert maps.pred_box[0].tolist() == [30.0, 15.0, 70.0, 45.0]  # the box, scaled by 1/4
    full = protocol("image").scorer().score(raw, [sample])
    assert full.values.tolist() == capped.score(raw, [sample]).values.tolist() == [[1.0, 1.0, 1.0]]
