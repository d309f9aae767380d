"""``groundbench evaluate`` with MaxBoxAccV2 calibrated on val: the report, its hits file,
and the validator that recomputes the split-level numbers from that file."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import shutil

import numpy as np
import pytest
from click.testing import CliRunner

from groundbench.cli import main
from groundbench.evaluation.data import load_samples
from groundbench.leaderboard.entries import add_entry, read_entry
from groundbench.leaderboard.validate import SubmissionError, validate_report_dir
from groundbench.protocol import load_protocol
from groundbench.synthetic import PROBE_SPLITS, generate

pytestmark = pytest.mark.slow

PROTOCOL = """\
schema: 1
dataset: {adapter: native, name: synth-tiny, split: test}
pipeline: {normalise: none, upsample: {mode: bilinear}}
metrics: [{name: soft_iou}]
split_metrics: {maxboxacc: {calibration_split: val}, pxap: {}}
bootstrap: {resamples: 50, seed: 0}
"""


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    root = tmp_path_factory.mktemp("wsol")
    scenes = {"train": 1, "val": 2, "test": 3} | {name: 1 for name in PROBE_SPLITS}
    data = generate(root / "synth", {"scenes": scenes}, seed=0, progress=False)
    (root / "wsol.yaml").write_text(PROTOCOL, encoding="utf-8")
    return {"root": root, "data": data}


def _evaluate(ws, out, method):
    args = ["evaluate", "--protocol", str(ws["root"] / "wsol.yaml"), "--method", method]
    args += ["--out", str(out), "--data-root", str(ws["data"])]
    result = CliRunner().invoke(main, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def _ids(ws, split):
    overrides = [f"dataset.split={split}", "split_metrics=null"]
    protocol = load_protocol(str(ws["root"] / "wsol.yaml"), overrides)
    return sorted(s.id for s in load_samples(protocol, ws["data"]))


def test_oracle_boxes_hit_from_the_first_positive_threshold(workspace, tmp_path):
    out = tmp_path / "oracle"
    shown = _evaluate(workspace, out, "oracle_box")
    report = json.loads((out / "report.json").read_text())
    mb = report["split_metrics"]["maxboxacc"]
    # the box indicator: τ = 0 keeps the whole image (one box, too large); any τ in (0, 1)
    # keeps exactly the boxes, so the first best threshold is 0.01 at every IoU level
    assert mb["calibrated"] == {
        "value": 1.0,
        "per_delta": {"0.3": 1.0, "0.5": 1.0, "0.7": 1.0},
        "thresholds": {"0.3": 0.01, "0.5": 0.01, "0.7": 0.01},
    }
    assert mb["max_over_thresholds"] == mb["calibrated"]
    assert mb["calibration"]["split"] == "val" and mb["n"] == report["dataset"]["n_samples"]
    # PxAP of the box map against the masks: every mask pixel is inside its box, so scores
    # in the top two bins ([0.99, 1) and [1, 2)); the curve has two steps, computed by hand
    px = report["split_metrics"]["pxap"]
    hist = list(csv.DictReader(io.StringIO((out / "pxap_histograms.csv").read_text())))
    pos = np.array([[int(c) for c in r["positives"].split()] for r in hist]).sum(axis=0)
    neg = np.array([[int(c) for c in r["negatives"].split()] for r in hist]).sum(axis=0)
    assert pos[:99].sum() == 0 and pos[101] == neg[101] == 0 and pos.sum() > 0
    top_recall = pos[100] / pos.sum()
    top_precision = pos[100] / (pos[100] + neg[100]) if pos[100] + neg[100] else 0.0
    both = (pos[99] + pos[100]) / (pos[99] + pos[100] + neg[99] + neg[100])
    want = top_precision * top_recall + both * (1 - top_recall)
    assert px["value"] == pytest.approx(want, abs=1e-12)
    assert "maxboxacc  calibrated on val" in shown
    assert "maxboxacc  calibrated on val" in (out / "report.md").read_text()
    rows = list(csv.DictReader(io.StringIO((out / "maxboxacc_hits.csv").read_text())))
    by_split = {s: [r["id"] for r in rows if r["split"] == s] for s in ("evaluated", "calibration")}
    assert by_split == {"evaluated": _ids(workspace, "test"), "calibration": _ids(workspace, "val")}
    assert mb["n_calibration"] == len(by_split["calibration"])
    for r in rows:
        assert r["hits@0.5"] == "0" + "1" * 99
    validate_report_dir(out)


def test_a_constant_map_hits_nothing(workspace, tmp_path):
    out = tmp_path / "uniform"
    _evaluate(workspace, out, "uniform")
    mb = json.loads((out / "report.json").read_text())["split_metrics"]["maxboxacc"]
    assert mb["calibrated"]["value"] == 0.0 and mb["max_over_thresholds"]["value"] == 0.0


def test_the_validator_recomputes_from_the_hits_file(workspace, tmp_path):
    out = tmp_path / "centre"
    _evaluate(workspace, out, "centre_prior")
    validate_report_dir(out)

    def edited(name, change):
        copy = tmp_path / f"edit-{name}"
        shutil.copytree(out, copy)
        change(copy)
        with pytest.raises(SubmissionError) as err:
            validate_report_dir(copy)
        return str(err.value)

    def bump_value(d):
        r = json.loads((d / "report.json").read_text())
        r["split_metrics"]["maxboxacc"]["calibrated"]["value"] += 0.1
        (d / "report.json").write_text(json.dumps(r))

    assert "split_metrics.maxboxacc.calibrated is" in edited("value", bump_value)

    def bump_pxap(d):
        r = json.loads((d / "report.json").read_text())
        r["split_metrics"]["pxap"]["value"] += 0.01
        (d / "report.json").write_text(json.dumps(r))

    assert "split_metrics.pxap.value is" in edited("pxap", bump_pxap)
    assert "pxap_histograms.csv does not match split_metrics.pxap.sha256" in edited(
        "pxap-sha", lambda d: (d / "pxap_histograms.csv").write_text("id,positives,negatives\n")
    )

    def flip_hits(d):
        path = d / "maxboxacc_hits.csv"
        lines = path.read_text().splitlines(keepends=True)
        lines[1] = lines[1].replace(",0", ",1", 1)
        path.write_text("".join(lines))
        r = json.loads((d / "report.json").read_text())
        r["split_metrics"]["maxboxacc"]["sha256"] = hashlib.sha256(path.read_bytes()).hexdigest()
        (d / "report.json").write_text(json.dumps(r))

    # a hit flipped in the file (its sha256 updated to match) moves a recomputed number
    message = edited("hits", flip_hits)
    assert "gives" in message and "re-run groundbench evaluate" in message
    assert "does not match split_metrics.maxboxacc.sha256" in edited(
        "sha", lambda d: (d / "maxboxacc_hits.csv").write_text("split,id\n")
    )
    assert "is missing beside report.json" in edited(
        "missing", lambda d: (d / "maxboxacc_hits.csv").unlink()
    )


def test_a_leaderboard_entry_carries_the_hits_file(workspace, tmp_path):
    out = tmp_path / "centre"
    _evaluate(workspace, out, "centre_prior")
    path = add_entry(out, tmp_path / "board")
    entry = read_entry(path)
    assert (
        entry.report["split_metrics"]
        == json.loads((out / "report.json").read_text())["split_metrics"]
    )
    payload = json.loads(path.read_text())
    del payload["split_files"]
    path.write_text(json.dumps(payload))
    with pytest.raises(SubmissionError, match="is missing beside report.json"):
        read_entry(path)
    assert np.isfinite(entry.report["split_metrics"]["maxboxacc"]["calibrated"]["value"])


def test_the_evaluated_split_goes_through_the_method_once(workspace, tmp_path, monkeypatch):
    from groundbench.evaluate import evaluate
    from groundbench.evaluation.scoring import Scorer
    from groundbench.evaluation.split_metrics import SplitCache

    calls: list[list[str]] = []
    maps = Scorer._maps  # every method run goes through it (scoring, calibration, gallery)

    def counting(self, samples, images):
        calls.append([s.id for s in samples])
        return maps(self, samples, images)

    monkeypatch.setattr(Scorer, "_maps", counting)
    protocol, data = str(workspace["root"] / "wsol.yaml"), workspace["data"]
    run = {"data_root": data, "progress": False, "batch_size": 4}
    evaluate(protocol, "centre_prior", out_dir=tmp_path / "once", **run)
    test_ids, val_ids = _ids(workspace, "test"), _ids(workspace, "val")
    # batches of 4: the scoring pass over test (whose maps give the hits), then val for the
    # calibration; single maps are the gallery's
    batched = [i for ids in calls if len(ids) > 1 for i in ids]
    assert sorted(batched) == sorted(test_ids + val_ids)

    # hits missing from the cache (a run stopped between a batch's records and its hits)
    # are computed again, to the same file
    monkeypatch.setattr(SplitCache, "offer", lambda self, samples, scored: None)
    evaluate(protocol, "centre_prior", out_dir=tmp_path / "again", **run)
    a, b = (tmp_path / d / "maxboxacc_hits.csv" for d in ("once", "again"))
    assert a.read_bytes() == b.read_bytes()


def test_pxap_needs_masks(tmp_path, monkeypatch):
    from PIL import Image

    monkeypatch.setenv("GROUNDBENCH_CACHE", str(tmp_path / "cache"))
    data = tmp_path / "data"  # one sample with a box and no mask, in the native format
    (data / "images").mkdir(parents=True)
    Image.fromarray(np.zeros((32, 40, 3), np.uint8)).save(data / "images" / "0.png")
    rec = {"id": "tiny/000", "image": "images/0.png", "width": 40, "height": 32,
           "text": "a thing", "phrase": "thing", "span": [2, 7], "boxes": [[2, 4, 10, 20]]}  # fmt: skip
    (data / "test.jsonl").write_text(json.dumps(rec) + "\n", encoding="utf-8")
    manifest = "name: tiny\nformat_version: 1\nsplits:\n  test: {kind: grounding}\n"
    (data / "dataset.yaml").write_text(manifest, encoding="utf-8")
    protocol = tmp_path / "p.yaml"
    protocol.write_text(
        "schema: 1\ndataset: {adapter: native, name: tiny, split: test}\n"
        "metrics: [{name: soft_iou}]\nsplit_metrics: {pxap: {}}\n",
        encoding="utf-8",
    )
    args = ["evaluate", "--protocol", str(protocol), "--method", "uniform"]
    result = CliRunner().invoke(
        main, args + ["--out", str(tmp_path / "o"), "--data-root", str(data)]
    )
    assert result.exit_code == 1
    assert "sample 'tiny/000' has no mask, which split_metrics.pxap scores against" in result.output
