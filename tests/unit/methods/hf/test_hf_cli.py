"""``groundbench evaluate --method hf:DIR:RECIPE`` end to end through the CLI."""

from __future__ import annotations

import csv
import json

import pytest
from click.testing import CliRunner

from groundbench.cli import main
from groundbench.synthetic import PROBE_SPLITS, generate

pytestmark = pytest.mark.slow


def test_evaluate_a_saved_clip_checkpoint_with_relevance(hf_dirs, tmp_path):
    scenes = {"train": 1, "val": 1, "test": 8} | {name: 1 for name in PROBE_SPLITS}
    data = generate(tmp_path / "synth", {"scenes": scenes}, seed=0, progress=False)
    out = tmp_path / "report"
    args = [
        "evaluate",
        "--protocol",
        "synth_test.albef",
        "--method",
        f"hf:{hf_dirs['clip']}:relevance",
    ]
    args += ["--limit", "20", "--data-root", str(data), "--out", str(out), "--batch-size", "7"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    method = report["method"]
    assert method["supervision"] == "box-free" and method["name"] == "hf:clip:relevance"
    settings = method["settings"]
    assert settings["recipe"] == "relevance" and settings["knobs"]["start_layer"] == "last"
    assert settings["model_class"] == "CLIPModel" and settings["attn_implementation"] == "eager"
    md = (out / "report.md").read_text(encoding="utf-8")
    assert (
        "  - CLIPModel read out by `relevance`: dtype=float32, prompt={}, start_layer=last, "
        "supervision=box-free" in md
    )
    with (out / "samples.csv").open(encoding="utf-8") as f:
        assert len(list(csv.DictReader(f))) == 20
    bad = CliRunner().invoke(main, [*args[:4], f"hf:{hf_dirs['clip']}:itm-gradcam", *args[5:]])
    assert bad.exit_code == 1 and "recipe itm-gradcam does not fit CLIPModel" in bad.output
    assert "Traceback" not in bad.output
