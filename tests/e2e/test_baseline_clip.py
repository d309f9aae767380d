"""``groundbench baseline-clip`` end to end on a tiny synthetic set with a tiny CLIP."""

from __future__ import annotations

import pytest
import torch
from click.testing import CliRunner

pytest.importorskip("transformers")

from groundbench import clip_baseline  # noqa: E402
from groundbench.cli import main  # noqa: E402
from groundbench.leaderboard import load_entries  # noqa: E402
from groundbench.synthetic import generate  # noqa: E402

TINY = ["width=16", "layers=1", "heads=2", "batch_size=8", "image_size=32", "steps=3"]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    scenes = {"train": 12, "val": 1, "test": 3}
    return generate(tmp_path_factory.mktemp("synth") / "synth", {"scenes": scenes}, progress=False)


@pytest.mark.slow
def test_trains_scores_three_recipes_and_builds_the_board_then_reuses_everything(
    data, tmp_path, monkeypatch
):
    torch.set_num_threads(1)
    monkeypatch.setattr(clip_baseline, "synth_protocols", lambda: ["synth_test.albef"])
    args = [
        "baseline-clip",
        "--out",
        str(tmp_path / "run"),
        "--data-root",
        str(data),
        "--rise-masks",
        "8",
    ]
    args += [x for s in TINY for x in ("--set", s)]
    first = CliRunner().invoke(main, args, catch_exceptions=False)
    assert first.exit_code == 0, first.output
    names = sorted(e.method_name for e in load_entries(tmp_path / "run" / "board"))
    assert names == [
        "hf:clip-synth:gradcam",
        "hf:clip-synth:relevance",
        "hf:clip-synth:rise?num_masks=8",
    ]
    again = CliRunner().invoke(main, args, catch_exceptions=False)
    assert "training: reusing" in again.stderr
    assert again.stderr.count("up to date") == 3
