"""The hf: family on tiny random-init checkpoints saved to disk and loaded back offline."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch
from PIL import Image

from groundbench.errors import CheckpointError, MethodError
from groundbench.methods import resolve_method
from groundbench.types import GroundingSample

transformers = pytest.importorskip("transformers")
CPU = torch.device("cpu")


def sample(i: int, phrase: str = "red square", image: str = "a.png", w: int = 40, h: int = 30):
    text = f"the {phrase}"
    return GroundingSample(
        id=f"t/{i}",
        image_path=image,
        width=w,
        height=h,
        text=text,
        phrase=phrase,
        span=(4, len(text)),
        boxes=np.array([[1.0, 1.0, 5.0, 5.0]]),
    )


def image(seed: int = 0, w: int = 40, h: int = 30) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def pixels(im: np.ndarray, size: int, mean: float = 0.5) -> torch.Tensor:
    """Independent preprocessing: squash (PIL bicubic), /255, (x - mean) / 0.25."""
    x = np.asarray(Image.fromarray(im).resize((size, size), Image.BICUBIC), dtype=np.float64) / 255
    return torch.tensor((x - mean) / 0.25, dtype=torch.float32).permute(2, 0, 1)[None]


RECIPES = {
    "clip": [
        "relevance",
        "relevance?start_layer=all",
        "gradcam",
        "patchsim",
        "rise?num_masks=40",
        "occlusion",
    ],
    "siglip": ["relevance", "gradcam", "patchsim", "rise?num_masks=40", "occlusion"],
    "blip": [
        "itm-gradcam",
        "itm-gradcam?variant=lavis",
        "gradcam",
        "patchsim",
        "rise?num_masks=40",
        "occlusion",
    ],
}


@pytest.mark.parametrize("family,recipe", [(f, r) for f, rs in RECIPES.items() for r in rs])
def test_every_recipe_gives_one_finite_map_per_pair_and_images_are_encoded_once(
    hf_dirs, family, recipe
):
    m = resolve_method(f"hf:{hf_dirs[family]}:{recipe}")
    calls = []
    hook = m.model.vision_model.embeddings.register_forward_hook(
        lambda mod, a, o: calls.append(len(o))
    )
    samples = [sample(0), sample(1, "blue circle"), sample(2, "green triangle", image="b.png")]
    raw = m.predict(samples, [image(0), image(0), image(1)], device=CPU)
    hook.remove()
    size, patch = (24, 6) if family == "blip" else (30, 6)
    grid = (size, size) if recipe.startswith("rise") else (size // patch, size // patch)
    assert raw.ids == ("t/0", "t/1", "t/2") and raw.kind == "heatmap"
    assert all(tuple(x.shape) == grid and bool(torch.isfinite(x).all()) for x in raw.maps)
    if recipe.split("?")[0] in ("relevance", "gradcam", "patchsim", "itm-gradcam"):
        assert calls == [2]  # two distinct images, one pass through the embeddings
    assert m.settings()["knobs"]["prompt"] == "{}" and len(m.fingerprint()) == 64


def test_clip_relevance_equals_an_independent_numpy_reference(hf_dirs):
    d = hf_dirs["clip"]
    im = image(3)
    model = transformers.CLIPModel.from_pretrained(d, attn_implementation="eager")
    tok = transformers.AutoTokenizer.from_pretrained(d)
    enc = tok(["blue circle"], return_tensors="pt")
    out = model(**enc, pixel_values=pixels(im, 30), output_attentions=True)
    attns = out.vision_model_output.attentions
    grads = torch.autograd.grad(out.logits_per_image[0, 0], attns)
    for start, spec in ((1, "relevance"), (0, "relevance?start_layer=all")):
        R = np.eye(26)
        for a, g in list(zip(attns, grads, strict=True))[start:]:
            cam = np.clip(a[0].detach().double().numpy() * g[0].double().numpy(), 0, None).mean(0)
            R = R + cam @ R
        got = resolve_method(f"hf:{d}:{spec}").predict([sample(0, "blue circle")], [im], device=CPU)
        np.testing.assert_allclose(got.maps[0].numpy().ravel(), R[0, 1:], rtol=1e-4, atol=1e-7)


@pytest.mark.parametrize("variant", ["albef", "lavis"])
def test_blip_itm_gradcam_equals_an_independent_numpy_reference(hf_dirs, variant):
    d = hf_dirs["blip"]
    im = image(4)
    model = transformers.BlipForImageTextRetrieval.from_pretrained(d, attn_implementation="eager")
    tok = transformers.AutoTokenizer.from_pretrained(d)
    ids = tok(["the big red square"], return_tensors="pt")["input_ids"]
    block = 2 if variant == "albef" else 6  # 3rd cross-attention layer of 8; LAVIS's block 6
    if variant == "lavis":
        ids[0, 0] = WORD_ENC = 5  # [ENC]
        assert tok.convert_ids_to_tokens(WORD_ENC) == "[ENC]"
    emb = model.vision_model(pixel_values=pixels(im, 24)).last_hidden_state
    ones = torch.ones(emb.shape[:2], dtype=torch.long)
    out = model.text_encoder(
        input_ids=ids,
        attention_mask=torch.ones_like(ids),
        encoder_hidden_states=emb,
        encoder_attention_mask=ones,
        output_attentions=True,
    )
    a = out.cross_attentions[block]
    (g,) = torch.autograd.grad(model.itm_head(out.last_hidden_state[:, 0])[0, 1], [a])
    cam = (
        a[0].detach().double().numpy()[..., 1:] * np.clip(g[0].double().numpy()[..., 1:], 0, None)
    ).mean(0)
    want = cam.mean(0) if variant == "albef" else cam[1:-1].sum(0) / (cam.shape[0] - 2)
    s = sample(0, "big red square")
    got = resolve_method(f"hf:{d}:itm-gradcam?variant={variant}").predict([s], [im], device=CPU)
    np.testing.assert_allclose(got.maps[0].numpy().ravel(), want, rtol=1e-4, atol=1e-12)


@pytest.mark.parametrize(
    "mean,recipes",
    [
        (0.5, ("relevance", "relevance?start_layer=all", "gradcam")),
        (0.0, ("rise?num_masks=400", "occlusion")),
    ],
)
def test_planted_signal_every_recipe_points_at_the_one_patch_the_score_depends_on(
    hf_dirs, hf_tools, tmp_path, mean, recipes
):
    # a black image with one bright patch at grid cell (3, 1), no position embeddings (all
    # other patches are the same token); the text embedding is set to the direction that the
    # bright patch adds to the image embedding, so the score rises with it. Black is 0 after
    # normalisation for the perturbation recipes (the masks' and the occlusion's baseline).
    build, save_dir = hf_tools
    model = build("clip")
    with torch.no_grad():
        model.vision_model.embeddings.position_embedding.weight.zero_()
    im = np.zeros((30, 30, 3), dtype=np.uint8)
    plain = pixels(im, 30, mean)
    im[18:24, 6:12] = 255
    lit = pixels(im, 30, mean)
    tok = transformers.AutoTokenizer.from_pretrained(hf_dirs["clip"])
    with torch.no_grad():
        feats = [model.get_image_features(pixel_values=x).pooler_output for x in (lit, plain)]
        u = [torch.nn.functional.normalize(f, dim=-1)[0] for f in feats]
        pooled = model.text_model(**tok(["red square"], return_tensors="pt")).pooler_output[0]
        model.text_projection.weight.copy_(torch.outer(u[0] - u[1], pooled) / pooled.dot(pooled))
    d = save_dir(tmp_path / "planted", model, 30, mean=mean)
    for recipe in recipes:
        m = resolve_method(f"hf:{d}:{recipe}")
        got = m.predict([sample(0, image="p.png", w=30, h=30)], [im], device=CPU).maps[0]
        row, col = divmod(int(got.argmax()), got.shape[1])
        cell = got.shape[0] // 5
        assert (row // cell, col // cell) == (3, 1), (recipe, got)


def test_randomising_a_listed_layer_changes_the_maps(hf_dirs):
    for family, recipe in (("clip", "relevance"), ("blip", "itm-gradcam")):
        m = resolve_method(f"hf:{hf_dirs[family]}:{recipe}")
        s, im = [sample(0)], [image(0)]
        before = m.predict(s, im, device=CPU).maps[0]
        layers = m.randomisation_layers()
        assert set(layers) == (
            {"vision", "text"} if family == "clip" else {"vision", "text", "fusion"}
        )
        tower = "vision" if family == "clip" else "fusion"
        torch.manual_seed(1)
        for mod in layers[tower][:3]:
            for sub in mod.modules():
                if hasattr(sub, "reset_parameters"):
                    sub.reset_parameters()
        after = m.predict(s, im, device=CPU).maps[0]
        assert not torch.allclose(before, after, rtol=1e-3, atol=0.0)  # BLIP maps are ~1e-12


def test_sdpa_attention_is_a_clear_error_never_an_empty_map(hf_dirs):
    m = resolve_method(f"hf:{hf_dirs['clip']}:relevance")
    m.model.set_attn_implementation("sdpa")
    with pytest.raises(
        MethodError,
        match=r"block 1 \(CLIPAttention\) returned no attention weights: .*attn_implementation='eager'",
    ):
        m.predict([sample(0)], [image(0)], device=CPU)


def test_fingerprint_names_every_knob_and_file(hf_dirs):
    d = hf_dirs["clip"]
    a, b = resolve_method(f"hf:{d}:rise"), resolve_method(f"hf:{d}:rise?seed=1")
    assert a.fingerprint() != b.fingerprint()
    s = resolve_method(f"hf:{d}:rise-paper").settings()
    assert (
        s["preset"] == "rise-paper" and s["knobs"]["num_masks"] == 6000 and s["knobs"]["p"] == 0.1
    )
    assert s["model_class"] == "CLIPModel" and s["attn_implementation"] == "eager"
    assert set(s["files_sha256"]) >= {
        "config.json",
        "model.safetensors",
        "preprocessor_config.json",
    }
    assert (
        s["preprocess"]["resize"] == "squash to 30x30, PIL bicubic"
        and s["preprocess"]["crop"] == "none"
    )
    assert set(s["libraries"]) == {"groundbench", "torch", "transformers"}
    assert s["max_tokens"] == 16 and s["truncation"] == "none: a longer text is an error"
    blip = resolve_method(f"hf:{hf_dirs['blip']}:itm-gradcam").settings()["knobs"]
    assert (blip["block"], blip["tokens"], blip["first_token"]) == (2, "all", "cls")


def test_wrong_inputs_are_clear_errors(hf_dirs, tmp_path):
    d = hf_dirs["clip"]
    with pytest.raises(
        MethodError, match="recipe itm-gradcam does not fit CLIPModel; it supports relevance"
    ):
        resolve_method(f"hf:{d}:itm-gradcam")
    with pytest.raises(MethodError, match="unknown recipe 'relevence'; did you mean 'relevance'"):
        resolve_method(f"hf:{d}:relevence")
    with pytest.raises(MethodError, match="recipe rise has no knob 'masks'"):
        resolve_method(f"hf:{d}:rise?masks=3")
    with pytest.raises(CheckpointError, match="not a directory"):
        resolve_method(f"hf:{tmp_path / 'nothing'}:relevance")
    long = " ".join(["red"] * 20)
    m = resolve_method(f"hf:{d}:relevance")
    with pytest.raises(MethodError, match=r"is 22 tokens, over the model's limit of 16; shorten"):
        m.predict([sample(0, long)], [image(0)], device=CPU)
    broken = tmp_path / "broken"
    shutil.copytree(d, broken)
    (broken / "preprocessor_config.json").unlink()
    with pytest.raises(
        CheckpointError, match=r"preprocessor_config.json: missing; save the image processor"
    ):
        resolve_method(f"hf:{broken}:relevance")
    cfg = json.loads((d / "config.json").read_text())
    cfg["vision_config"]["hidden_size"] = 10**7
    (broken / "preprocessor_config.json").write_text((d / "preprocessor_config.json").read_text())
    (broken / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(
        CheckpointError, match=r"vision_config.hidden_size = 10000000 is outside \(0, 16384\]"
    ):
        resolve_method(f"hf:{broken}:relevance")


def test_pickled_weights_load_only_as_plain_tensors(hf_dirs, tmp_path):
    d = tmp_path / "bin"
    shutil.copytree(hf_dirs["clip"], d)
    from safetensors.torch import load_file

    torch.save(load_file(d / "model.safetensors"), d / "pytorch_model.bin")
    (d / "model.safetensors").unlink()
    from_bin = resolve_method(f"hf:{d}:patchsim")
    assert from_bin.settings()["attn_implementation"] == "eager"
    assert set(from_bin.settings()["files_sha256"]) >= {"pytorch_model.bin"}
    ok = from_bin.predict([sample(0)], [image(0)], device=CPU).maps[0]
    ref = (
        resolve_method(f"hf:{hf_dirs['clip']}:patchsim")
        .predict([sample(0)], [image(0)], device=CPU)
        .maps[0]
    )
    # same weights; the last bits may differ with the tensors' memory alignment (mmap vs pickle)
    torch.testing.assert_close(ok, ref, rtol=0, atol=1e-6)
    torch.save({"w": torch.zeros(1), "evil": print}, d / "pytorch_model.bin")  # a pickled callable
    with pytest.raises(
        CheckpointError, match=r"cannot be read with torch.load\(weights_only=True\)"
    ):
        resolve_method(f"hf:{d}:patchsim")


def test_transformers_is_imported_only_when_an_hf_method_is_built():
    import subprocess
    import sys

    code = "import sys, groundbench.methods; print('transformers' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_bad_start_layer_and_block_fail_when_the_method_is_built(hf_dirs):
    with pytest.raises(MethodError, match=r"start_layer: block 5 is outside the tower's 2 blocks"):
        resolve_method(f"hf:{hf_dirs['clip']}:relevance?start_layer=5")
    with pytest.raises(
        MethodError, match=r"start_layer must be last, all or a block index, got 'first'"
    ):
        resolve_method(f"hf:{hf_dirs['clip']}:relevance?start_layer=first")
    with pytest.raises(MethodError, match=r"itm-gradcam: block 9 is outside the tower's 8 blocks"):
        resolve_method(f"hf:{hf_dirs['blip']}:itm-gradcam?block=9")


def test_probe_attention_recomputation_equals_the_pooling_head(hf_dirs):
    from groundbench.methods.hf.towers import probe_attention

    m = transformers.SiglipModel.from_pretrained(hf_dirs["siglip"], attn_implementation="eager")
    head = m.vision_model.head
    x = torch.randn(3, 25, 32)
    probe = head.probe.repeat(3, 1, 1)
    want, avg = head.attention(probe, x, x)
    got, probs = probe_attention(head.attention, probe, x)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(probs.mean(1), avg, rtol=1e-5, atol=1e-6)
    assert probs.shape == (3, 4, 1, 25)


def test_siglip_relevance_equals_an_independent_numpy_reference(hf_dirs):
    d = hf_dirs["siglip"]
    im = image(5)
    model = transformers.SiglipModel.from_pretrained(d, attn_implementation="eager")
    tok = transformers.AutoTokenizer.from_pretrained(d)
    ids = tok(["green circle"], padding="max_length", max_length=16, return_tensors="pt")[
        "input_ids"
    ]
    out = model.vision_model(pixel_values=pixels(im, 30), output_attentions=True)
    x, head = out.last_hidden_state, model.vision_model.head
    # the pooling head written out with per-head probabilities
    wq, wk, wv = head.attention.in_proj_weight.chunk(3)
    bq, bk, bv = head.attention.in_proj_bias.chunk(3)
    q = (head.probe @ wq.T + bq).view(1, 1, 4, 8).transpose(1, 2)
    k = (x @ wk.T + bk).view(1, 25, 4, 8).transpose(1, 2)
    v = (x @ wv.T + bv).view(1, 25, 4, 8).transpose(1, 2)
    probs = torch.softmax(q @ k.transpose(-1, -2) / 8**0.5, dim=-1)
    h = head.attention.out_proj((probs @ v).transpose(1, 2).reshape(1, 1, 32))
    pooled = (h + head.mlp(head.layernorm(h)))[:, 0]
    text = model.text_model(input_ids=ids).pooler_output
    cos = torch.nn.functional.cosine_similarity(pooled, text)[0]
    logit = model.logit_scale.exp() * cos + model.logit_bias
    a_last = out.attentions[-1]
    g_last, g_pool = torch.autograd.grad(logit.sum(), [a_last, probs])
    cam = np.clip(a_last[0].detach().double().numpy() * g_last[0].double().numpy(), 0, None)
    R = np.eye(25) + cam.mean(0)
    pool = np.clip(probs[0].detach().double().numpy() * g_pool[0].double().numpy(), 0, None)
    want = (pool.mean(0) @ R)[0]
    got = resolve_method(f"hf:{d}:relevance").predict([sample(0, "green circle")], [im], device=CPU)
    np.testing.assert_allclose(got.maps[0].numpy().ravel(), want, rtol=1e-4, atol=1e-9)


@pytest.mark.parametrize("family,recipe", [("clip", "relevance"), ("blip", "itm-gradcam")])
def test_bfloat16_autocast_gives_the_float32_map_to_its_precision_and_a_new_fingerprint(
    hf_dirs, family, recipe
):
    d = hf_dirs[family]
    full, half = (
        resolve_method(f"hf:{d}:{recipe}"),
        resolve_method(f"hf:{d}:{recipe}?dtype=bfloat16"),
    )
    samples, images = [sample(0), sample(1, "blue circle")], [image(0), image(0)]
    a, b = full.predict(samples, images, device=CPU), half.predict(samples, images, device=CPU)
    assert half.settings()["knobs"]["dtype"] == "bfloat16" and full.knobs["dtype"] == "float32"
    assert half.fingerprint() != full.fingerprint()
    assert next(half.model.parameters()).dtype == torch.float32  # weights stay, compute drops
    for x, y in zip(a.maps, b.maps, strict=True):
        assert y.dtype == torch.float32 and torch.isfinite(y).all()
        assert not torch.equal(x, y)  # bfloat16 did run
        assert np.corrcoef(x.ravel().numpy(), y.ravel().numpy())[0, 1] > 0.9
    with pytest.raises(MethodError, match="knob dtype must be one of float32, bfloat16, float16"):
        resolve_method(f"hf:{d}:{recipe}?dtype=fp8")


@pytest.mark.parametrize("family", ["clip", "siglip"])
@pytest.mark.parametrize("recipe", ["rise?num_masks=40", "occlusion"])
def test_black_box_recipes_pass_each_perturbed_image_once_for_all_its_phrases(
    hf_dirs, family, recipe
):
    m = resolve_method(f"hf:{hf_dirs[family]}:{recipe}")
    phrases = ["red square", "blue circle", "green triangle"]
    together = [sample(k, p) for k, p in enumerate(phrases)] + [sample(3, "red square", "b.png")]
    images = [image(0)] * 3 + [image(1)]
    seen = []
    hook = m.model.vision_model.embeddings.register_forward_hook(
        lambda mod, a, o: seen.append(len(o))
    )
    joint = m.predict(together, images, device=CPU)
    passes = sum(seen)
    alone = [
        m.predict([s], [im], device=CPU).maps[0] for s, im in zip(together, images, strict=True)
    ]
    hook.remove()
    assert sum(seen) - passes == 2 * passes  # 4 pairs one at a time: twice the 2 images' passes
    for a, b in zip(joint.maps, alone, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
