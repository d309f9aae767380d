"""The contrastive baseline: tokenizer, settings, training, and its directory through ``hf:``."""

from __future__ import annotations

import json

import pytest
import torch

pytest.importorskip("transformers")

from dataset_adapters import open_dataset  # noqa: E402
from groundbench.contrastive import ClipTrainConfig, train_clip  # noqa: E402
from groundbench.contrastive.tokenizer import build_tokenizer  # noqa: E402
from groundbench.contrastive.train import pick_captions, read_training  # noqa: E402
from groundbench.errors import DataFormatError, GroundbenchError  # noqa: E402
from groundbench.methods import resolve_method  # noqa: E402
from groundbench.synthetic import generate  # noqa: E402

TINY = ["width=16", "layers=1", "heads=2", "batch_size=8", "patch_size=8", "image_size=32"]


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    scenes = {"train": 24, "val": 1, "test": 3}
    return generate(tmp_path_factory.mktemp("synth") / "synth", {"scenes": scenes}, progress=False)


@pytest.fixture(scope="module")
def trained(synth, tmp_path_factory):
    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("clip") / "clip-synth"
    config = ClipTrainConfig().with_overrides([*TINY, "steps=40", "lr=3e-3", "warmup_steps=2"])
    captions = open_dataset("native", synth).load_captions("train")
    return train_clip(captions, out, config, progress=False)


def test_tokenizer_numbers_sorted_words_and_maps_unknown_words_to_unk(tmp_path):
    tok = build_tokenizer(["the red circle", "a circle, left"], max_tokens=8)
    assert tok.convert_ids_to_tokens(tok("A red star")["input_ids"]) == [
        "[BOS]", "a", "red", "[UNK]", "[EOS]",
    ]
    assert tok.get_vocab() == build_tokenizer(["a circle, left", "the red circle"], max_tokens=8).get_vocab()
    tok.save_pretrained(tmp_path)
    from transformers import AutoTokenizer

    again = AutoTokenizer.from_pretrained(tmp_path, local_files_only=True)
    assert again("the red circle")["input_ids"] == tok("the red circle")["input_ids"]


def test_settings_overrides_are_typed_and_checked():
    assert ClipTrainConfig().with_overrides(["lr=0.01", "steps=7"]).lr == 0.01
    with pytest.raises(GroundbenchError, match=r"no setting 'step'; did you mean 'steps'\?"):
        ClipTrainConfig().with_overrides(["step=7"])
    with pytest.raises(GroundbenchError, match="steps takes a int, got 'many'"):
        ClipTrainConfig().with_overrides(["steps=many"])
    with pytest.raises(GroundbenchError, match="patch_size=6 does not tile image_size=64"):
        ClipTrainConfig().with_overrides(["patch_size=6"])


def test_caption_choice_is_seeded_and_stays_with_its_image():
    owner = torch.tensor([0, 0, 0, 1, 1, 2])
    images = torch.tensor([2, 0, 1])
    a = pick_captions(owner, images, 0, 5)
    assert a.tolist() == pick_captions(owner, images, 0, 5).tolist()
    assert owner[a].tolist() == images.tolist()


def test_training_lowers_the_loss_and_writes_a_save_pretrained_directory(trained):
    assert trained.final_loss < trained.first_loss - 0.2
    names = {p.name for p in trained.out_dir.iterdir()}
    assert {"config.json", "model.safetensors", "tokenizer.json", "preprocessor_config.json"} <= names
    info = read_training(trained.out_dir)
    assert info["steps"] == 40 and info["config"]["width"] == 16
    assert json.loads((trained.out_dir / "config.json").read_text())["text_config"]["eos_token_id"] == 3


@pytest.mark.parametrize("recipe", ["relevance", "gradcam", "rise?num_masks=16"])
def test_the_trained_directory_evaluates_through_hf(trained, synth, recipe):
    method = resolve_method(f"hf:{trained.out_dir}:{recipe}")
    samples = open_dataset("native", synth).load_samples("test")[:3]
    raw = method.predict(samples, [s.load_image() for s in samples], device=torch.device("cpu"))
    side = 32 if recipe.startswith("rise") else 4
    assert [tuple(m.shape) for m in raw.maps] == [(side, side)] * 3
    assert all(torch.isfinite(m).all() for m in raw.maps)


def test_training_refuses_grounding_samples(synth, tmp_path):
    samples = open_dataset("native", synth).load_samples("test")
    with pytest.raises(DataFormatError, match="contrastive training takes CaptionRecords"):
        train_clip(samples, tmp_path, ClipTrainConfig().with_overrides(TINY))
