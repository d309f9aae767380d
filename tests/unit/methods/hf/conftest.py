"""Tiny random-init checkpoints of each hf family, saved and loaded back offline."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch


def _transformers():
    """transformers, or a skip where the vlm extra is not installed."""
    return pytest.importorskip("transformers")


WORDS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "[ENC]", "a", "the", "red", "blue"]
WORDS += ["green", "square", "circle", "triangle", "left", "of", "big", "small"]
PROCESSOR = {
    "image_mean": [0.5, 0.5, 0.5],
    "image_std": [0.25, 0.25, 0.25],
    "resample": 3,
    "do_center_crop": True,
    "rescale_factor": 1 / 255,
}
TEXT = dict(
    vocab_size=len(WORDS),
    hidden_size=32,
    num_attention_heads=4,
    intermediate_size=37,
    max_position_embeddings=16,
    pad_token_id=0,
)
VISION = dict(
    image_size=30, patch_size=6, hidden_size=32, num_attention_heads=4, intermediate_size=37
)


def save_dir(root: Path, model, size: int, mean: float = 0.5) -> Path:
    """save_pretrained the model, a BERT word-piece tokenizer and a processor config."""
    transformers = _transformers()
    root.mkdir(parents=True, exist_ok=True)
    (root / "vocab.txt").write_text("\n".join(WORDS) + "\n", encoding="utf-8")
    transformers.BertTokenizer(str(root / "vocab.txt")).save_pretrained(root)
    model.save_pretrained(root)
    proc = {
        **PROCESSOR,
        "image_mean": [mean] * 3,
        "size": {"shortest_edge": size},
        "crop_size": {"height": size, "width": size},
    }
    (root / "preprocessor_config.json").write_text(json.dumps(proc), encoding="utf-8")
    return root


def build(kind: str, seed: int = 0):
    """A tiny random-init model of ``kind`` (clip, siglip, blip)."""
    transformers = _transformers()
    torch.manual_seed(seed)
    if kind == "clip":
        cfg = transformers.CLIPConfig(
            text_config={**TEXT, "num_hidden_layers": 2, "eos_token_id": 3, "bos_token_id": 2},
            vision_config={**VISION, "num_hidden_layers": 2},
            projection_dim=16,
        )
        return transformers.CLIPModel(cfg)
    if kind == "siglip":
        cfg = transformers.SiglipConfig(
            text_config={**TEXT, "num_hidden_layers": 2},
            vision_config={**VISION, "num_hidden_layers": 2},
        )
        return transformers.SiglipModel(cfg)
    cfg = transformers.BlipConfig(
        text_config={
            **TEXT,
            "num_hidden_layers": 8,
            "encoder_hidden_size": 24,
            "bos_token_id": 2,
            "sep_token_id": 3,
        },
        vision_config={**VISION, "image_size": 24, "hidden_size": 24, "num_hidden_layers": 2},
        projection_dim=16,
    )
    return transformers.BlipForImageTextRetrieval(cfg)


SIZES = {"clip": 30, "siglip": 30, "blip": 24}


@pytest.fixture(scope="session")
def hf_dirs(tmp_path_factory) -> dict[str, Path]:
    """family → a saved tiny checkpoint directory."""
    root = tmp_path_factory.mktemp("hf")
    return {k: save_dir(root / k, build(k), SIZES[k]) for k in SIZES}


@pytest.fixture(scope="session")
def hf_tools():
    """``(build, save_dir)`` for tests that make their own checkpoint."""
    return build, save_dir
