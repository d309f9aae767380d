"""``groundbench evaluate`` with region ranking: gt proposals and a detector file."""

from __future__ import annotations

import csv
import io
import json

import pytest
from click.testing import CliRunner

from dataset_adapters.proposals import image_key
from groundbench.cli import main
from groundbench.evaluation.data import load_samples
from groundbench.protocol import load_protocol
from groundbench.synthetic import PROBE_SPLITS, generate

pytestmark = pytest.mark.slow

PROTOCOL = """\
schema: 1
dataset: {adapter: native, name: synth-tiny, split: test}
pipeline: {normalise: none, upsample: {mode: bilinear}}
proposals: PROPOSALS
metrics:
  - {name: rank_acc}
  - {name: proposal_rank, rule: ">"}
bootstrap: {resamples: 50, seed: 0}
"""


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    root = tmp_path_factory.mktemp("ranking")
    scenes = {"train": 1, "val": 1, "test": 5} | {name: 1 for name in PROBE_SPLITS}
    data = generate(root / "synth", {"scenes": scenes}, seed=0, progress=False)
    (root / "gt.yaml").write_text(PROTOCOL.replace("PROPOSALS", "gt"), encoding="utf-8")
    (root / "file.yaml").write_text(
        PROTOCOL.replace("PROPOSALS", "{file: dets.json}"), encoding="utf-8"
    )
    samples = load_samples(load_protocol(str(root / "gt.yaml")), data)
    # a detector file holding each image's ground-truth boxes, shifted by 1 px, plus an id
    # that matches no image
    dets = {"no-such-image": [[0, 0, 1, 1]]}
    for s in samples:
        dets.setdefault(image_key(s), []).extend(
            [float(b[0]) + 1, float(b[1]), float(b[2] - b[0]), float(b[3] - b[1])] for b in s.boxes
        )
    (data / "dets.json").write_text(json.dumps(dets), encoding="utf-8")
    return {"root": root, "data": data, "n": len(samples)}


def _evaluate(ws, tmp_path, protocol):
    out = tmp_path / protocol
    args = ["evaluate", "--protocol", str(ws["root"] / f"{protocol}.yaml")]
    args += ["--method", "oracle_box", "--out", str(out), "--data-root", str(ws["data"])]
    result = CliRunner().invoke(main, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return json.loads((out / "report.json").read_text()), (out / "samples.csv").read_text()


def test_the_oracle_ranks_its_own_box_first(workspace, tmp_path):
    report, samples_csv = _evaluate(workspace, tmp_path, "gt")
    rows = list(csv.DictReader(io.StringIO(samples_csv)))
    assert len(rows) == workspace["n"]
    assert report["metrics"]["rank_acc@0.5"]["all"]["mean"] == 1.0
    assert report["metrics"]["proposal_rank@0.5[>]"]["all"]["mean"] == 1.0
    assert report["protocol"]["canonical"]["proposals"] == "gt"


def test_a_detector_file_joins_the_fingerprint_and_its_problems_are_reported(workspace, tmp_path):
    gt, _ = _evaluate(workspace, tmp_path, "gt")
    det, _ = _evaluate(workspace, tmp_path, "file")
    assert det["dataset"]["fingerprint"] != gt["dataset"]["fingerprint"]
    assert det["protocol"]["canonical"]["proposals"] == {"file": "dets.json"}
    assert (
        "proposals dets.json: 1 image ids match no image of the split (ignored), e.g. "
        "no-such-image" in det["dataset"]["warnings"]
    )
    assert det["metrics"]["rank_acc@0.5"]["all"]["n"] == workspace["n"]
