"""The report's model card: declared by a heatmap file's sidecar, computed for a checkpoint."""

import hashlib
from types import SimpleNamespace

import numpy as np
from PIL import Image

from groundbench.evaluate import evaluate
from groundbench.evaluation.card import model_card_section
from groundbench.model_card import card_sha256
from groundbench.types import GroundingSample


def _sample(i, path):
    return GroundingSample(
        id=f"t/{i}", image_path=str(path), width=8, height=8, text="a cup", phrase="cup",
        span=(2, 5), boxes=np.array([[1.0, 1.0, 3.0, 3.0]]),
    )  # fmt: skip


def _digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


def test_checkpoint_card_counts_evaluated_images_seen_in_training(tmp_path, monkeypatch):
    monkeypatch.setenv("GROUNDBENCH_CACHE", str(tmp_path / "cache"))
    paths = []
    for i in range(3):
        paths.append(tmp_path / f"{i}.png")
        Image.new("RGB", (8, 8), (i * 40, 0, 0)).save(paths[-1])
    copy = tmp_path / "copy_of_1.png"  # the same bytes under another name still count
    copy.write_bytes(paths[1].read_bytes())
    samples = [_sample(0, paths[0]), _sample(1, paths[1]), _sample(2, copy), _sample(3, paths[2])]
    method = SimpleNamespace(
        name="checkpoint",
        supervision="box-free",
        data_fingerprint="f" * 64,
        training_data=("synth/train",),
        training_images=(_digest(paths[1]), "0" * 16),
    )
    card = model_card_section(method, samples)
    assert card["overlap"] == {
        "training_images": 2,
        "evaluated_images": 3,
        "shared_images": 1,
        "shared_samples": 2,
        "examples": ["t/1", "t/2"],
    }
    assert card["evaluated_images_in_training"] == "yes" and card["selected_on"] == "none"
    assert card["training_data"] == [{"name": "synth/train", "fingerprint": "f" * 64}]
    assert card["sha256"] == card_sha256({k: v for k, v in card.items() if k != "sha256"})
    method.training_images = None  # a checkpoint written before training images were kept
    unknown = model_card_section(method, samples)
    assert unknown["overlap"] is None and unknown["evaluated_images_in_training"] == "unknown"
    assert model_card_section(SimpleNamespace(name="uniform"), samples) is None


def test_heatmap_report_carries_its_sidecar_card_and_class(tiny, tmp_path):
    protocol, root = tiny
    ids = [f"tiny/{k:03d}" for k in range(6)]
    maps = tmp_path / "maps.npz"
    np.savez(maps, **{i: np.random.default_rng(0).random((4, 5)) for i in ids})
    plain = evaluate(str(protocol), f"heatmaps:{maps}", out_dir=tmp_path / "a", data_root=root,
                     progress=False)  # fmt: skip
    assert plain.report["method"]["supervision"] == "undeclared"
    assert plain.report["model_card"] is None
    (tmp_path / "maps.model_card.yaml").write_text(
        "schema: 1\nsupervision: detector\ntraining_data: [coco-2017-train]\nselected_on: val\n"
    )
    carded = evaluate(str(protocol), f"heatmaps:{maps}", out_dir=tmp_path / "b", data_root=root,
                      progress=False)  # fmt: skip
    assert carded.report["method"]["supervision"] == "detector"
    card = carded.report["model_card"]
    assert (card["source"], card["selected_on"]) == ("declared", "val")
    assert card["training_data"] == [{"name": "coco-2017-train", "fingerprint": ""}]
    md = (tmp_path / "b" / "report.md").read_text()
    assert "- model card: trained on coco-2017-train; selected on val; evaluated images in " in md
