"""The open_clip: family on a tiny random-init model saved as a local weights file.

Skipped where open_clip cannot be imported: it needs torchvision, and PyPI's torchvision
wheels do not import against a CPU-only torch (``RuntimeError: operator torchvision::nms
does not exist``), so the project's CI does not install it.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from groundbench.errors import MethodError
from groundbench.methods import resolve_method
from groundbench.methods.open_clip.method import parse_open_clip_spec
from groundbench.types import GroundingSample


def _open_clip():
    try:
        import open_clip
    except Exception as exc:  # noqa: BLE001  (torchvision raises RuntimeError at import)
        pytest.skip(f"open_clip cannot be imported here ({type(exc).__name__}: {exc})")
    return open_clip


def test_spec_parsing_and_errors():
    assert parse_open_clip_spec("ViT-B-16:/w/x.safetensors:gradcam?block=3")[:3] == ("ViT-B-16", "/w/x.safetensors", "gradcam")
    with pytest.raises(MethodError, match="needs a model name, a weights file and a recipe"):
        parse_open_clip_spec("ViT-B-16:relevance")
    with pytest.raises(MethodError, match=r"unknown recipe 'relevence'; did you mean 'relevance'\?"):
        parse_open_clip_spec("ViT-B-16:w.pt:relevence")


TINY = {
    "embed_dim": 16,
    "vision_cfg": {"image_size": 32, "layers": 2, "width": 32, "patch_size": 8, "head_width": 8},
    "text_cfg": {"context_length": 16, "vocab_size": 49408, "width": 32, "heads": 4, "layers": 2},
}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    open_clip = _open_clip()
    root = tmp_path_factory.mktemp("oc")
    (root / "gb-tiny.json").write_text(json.dumps(TINY))
    open_clip.add_model_config(root)
    torch.manual_seed(0)
    model = open_clip.create_model("gb-tiny", pretrained=None)
    from safetensors.torch import save_file

    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, root / "tiny.safetensors")
    return root / "tiny.safetensors"


def _samples(n=2):
    rng = np.random.default_rng(0)
    out = [
        GroundingSample(id=f"s{i}", image_path=f"/x/{i}.png", width=40, height=30, text="a red square",
                        phrase="a red square", span=(0, 12), boxes=np.array([[1.0, 1.0, 9.0, 9.0]]))
        for i in range(n)
    ]
    return out, [rng.integers(0, 256, (30, 40, 3), dtype=np.uint8) for _ in range(n)]


@pytest.mark.parametrize("recipe", ["relevance", "gradcam", "occlusion", "rise?num_masks=8"])
def test_recipes_give_one_grid_map_per_sample(tiny, recipe):
    method = resolve_method(f"open_clip:gb-tiny:{tiny}:{recipe}")
    samples, images = _samples()
    raw = method.predict(samples, images, device=torch.device("cpu"))
    side = 32 if recipe.startswith("rise") else 4
    assert [tuple(m.shape) for m in raw.maps] == [(side, side)] * 2
    assert method.settings()["weights_sha256"] and len(method.fingerprint()) == 64
    assert set(method.randomisation_layers()) == {"vision", "text"}


@pytest.mark.parametrize("recipe", ["relevance", "gradcam"])
def test_sequence_first_towers_give_the_same_maps(tiny, recipe):
    method = resolve_method(f"open_clip:gb-tiny:{tiny}:{recipe}")
    samples, images = _samples()
    batch_first = method.predict(samples, images, device=torch.device("cpu")).maps
    tower = method.model.visual.transformer
    tower.batch_first = False  # the OpenAI-CLIP layout: (N, B, D) through every block
    for block in tower.resblocks:
        block.attn.batch_first = False
    seq_first = method.predict(samples, images, device=torch.device("cpu")).maps
    for a, b in zip(batch_first, seq_first, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)
