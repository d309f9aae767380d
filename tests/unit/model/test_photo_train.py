"""Training on photographs: streamed images, cached backbone tokens, resume, changed backbones."""

from __future__ import annotations

import csv
import json
import re
import shutil

import pytest
import torch
from adapter_files import write_flickr
from tiny_backbones import tiny_vit

from dataset_adapters import open_dataset
from groundbench.errors import CheckpointError
from groundbench.methods import resolve_method
from groundbench.model import load_config
from groundbench.model.backbone import load_backbone
from groundbench.model.checkpoint import load_checkpoint
from groundbench.model.token_cache import CACHE_DIR
from groundbench.model.train import train


@pytest.fixture(scope="module")
def flickr(tmp_path_factory):
    root = write_flickr(tmp_path_factory.mktemp("flickr"))
    ds = open_dataset("flickr30k_entities", root)
    return ds.load_captions("test"), ds.load_samples("test")  # 2 images, 5 captions


def _cfg(backbone, *extra):
    return load_config(
        "tiny",
        overrides=[
            f"model.backbone=hf:{backbone}",
            "model.token_stride=8",
            "train.steps=3",
            "train.images_per_step=2",
            "train.loader=stream",
            "train.workers=0",
            *extra,
        ],
    )


def _losses(run) -> list[float]:
    with (run / "log.csv").open() as f:
        return [float(r["loss"]) for r in csv.DictReader(f)]


def _cache_dirs(run) -> list[str]:
    return sorted(p.name for p in (run / CACHE_DIR).iterdir())


def test_streamed_images_train_exactly_as_decoded_ones(square_records, tmp_path):
    runs = {}
    for loader, workers in (("memory", 0), ("stream", 1)):
        cfg = load_config(
            "tiny",
            overrides=["train.steps=4", f"train.loader={loader}", f"train.workers={workers}"],
        )
        train(cfg, square_records[:16], tmp_path / loader, progress=False)
        runs[loader] = _losses(tmp_path / loader)
    assert runs["stream"] == runs["memory"]


def test_cached_tokens_train_resume_and_read_out(flickr, tmp_path):
    captions, samples = flickr
    backbone = tiny_vit(tmp_path / "vit")
    run = tmp_path / "run"
    first = train(_cfg(backbone), captions, run, progress=False)
    (key,) = _cache_dirs(run)
    index = json.loads((run / CACHE_DIR / key / "index.json").read_text())
    assert index["shape"] == [2, 16, 16] and index["dtype"] == "float16"
    tokens = run / CACHE_DIR / key / "tokens.npy"
    written = tokens.stat().st_mtime_ns
    # the same steps from the backbone at every step: fp16 tokens change the loss a little
    uncached = train(_cfg(backbone, "train.cache_tokens=false"), captions, tmp_path / "u",
                     progress=False)  # fmt: skip
    assert first.first_loss == pytest.approx(uncached.first_loss, abs=1e-3)

    resumed = train(_cfg(backbone, "train.steps=5"), captions, run, resume=True, progress=False)
    assert (resumed.start, resumed.steps) == (3, 5)
    assert tokens.stat().st_mtime_ns == written and _cache_dirs(run) == [key]  # reused

    method = resolve_method(f"checkpoint:{run}")
    raw = method.predict(samples[:3], [s.load_image() for s in samples[:3]], device="cpu")
    assert [tuple(m.shape) for m in raw.maps] == [(1, 1, 4, 4)] * 3
    assert all(torch.allclose(m.sum(), torch.tensor(1.0)) for m in raw.maps)
    gradcam = resolve_method(f"checkpoint:{run}:gradcam")
    raw = gradcam.predict(samples[:1], [samples[0].load_image()], device="cpu")
    assert raw.maps[0].shape == (4, 4)
    vision = gradcam.randomisation_layers()["vision"]
    assert vision[0] is gradcam._ckpt.model.encoder.project and len(vision) > 1
    # the frozen backbone's weights are not in the checkpoint; its fingerprint is
    ckpt = load_checkpoint(run / "model.safetensors")
    assert ckpt.config.model.backbone == f"hf:{backbone.resolve()}"


def test_a_changed_backbone_is_refused_on_resume_and_load_and_recached_on_overwrite(
    flickr, tmp_path
):
    captions, _ = flickr
    backbone = tiny_vit(tmp_path / "vit")
    run = tmp_path / "run"
    train(_cfg(backbone), captions, run, progress=False)
    (old_key,) = _cache_dirs(run)
    tiny_vit(backbone, seed=1)  # new weights under the same folder

    with pytest.raises(CheckpointError, match=re.escape("the backbone's files changed")):
        train(_cfg(backbone, "train.steps=4"), captions, run, resume=True, progress=False)
    checkpoint = run / "model.safetensors"
    with pytest.raises(CheckpointError) as err:
        load_checkpoint(checkpoint)
    weights = backbone.resolve() / "model.safetensors"
    assert str(err.value).startswith(
        f"checkpoint {checkpoint}: backbone hf:{backbone}: {weights} changed since training"
    )
    assert str(err.value).endswith(
        "restore the file the model was trained with, or give its new location: "
        f"--method 'checkpoint:{checkpoint}?backbone=PATH'"
    )

    train(_cfg(backbone), captions, run, overwrite=True, progress=False)
    (new_key,) = _cache_dirs(run)
    assert new_key != old_key  # stale tokens deleted, never read
    load_checkpoint(checkpoint)


def test_a_moved_backbone_is_found_where_the_method_spec_says(flickr, tmp_path):
    captions, samples = flickr
    backbone = tiny_vit(tmp_path / "vit")
    train(_cfg(backbone), captions, tmp_path / "run", progress=False)
    moved = shutil.move(backbone, tmp_path / "elsewhere")
    with pytest.raises(CheckpointError, match=re.escape(f"{backbone.resolve()} does not exist")):
        resolve_method(f"checkpoint:{tmp_path / 'run'}")
    method = resolve_method(f"checkpoint:{tmp_path / 'run'}?backbone={moved}")
    raw = method.predict(samples[:1], [samples[0].load_image()], device="cpu")
    assert raw.maps[0].shape == (1, 1, 4, 4)


def test_a_trainable_backbone_is_trained_and_stored(flickr, tmp_path):
    captions, _ = flickr
    backbone = tiny_vit(tmp_path / "vit")
    cfg = _cfg(backbone, "model.backbone_trainable=true", "train.backbone_lr_ratio=1")
    train(cfg, captions, tmp_path / "run", progress=False)
    trained = load_checkpoint(tmp_path / "run" / "model.safetensors").model
    fresh = load_backbone(cfg.model)
    name = "embeddings.patch_embeddings.projection.weight"
    after = dict(trained.encoder.backbone.model.named_parameters())[name]
    before = dict(fresh.model.named_parameters())[name]
    assert not torch.equal(after, before)
    assert not (tmp_path / "run" / CACHE_DIR).exists()  # nothing to cache: it trains
