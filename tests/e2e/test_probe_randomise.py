"""``groundbench probe randomise``: weight-free maps survive, the reference model's do not."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from dataset_adapters import open_dataset
from groundbench.cli import main
from groundbench.model import load_config
from groundbench.model.checkpoint import save_checkpoint
from groundbench.model.language import Vocabulary
from groundbench.model.network import GroundingModel
from groundbench.synthetic import generate
from groundbench.types import RawMaps


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    return generate(
        tmp_path_factory.mktemp("synth") / "synth",
        {"scenes": {"train": 4, "val": 1, "test": 4}},
        progress=False,
    )


@pytest.fixture(scope="module")
def checkpoint(synth, tmp_path_factory):
    """A randomly initialised reference model of the tiny preset (its maps depend on weights)."""
    config = load_config("tiny")
    captions = open_dataset("native", synth).load_captions("train")
    vocab = Vocabulary.build((c.text for c in captions), min_count=1)
    torch.manual_seed(0)
    model = GroundingModel(config.model, vocab.types)
    return save_checkpoint(
        tmp_path_factory.mktemp("ckpt") / "model.safetensors", model, config, vocab, "x"
    )


class EdgeMethod:
    """Maps from an edge detector of the image; it exposes a model it never uses."""

    name = "edges"
    supervision = "training-free"
    needs_images = True

    def __init__(self):
        torch.manual_seed(0)
        self.model = torch.nn.Sequential(torch.nn.Linear(3, 8), torch.nn.Linear(8, 1))

    def fingerprint(self):
        return "0" * 64

    def randomisation_layers(self):
        return {"vision": [self.model[1], self.model[0]]}

    def predict(self, samples, images, *, device):
        maps = []
        for im in images:
            g = torch.from_numpy(im.astype(np.float32)).mean(-1)
            maps.append((g[1:, 1:] - g[:-1, 1:]).abs() + (g[1:, 1:] - g[1:, :-1]).abs())
        return RawMaps(ids=tuple(s.id for s in samples), maps=tuple(maps), kind="heatmap")


def _run(*args):
    return CliRunner().invoke(main, ["probe", "randomise", "--protocol", "synth_test.albef", *args])


def test_reference_model_maps_decorrelate(synth, checkpoint, tmp_path):
    torch.set_num_threads(1)
    out = tmp_path / "probe"
    result = _run(
        "--method",
        f"checkpoint:{checkpoint}",
        "--limit",
        "6",
        "--out",
        str(out),
        "--data-root",
        str(synth),
    )
    assert result.exit_code == 0, result.output
    report = json.loads((out / "report.json").read_text())
    assert set(report["towers"]) == {"vision", "text", "grounding"}
    vision = report["towers"]["vision"]
    assert vision["end_point"]["mean"] < 0.5 and not vision["survives"]
    # the read-out attention never passes through the prediction head
    head = report["towers"]["grounding"]["layers"][0]
    assert head["layer"] == "Linear" and head["spearman"]["mean"] == pytest.approx(1.0)
    assert (out / "randomisation.png").stat().st_size > 0
    assert "| vision |" in (out / "report.md").read_text()


def test_maps_that_ignore_the_weights_are_flagged(synth, tmp_path):
    from groundbench.sanity import randomisation_probe

    report = randomisation_probe(
        "synth_test.albef", EdgeMethod(), out_dir=tmp_path / "p", limit=4, data_root=synth
    )
    assert report["towers"]["vision"]["survives"]
    assert report["towers"]["vision"]["end_point"]["mean"] == pytest.approx(1.0)


def test_methods_without_layers_are_refused(synth, tmp_path):
    result = _run(
        "--method", "centre_prior", "--out", str(tmp_path / "p"), "--data-root", str(synth)
    )
    assert result.exit_code == 1
    assert result.output.strip() == (
        "Error: method centre_prior exposes no randomisation_layers(), so there are no weights to "
        "randomise (baselines and heatmap files have none); a plugin can add "
        "randomisation_layers() -> {tower: [modules, output side first]}"
    )


def test_the_board_shows_probe_end_points_beside_the_scores(synth, tmp_path):
    from groundbench.evaluate import evaluate
    from groundbench.sanity import randomisation_probe

    evaluate(
        "synth_test.albef",
        "centre_prior",
        out_dir=tmp_path / "eval",
        data_root=synth,
        progress=False,
    )
    randomisation_probe(
        "synth_test.albef", EdgeMethod(), out_dir=tmp_path / "probe", limit=3, data_root=synth
    )
    board = tmp_path / "board"
    for report in ("eval", "probe"):
        result = CliRunner().invoke(
            main, ["leaderboard", "add", str(tmp_path / report), "--board", str(board)]
        )
        assert result.exit_code == 0, result.output
    assert (board / "sanity").is_dir() and len(list((board / "entries").rglob("*.json"))) == 1
    result = CliRunner().invoke(main, ["leaderboard", "build", "--board", str(board)])
    assert result.exit_code == 0, result.output
    readme = (board / "README.md").read_text()
    assert "## Randomisation sanity probe" in readme
    assert "| edges | `synth_test.albef` | 3 | **1.000 [1.000, 1.000] survives** |" in readme
