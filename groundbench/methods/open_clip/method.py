"""``open_clip:NAME:WEIGHTS:RECIPE?knob=value``: an open_clip ViT model + local weights + a recipe.

``NAME`` is an open_clip model config name (``ViT-B-16``; ``open_clip.list_models()``),
``WEIGHTS`` a local ``.safetensors`` file (preferred) or a ``.pt``/``.bin`` state dict that
open_clip reads with ``torch.load(weights_only=True)``. Recipes: ``relevance`` (Chefer;
``start_layer`` ``last``/``all``/index), ``gradcam`` (a block's ``ln_1`` output reshaped to the
patch grid; ``block``), ``rise`` and ``occlusion`` (black-box over the image–text logit).
The target is ``logit_scale.exp() · cos(image, text)``. Images are squashed to the model's
input size with bicubic resampling and normalised with the model's mean/std.
open_clip (and its torchvision) is imported only when such a method is built.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import torch

from groundbench.attribution import gradcam, occlusion, relevance, rise, tokens_to_grid
from groundbench.digest import file_sha256
from groundbench.errors import CheckpointError, MethodError, did_you_mean
from groundbench.methods.open_clip.attention import recording
from groundbench.types import GroundingSample, RawMaps

RECIPES: dict[str, dict[str, Any]] = {
    "relevance": {"start_layer": "last"},
    "gradcam": {"block": -1},
    "rise": {"num_masks": 8000, "num_cells": 7, "p": 0.5, "seed": 0, "output": "sigmoid"},
    "occlusion": {"window": None, "baseline": 0.0},
}
USAGE = "--method open_clip:MODEL_NAME:WEIGHTS_FILE:RECIPE?knob=value (e.g. open_clip:ViT-B-16:vit_b16.safetensors:relevance)"


def import_open_clip():
    """Import open_clip, or raise a MethodError that says why it cannot be imported."""
    try:
        import open_clip
    except Exception as exc:  # torchvision's RuntimeError on a mismatched torch, ImportError, ...
        raise MethodError(
            f"open_clip cannot be imported ({type(exc).__name__}: {exc}); install it with "
            "pip install 'groundbench[open_clip]' and a torchvision built for this torch"
        ) from None
    return open_clip


def parse_open_clip_spec(arg: str | None) -> tuple[str, str, str, dict[str, Any]]:
    """Split ``NAME:WEIGHTS:RECIPE?k=v&...`` into name, weights, recipe and knobs.

    Example:
        >>> parse_open_clip_spec("ViT-B-16:w.safetensors:rise?num_masks=10")[2:]
        ('rise', {'num_masks': 10, 'num_cells': 7, 'p': 0.5, 'seed': 0, 'output': 'sigmoid', 'prompt': '{}'})
    """
    head, _, query = (arg or "").partition("?")
    rest, _, recipe = head.rpartition(":")
    name, _, weights = rest.partition(":")
    if not name or not weights or not recipe:
        raise MethodError(
            f"open_clip:{arg}: needs a model name, a weights file and a recipe: {USAGE}"
        )
    if recipe not in RECIPES:
        raise MethodError(
            f"open_clip:{arg}: unknown recipe {recipe!r}{did_you_mean(recipe, RECIPES)}; recipes: {', '.join(RECIPES)}"
        )
    knobs = {**RECIPES[recipe], "prompt": "{}"}
    for item in filter(None, query.split("&")):
        key, _, value = item.partition("=")
        if key not in knobs:
            raise MethodError(
                f"open_clip:{arg}: recipe {recipe} has no knob {key!r}{did_you_mean(key, knobs)}"
            )
        default = knobs[key]
        try:
            knobs[key] = (
                type(default)(value)
                if isinstance(default, (int, float)) and not isinstance(default, bool)
                else (int(value) if value.lstrip("-").isdigit() else value)
            )
        except ValueError:
            raise MethodError(
                f"open_clip:{arg}: knob {key} expects {type(default).__name__}, got {value!r}"
            ) from None
    return name, weights, recipe, knobs


class OpenClipMethod:
    """An open_clip ViT CLIP read out by a recipe (see the module docstring)."""

    needs_images = True
    supervision = "box-free"

    def __init__(self, arg: str) -> None:
        self.model_name, weights, self.recipe, self.knobs = parse_open_clip_spec(arg)
        self.weights = Path(weights)
        if not self.weights.is_file():
            raise CheckpointError(f"open_clip:{arg}: weights file {self.weights} does not exist")
        open_clip = import_open_clip()
        if self.model_name not in open_clip.list_models():
            raise MethodError(
                f"open_clip:{arg}: unknown model {self.model_name!r}"
                f"{did_you_mean(self.model_name, open_clip.list_models())}"
            )
        try:
            self.model = open_clip.create_model(self.model_name, pretrained=str(self.weights))
        except (RuntimeError, ValueError, KeyError) as exc:
            raise CheckpointError(
                f"{self.weights}: open_clip cannot load it into {self.model_name} ({exc})"
            ) from None
        self.model.eval().requires_grad_(False)
        self.tokenizer = open_clip.get_tokenizer(self.model_name)
        v = self.model.visual
        if not hasattr(v, "transformer") or not hasattr(v, "grid_size"):
            raise MethodError(
                f"open_clip:{arg}: the recipes need a ViT vision tower; {self.model_name} has {type(v).__name__}"
            )
        self.blocks = v.transformer.resblocks
        self.grid = tuple(v.grid_size)
        self.size = tuple(v.image_size)
        self.patch = int(v.patch_size[0])
        cfg = getattr(v, "preprocess_cfg", {}) or {}
        self.mean = torch.tensor(cfg.get("mean", open_clip.OPENAI_DATASET_MEAN)).view(3, 1, 1)
        self.std = torch.tensor(cfg.get("std", open_clip.OPENAI_DATASET_STD)).view(3, 1, 1)
        if self.recipe == "occlusion" and self.knobs["window"] is None:
            self.knobs["window"] = self.patch
        self.name = f"open_clip:{self.model_name}:{arg.rpartition(':')[2]}"
        self._settings = {
            "family": "open_clip",
            "model_name": self.model_name,
            "weights_sha256": file_sha256(self.weights),
            "recipe": self.recipe,
            "knobs": self.knobs,
            "libraries": {p: _version(p) for p in ("groundbench", "torch", "open_clip_torch")},
            "batch_first": bool(getattr(v.transformer, "batch_first", True)),
            "dtype": str(next(self.model.parameters()).dtype).removeprefix("torch."),
            "mode": "eval",
            "preprocess": {
                "input_px": list(self.size),
                "resize": "squash, PIL bicubic",
                "crop": "none",
                "image_mean": self.mean.flatten().tolist(),
                "image_std": self.std.flatten().tolist(),
            },
            "target": "logit_scale.exp() * cos(image, text)",
            "grid": list(self.grid),
        }

    def settings(self) -> dict[str, Any]:
        """Everything the maps depend on, readable."""
        return json.loads(json.dumps(self._settings))

    def fingerprint(self) -> str:
        """sha256 of the canonical JSON of :meth:`settings`."""
        return hashlib.sha256(
            json.dumps(self._settings, sort_keys=True, separators=(",", ":")).encode()
        ).hexdigest()

    def randomisation_layers(self) -> dict[str, list[torch.nn.Module]]:
        """Vision and text layers, output side first (projections are parameters, kept)."""
        v, m = self.model.visual, self.model
        vision = [v.ln_post, *reversed(list(self.blocks)), v.ln_pre, v.conv1]
        text = [m.ln_final, *reversed(list(m.transformer.resblocks)), m.token_embedding]
        return {"vision": [x for x in vision if any(True for _ in x.parameters())], "text": text}

    def _image(self, image: np.ndarray) -> torch.Tensor:
        from PIL import Image

        im = Image.fromarray(image).resize((self.size[1], self.size[0]), Image.BICUBIC)
        x = torch.from_numpy(np.asarray(im, dtype=np.float32) / 255.0).permute(2, 0, 1)
        return (x - self.mean) / self.std

    def _logit(self, images: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
        img = torch.nn.functional.normalize(self.model.encode_image(images), dim=-1)
        return self.model.logit_scale.exp() * (img * text).sum(-1)

    def predict(
        self, samples: Sequence[GroundingSample], images, *, device: torch.device
    ) -> RawMaps:
        """Return one ``(h, w)`` map per sample (``(H, W)`` input-size maps for RISE)."""
        if images is None:
            raise MethodError(f"{self.name} needs images; the caller passed none")
        self.model.to(device)
        pixels = torch.stack([self._image(im) for im in images]).to(device)
        tokens = self.tokenizer([self.knobs["prompt"].format(s.phrase) for s in samples]).to(device)
        with torch.no_grad():
            text = torch.nn.functional.normalize(self.model.encode_text(tokens), dim=-1)
        maps = self._maps(pixels, text)
        return RawMaps(
            ids=tuple(s.id for s in samples),
            maps=tuple(m.detach().to("cpu", torch.float32) for m in maps),
            kind="heatmap",
        )

    def _maps(self, pixels: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
        n = len(self.blocks)
        if self.recipe == "relevance":
            s = self.knobs["start_layer"]
            start = n - 1 if s == "last" else 0 if s == "all" else (s + n if s < 0 else s)
            if not 0 <= start < n:
                raise MethodError(f"{self.name}: start_layer {s} is outside the tower's {n} blocks")
            with torch.enable_grad(), recording([b.attn for b in self.blocks]) as got:
                score = self._logit(pixels.clone().requires_grad_(True), text)
                (*grads,) = torch.autograd.grad(score.sum(), got[start:])
            R = relevance(got[start:], grads, start_layer=0)
            return R[:, 0, 1:].reshape(-1, *self.grid)
        if self.recipe == "gradcam":
            b = self.knobs["block"] + n if self.knobs["block"] < 0 else self.knobs["block"]
            if not 0 <= b < n:
                raise MethodError(
                    f"{self.name}: block {self.knobs['block']} is outside the tower's {n} blocks"
                )
            kept = {}
            handle = self.blocks[b].ln_1.register_forward_hook(
                lambda m, a, o: kept.__setitem__("a", o)
            )
            try:
                with torch.enable_grad():
                    score = self._logit(pixels.clone().requires_grad_(True), text)
                    (grad,) = torch.autograd.grad(score.sum(), [kept["a"]])
            finally:
                handle.remove()
            if not getattr(self.model.visual.transformer, "batch_first", True):  # N B C → B N C
                act, grad = kept["a"].transpose(0, 1), grad.transpose(0, 1)
            else:
                act = kept["a"]
            return gradcam(tokens_to_grid(act, self.grid), tokens_to_grid(grad, self.grid))
        maps = []
        for k in range(len(text)):

            def score(images, t=text[k]):
                with torch.no_grad():
                    return self._logit(images, t[None])

            if self.recipe == "rise":
                keys = ("num_masks", "num_cells", "p", "seed", "output")
                maps.append(rise(score, pixels[k], **{x: self.knobs[x] for x in keys}))
            else:
                maps.append(
                    occlusion(
                        score,
                        pixels[k],
                        window=self.knobs["window"],
                        baseline=self.knobs["baseline"],
                    )
                )
        return torch.stack(maps)


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "unknown"
