"""End to end: ``groundbench train`` on a small synthetic set, then the checkpoint as a method."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from dataset_adapters import open_dataset
from groundbench.cli import main
from groundbench.methods.base import METHODS
from groundbench.synthetic import generate

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fixtures"))

from adapter_files import write_flickr  # noqa: E402

SCENES = {"train": 48, "val": 6, "test": 1} | {
    s: 1
    for s in (
        "compositional",
        "relational",
        "distractors",
        "paraphrase",
        "occlusion",
        "off_centre",
        "small",
    )
}


@pytest.fixture(scope="module")
def synth_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("synth") / "synth"
    return generate(root, {"height": 48, "width": 48, "scenes": SCENES}, seed=0, progress=False)


@pytest.mark.slow
def test_train_cli_then_checkpoint_method(synth_root, tmp_path):
    torch.set_num_threads(1)
    out = tmp_path / "run"
    args = [
        "train",
        "--preset",
        "tiny",
        "--out",
        str(out),
        "--data",
        f"native:{synth_root}",
        "--json",
        "--set",
        "train.steps=24",
        "--set",
        "train.lr=5e-3",
        "--set",
        "train.threads=1",
    ]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["steps"] == 24
    assert summary["final_loss"] < summary["first_loss"]
    for name in ("model.safetensors", "train_state.pt", "log.csv", "loss.png"):
        assert (out / name).is_file(), name

    method = METHODS.get("checkpoint")(str(out / "model.safetensors"))
    assert (method.supervision, method.needs_images) == ("box-free", True)
    samples = open_dataset("native", synth_root).load_samples("val")[:5]
    raw = method.predict(samples, [s.load_image() for s in samples], device=torch.device("cpu"))
    assert raw.kind == "attention" and raw.ids == tuple(s.id for s in samples)
    assert raw.maps[0].shape == (1, 1, 8, 8)  # L H h w for the tiny preset
    assert len(method.fingerprint()) == 64


def test_train_cli_reads_flickr30k_entities_captions(tmp_path):
    root = write_flickr(tmp_path / "flickr30k")
    out = tmp_path / "run"
    args = ["train", "--preset", "tiny", "--out", str(out), "--json"]
    args += ["--data", f"flickr30k_entities:{root}", "--split", "test"]
    args += ["--set", "train.steps=3", "--set", "train.images_per_step=2"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout.strip().splitlines()[-1])["steps"] == 3
    from groundbench.model.checkpoint import load_checkpoint

    vocab = load_checkpoint(out / "model.safetensors").vocab
    assert len(vocab) > 5 and "the" not in vocab.words  # open-class caption words only
    warned = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    assert warned == [
        f"warning: 2 of the 2 training images are evaluated by flickr30k_test.{v} (split test): "
        "2 of its 2 images: its scores for this model are not held out"
        for v in ("albef", "mg", "zhang2016")
    ]


def test_train_cli_reports_a_bad_data_spec(tmp_path):
    result = CliRunner().invoke(
        main, ["train", "--preset", "tiny", "--out", str(tmp_path), "--data", "native"]
    )
    assert result.exit_code == 1
    assert "--data 'native': write it as ADAPTER:ROOT, e.g. native:data/synth" in result.output


def test_train_cli_passes_adapter_options_and_warns_about_evaluated_images(tmp_path):
    from adapter_files import write_refcoco

    from groundbench.model.checkpoint import read_metadata

    root = write_refcoco(tmp_path / "refer", dataset="refcoco+")
    out = tmp_path / "run"
    args = ["train", "--preset", "tiny", "--out", str(out), "--data", f"refcoco:{root}"]
    args += ["-o", "dataset=refcoco+", "--split", "val"]
    args += ["--set", "train.steps=2", "--set", "train.images_per_step=1"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    meta = read_metadata(out / "model.safetensors")["training_data"]
    assert meta["adapter"] == "refcoco" and meta["options"] == {"dataset": "refcoco+"}
    assert meta["split"] == "val"
    # the val images are what refcoco+_val.albef evaluates (and testA/testB share image 1)
    assert meta["protocol_overlap"] == {
        "refcoco+_testA.albef": 1,
        "refcoco+_val.albef": 1,
    }
    assert (
        "warning: 1 of the 1 training images are evaluated by refcoco+_val.albef (split val): "
        "1 of its 1 images: its scores for this model are not held out"
    ) in result.stderr
    assert "evaluate it: groundbench evaluate --protocol refcoco+_testB.albef" in result.stdout


@pytest.mark.slow
def test_train_cli_refuses_a_used_folder_and_reports_resumes(tmp_path):
    root = write_flickr(tmp_path / "flickr30k")
    out = tmp_path / "run"
    base = ["train", "--preset", "tiny", "--out", str(out)]
    base += ["--data", f"flickr30k_entities:{root}", "--split", "train"]
    base += ["--set", "train.images_per_step=1"]
    assert CliRunner().invoke(main, [*base, "--set", "train.steps=2"]).exit_code == 0
    again = CliRunner().invoke(main, [*base, "--set", "train.steps=2"])
    assert again.exit_code == 1
    assert (
        f"Error: {out} already holds files (log.csv, loss.png, model.safetensors, " in again.output
    )
    done = CliRunner().invoke(main, [*base, "--set", "train.steps=2", "--resume"])
    assert done.exit_code == 0, done.output
    assert done.stdout.startswith(f"already complete: {out} holds all 2 steps; to train on")
    more = CliRunner().invoke(main, [*base, "--set", "train.steps=3", "--resume"])
    assert more.exit_code == 0, more.output
    assert more.stdout.startswith("trained 1 steps (now 3 of 3, resumed at step 2) in ")
    assert "--protocol flickr30k_test.albef " in more.stdout


def test_train_cli_prints_one_summary_under_torchrun(tmp_path, monkeypatch):
    """Only rank 0 reports: another rank's result prints nothing."""
    import groundbench.model.train as train_mod
    from groundbench.model.train import TrainResult

    def fake_train(config, records, out_dir, **kwargs):
        return TrainResult(tmp_path / "m.safetensors", 3, 1.0, 2.0, 1.0, 10.0, start=0, rank=1)

    monkeypatch.setattr(train_mod, "train", fake_train)
    root = write_flickr(tmp_path / "flickr30k")
    args = ["train", "--preset", "tiny", "--out", str(tmp_path / "run")]
    args += ["--data", f"flickr30k_entities:{root}", "--split", "train"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert result.stdout == ""
