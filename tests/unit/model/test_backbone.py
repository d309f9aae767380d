"""Pretrained backbones: tokens at their own stride, normalisation, fingerprints, checks."""

from __future__ import annotations

import importlib.util
import re
import shutil

import pytest
import torch
import transformers
from tiny_backbones import MEAN, STD, tiny_clip, tiny_convnext, tiny_resnet, tiny_vit

from groundbench.model import ConfigError, load_config
from groundbench.model.backbone import (
    BackboneError,
    fingerprint_files,
    load_backbone,
    verify_backbone,
)
from groundbench.model.network import GroundingModel


def _cfg(folder, *extra, stride=8):
    return load_config(
        "tiny", overrides=[f"model.backbone=hf:{folder}", f"model.token_stride={stride}", *extra]
    )


def _normalised(images):
    return (images - torch.tensor(MEAN).view(1, 3, 1, 1)) / torch.tensor(STD).view(1, 3, 1, 1)


def test_vit_patch_tokens_drop_the_class_token_and_use_its_normalisation(tmp_path):
    folder = tiny_vit(tmp_path / "vit")
    backbone = load_backbone(_cfg(folder).model)
    images = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    reference = transformers.AutoModel.from_pretrained(folder).eval()
    with torch.no_grad():
        expected = reference(pixel_values=_normalised(images)).last_hidden_state[:, 1:]
    assert backbone.grid == (4, 4) and backbone.channels == 16
    torch.testing.assert_close(backbone(images), expected)


@pytest.mark.parametrize("siglip", [False, True], ids=["clip", "siglip"])
def test_a_clip_or_siglip_folder_gives_its_vision_towers_patch_tokens(tmp_path, siglip):
    folder = tiny_clip(tmp_path / "clip", siglip=siglip)
    backbone = load_backbone(_cfg(folder).model)
    images = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    tower = transformers.AutoModel.from_pretrained(folder).vision_model.eval()
    with torch.no_grad():
        states = tower(pixel_values=_normalised(images)).last_hidden_state
    assert backbone.grid == (4, 4) and backbone.channels == 16
    torch.testing.assert_close(backbone(images), states if siglip else states[:, 1:])


def test_register_tokens_are_dropped_too(tmp_path):
    folder = tiny_vit(tmp_path / "dinov2", registers=True)
    backbone = load_backbone(_cfg(folder).model)
    images = torch.rand(1, 3, 32, 32)
    reference = transformers.AutoModel.from_pretrained(folder).eval()
    with torch.no_grad():
        out = reference(pixel_values=_normalised(images)).last_hidden_state
    assert out.shape[1] == 1 + 2 + 16  # class, two registers, the patches
    torch.testing.assert_close(backbone(images), out[:, 3:])


@pytest.mark.parametrize("make", [tiny_resnet, tiny_convnext])
def test_convolutional_feature_maps_become_row_major_tokens(tmp_path, make):
    folder = make(tmp_path / "cnn")
    backbone = load_backbone(_cfg(folder).model)
    images = torch.rand(2, 3, 32, 32)
    reference = transformers.AutoModel.from_pretrained(folder).eval()
    with torch.no_grad():
        fmap = reference(pixel_values=_normalised(images)).last_hidden_state  # B C h w
    assert fmap.shape[-2:] == (4, 4)
    torch.testing.assert_close(backbone(images), fmap.flatten(2).transpose(1, 2))


def test_a_stage_is_chosen_by_backbone_layer(tmp_path):
    folder = tiny_resnet(tmp_path / "resnet")
    backbone = load_backbone(_cfg(folder, "model.backbone_layer=1", stride=4).model)
    assert backbone.grid == (8, 8) and backbone.channels == 8  # stage 1: stride 4, 8 channels


def test_a_token_stride_that_is_not_the_backbones_names_the_right_one(tmp_path):
    folder = tiny_resnet(tmp_path / "resnet")
    with pytest.raises(BackboneError) as err:
        load_backbone(_cfg(folder, stride=4).model)
    assert str(err.value) == (
        f"backbone hf:{folder} gives a 4 × 4 token grid at 32 px, but model.token_stride 4 "
        "asks for 8 × 8; set model.token_stride: 8"
    )


def test_a_backbone_without_its_preprocessor_config_is_refused(tmp_path):
    folder = tiny_vit(tmp_path / "vit")
    (folder / "preprocessor_config.json").unlink()
    with pytest.raises(
        BackboneError, match=re.escape(f"{folder}/preprocessor_config.json is missing")
    ):
        load_backbone(_cfg(folder).model)


def test_a_missing_folder_is_named(tmp_path):
    with pytest.raises(BackboneError) as err:
        load_backbone(_cfg(tmp_path / "nowhere").model)
    assert str(err.value) == (
        f"backbone hf:{tmp_path / 'nowhere'}: {tmp_path / 'nowhere'} does not exist; save the "
        "model there with save_pretrained (and its image processor, for preprocessor_config.json)"
    )


def test_the_fingerprint_follows_the_files_and_verify_names_what_changed(tmp_path):
    folder = tiny_vit(tmp_path / "vit")
    cfg = _cfg(folder).model
    record = load_backbone(cfg).record
    assert record["fingerprint"] == fingerprint_files(cfg)[0]
    assert sorted(record["files"]) == [
        "config.json",
        "model.safetensors",
        "preprocessor_config.json",
    ]
    fix = "FIX"
    assert verify_backbone(record, None, fix) == {"backbone": f"hf:{folder.resolve()}"}
    moved = shutil.copytree(folder, tmp_path / "moved")
    assert verify_backbone(record, moved, fix) == {"backbone": f"hf:{moved}"}
    tiny_vit(folder, seed=1)  # other weights, same names
    assert fingerprint_files(cfg)[0] != record["fingerprint"]
    with pytest.raises(BackboneError, match=re.escape(
        f"backbone hf:{folder}: {folder.resolve() / 'model.safetensors'} changed since training"
    )):  # fmt: skip
        verify_backbone(record, None, fix)
    (moved / "extra.txt").write_text("x")
    with pytest.raises(BackboneError, match=re.escape(f"{moved / 'extra.txt'} was not there")):
        verify_backbone(record, moved, fix)
    with pytest.raises(BackboneError, match=re.escape(f"{tmp_path / 'gone'} does not exist")):
        verify_backbone(record, tmp_path / "gone", fix)


def test_a_frozen_backbone_stays_frozen_in_eval_mode_and_out_of_the_stored_weights(tmp_path):
    folder = tiny_resnet(tmp_path / "resnet")
    cfg = _cfg(folder)
    model = GroundingModel(cfg.model, [0, 1, 1]).train()
    backbone = model.encoder.backbone
    assert not backbone.model.training
    assert not any(p.requires_grad for p in backbone.parameters())
    stored = model.trained_state_dict()
    assert stored and not any(k.startswith("encoder.backbone.") for k in stored)
    trainable = GroundingModel(_cfg(folder, "model.backbone_trainable=true").model, [0, 1, 1])
    assert any(k.startswith("encoder.backbone.model.") for k in trainable.trained_state_dict())
    assert all(p.requires_grad for p in trainable.encoder.backbone.parameters())


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["model.backbone=vit"], "config.model.backbone: 'vit' is not cnn, hf:DIR"),
        (["model.backbone=timm:resnet50"], "config.model.backbone_weights: a timm backbone needs"),
        (["model.backbone_trainable=true"], "config.model.backbone: backbone_layer and"),
        (["model.backbone=hf:x", "model.token_stride=16", "train.grayscale_prob=0.5"],
         "config.train.grayscale_prob: cached backbone tokens are computed once per image"),
    ],
)  # fmt: skip
def test_backbone_settings_are_checked(overrides, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_config(overrides=overrides)


def test_uncached_grey_steps_with_a_backbone_are_allowed():
    cfg = load_config(
        overrides=["model.backbone=hf:x", "train.grayscale_prob=0.5", "train.cache_tokens=false"]
    )
    assert cfg.train.grayscale_prob == 0.5


@pytest.mark.skipif(importlib.util.find_spec("timm") is not None, reason="timm is installed")
def test_a_timm_backbone_without_timm_says_how_to_get_it(tmp_path):
    weights = tmp_path / "resnet50.safetensors"
    weights.write_bytes(b"x")
    cfg = load_config(
        overrides=[
            "model.backbone=timm:resnet50",
            f"model.backbone_weights={weights}",
            "model.image_size=64",
            "model.token_stride=32",
        ]  # fmt: skip
    )
    with pytest.raises(BackboneError, match=re.escape(
        "backbone timm:resnet50 needs the timm package, which does not import here"
    )):  # fmt: skip
        load_backbone(cfg.model)


@pytest.mark.skipif(importlib.util.find_spec("timm") is None, reason="timm is not installed")
def test_a_timm_backbone_gives_its_feature_map(tmp_path):
    import timm
    from safetensors.torch import save_file

    model = timm.create_model("resnet18", pretrained=False, num_classes=0)
    weights = tmp_path / "resnet18.safetensors"
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, weights)
    cfg = load_config(
        overrides=[
            "model.backbone=timm:resnet18",
            f"model.backbone_weights={weights}",
            "model.image_size=64",
            "model.token_stride=32",
        ]  # fmt: skip
    )
    backbone = load_backbone(cfg.model)
    assert backbone.grid == (2, 2) and backbone(torch.rand(1, 3, 64, 64)).shape == (1, 4, 512)
