"""CLIP and SigLIP (dual encoders): the recipes over their vision tower.

The target of every gradient recipe is the image–text logit the model was trained with:
``logit_scale.exp() · cos(image, text)`` for CLIP (the ``logits_per_image`` diagonal) and
the same plus ``logit_bias`` for SigLIP. Texts are encoded once per pair without gradient.
CLIP's image token 0 is [CLS]; SigLIP has no [CLS] and pools with an attention head, whose
probe row stands for the [CLS] row in ``relevance``.
"""

from __future__ import annotations

from typing import Any

import torch

from groundbench.attribution import (
    gradcam,
    occlusion,
    patchsim,
    pooled_relevance,
    relevance,
    rise,
    tokens_to_grid,
)
from groundbench.errors import MethodError
from groundbench.methods.hf.preprocess import tokenize
from groundbench.methods.hf.towers import block_index, captured, probe_attention


class DualEncoder:
    """A loaded ``CLIPModel`` or ``SiglipModel`` and the recipes it supports."""

    recipes = ("relevance", "gradcam", "patchsim", "rise", "occlusion")

    def __init__(self, model, tokenizer, model_type: str, spec: str) -> None:
        self.model, self.tokenizer, self.spec = model, tokenizer, spec
        self.siglip = model_type == "siglip"
        v, t = model.config.vision_config, model.config.text_config
        self.size, self.patch = int(v.image_size), int(v.patch_size)
        self.grid = (self.size // self.patch, self.size // self.patch)
        self.prefix = 0 if self.siglip else 1
        self.vision = model.vision_model
        self.layers = self.vision.encoder.layers
        self.limit = int(t.max_position_embeddings)
        if self.siglip and not getattr(self.vision, "use_head", True):
            raise MethodError(f"{spec}: this SigLIP vision tower has no pooling head to score with")

    def resolve(self, recipe: str, knobs: dict[str, Any]) -> dict[str, Any]:
        """Check the knobs that depend on the model (a bad ``start_layer`` fails here)."""
        if recipe == "relevance":
            knobs = {**knobs, "start_layer": self._start_knob(knobs["start_layer"])}
        return knobs

    def _start_knob(self, value):
        self.start_layer(value)  # fails on a bad value
        return int(value) if isinstance(value, str) and value.lstrip("-").isdigit() else value

    def settings(self) -> dict[str, Any]:
        """How texts and scores are formed, readable."""
        return {
            "target": "logit_scale.exp() * cos(image, text)"
            + (" + logit_bias" if self.siglip else " (logits_per_image diagonal)"),
            "text_padding": f"max_length {self.limit}" if self.siglip else "longest",
            "max_tokens": self.limit,
            "truncation": "none: a longer text is an error",
            "image_tokens": "patches only (no [CLS])" if self.siglip else "[CLS] + patches",
            "grid": list(self.grid),
        }

    def randomisation_layers(self) -> dict[str, list[torch.nn.Module]]:
        """Parameterised layers per tower, output side first."""
        v, t = self.vision, self.model.text_model
        if self.siglip:
            vision = [v.head, v.post_layernorm, *reversed(self.layers), v.embeddings]
            text = [t.head, t.final_layer_norm, *reversed(t.encoder.layers), t.embeddings]
        else:
            vision = [self.model.visual_projection, v.post_layernorm, *reversed(self.layers)]
            vision += [v.pre_layrnorm, v.embeddings]
            text = [self.model.text_projection, t.final_layer_norm, *reversed(t.encoder.layers)]
            text += [t.embeddings]
        return {"vision": vision, "text": text}

    # ------------------------------------------------------------------ features

    def text_features(self, texts: list[str]) -> torch.Tensor:
        """``(P, D)`` unit text embeddings."""
        dev = self.model.logit_scale.device
        enc = tokenize(
            self.tokenizer,
            texts,
            self.limit,
            pad_to=self.limit if self.siglip else None,
            spec=self.spec,
        )
        kwargs = {} if self.siglip else {"attention_mask": enc["attention_mask"].to(dev)}
        with torch.no_grad():
            pooled = self.model.text_model(
                input_ids=enc["input_ids"].to(dev), **kwargs
            ).pooler_output
            if not self.siglip:
                pooled = self.model.text_projection(pooled)
        return torch.nn.functional.normalize(pooled, dim=-1)

    def _logit(self, out, text: torch.Tensor) -> torch.Tensor:
        """Image–text logits of ``(N, D)`` text features against the ``N`` images of ``out``;
        ``(N, 1, D)`` image features broadcast against ``(T, D)`` texts give ``(N, T)``."""
        img = out.pooler_output if self.siglip else self.model.visual_projection(out.pooler_output)
        img = torch.nn.functional.normalize(img, dim=-1)
        if text.ndim == 3:  # (1, T, D): every text against every image
            img = img[:, None, :]
        cos = (img * text).sum(-1)
        logit = self.model.logit_scale.exp() * cos
        return logit + self.model.logit_bias if self.siglip else logit

    def score_fn(self, text: torch.Tensor):
        """The black-box score of unit text embeddings ``(T, D)`` over image batches: ``(N, T)``."""

        def score(images: torch.Tensor) -> torch.Tensor:
            with torch.no_grad():
                return self._logit(self.vision(pixel_values=images), text[None])

        return score

    # ------------------------------------------------------------------ recipes

    def maps(self, recipe: str, knobs: dict[str, Any], pixels, pair_image, texts) -> torch.Tensor:
        """``(P, h, w)`` maps (``(P, size, size)`` for RISE) of the pairs."""
        text = self.text_features(texts)
        if recipe == "relevance":
            return self._relevance(knobs["start_layer"], pixels, pair_image, text)
        if recipe == "gradcam":
            return self._gradcam(knobs["block"], knobs["relu"], pixels, pair_image, text)
        if recipe == "patchsim":
            with torch.no_grad():
                out = self.vision(pixel_values=pixels)
                tokens = out.last_hidden_state[:, self.prefix :]
                if not self.siglip:
                    tokens = self.model.visual_projection(self.vision.post_layernorm(tokens))
            return patchsim(tokens[pair_image], text).reshape(-1, *self.grid)
        maps: list[torch.Tensor | None] = [None] * len(texts)
        for i in torch.unique(pair_image).tolist():
            pairs = (pair_image == i).nonzero().flatten().tolist()
            score = self.score_fn(text[pairs])  # one pass per perturbed image, every phrase
            if recipe == "rise":
                keys = ("num_masks", "num_cells", "p", "seed", "output")
                out = rise(score, pixels[i], **{n: knobs[n] for n in keys})
            else:
                out = occlusion(
                    score, pixels[i], window=knobs["window"], baseline=knobs["baseline"]
                )
            for j, k in enumerate(pairs):
                maps[k] = out[j]
        return torch.stack(maps)

    def start_layer(self, value) -> int:
        """Resolve ``relevance``'s ``start_layer`` knob (``last``, ``all`` or an index)."""
        n = len(self.layers)
        if value == "last":
            return n - 1
        if value == "all":
            return 0
        if isinstance(value, str) and value.lstrip("-").isdigit():
            value = int(value)
        if isinstance(value, int):
            return block_index(value, n, f"{self.spec}: start_layer")
        raise MethodError(
            f"{self.spec}: start_layer must be last, all or a block index, got {value!r}"
        )

    def _relevance(self, start_layer, pixels, pair_image, text) -> torch.Tensor:
        start, n = self.start_layer(start_layer), len(self.layers)
        pool: dict[str, torch.Tensor] = {}
        hook = None
        if self.siglip:

            def recompute(module, args, out):
                new, pool["a"] = probe_attention(module, args[0], args[1])
                return new, None

            hook = self.vision.head.attention.register_forward_hook(recompute)
        try:
            with (
                torch.enable_grad(),
                captured(
                    self.layers,
                    expand_at=start,
                    pair_image=pair_image,
                    attention_of=range(start, n),
                ) as got,
            ):
                score = self._logit(self.vision(pixel_values=pixels), text)
                attns = [got["attn"][i] for i in range(start, n)] + (
                    [pool["a"]] if self.siglip else []
                )
                grads = torch.autograd.grad(score.sum(), attns)
        finally:
            if hook is not None:
                hook.remove()
        if self.siglip:
            R = relevance(attns[:-1], grads[:-1], start_layer=0)
            row = pooled_relevance(attns[-1], grads[-1], R)
        else:
            row = relevance(attns, grads, start_layer=0)[:, 0, 1:]
        return row.reshape(-1, *self.grid)

    def _gradcam(self, block, relu, pixels, pair_image, text) -> torch.Tensor:
        b = block_index(block, len(self.layers), f"{self.spec}: gradcam")
        with (
            torch.enable_grad(),
            captured(self.layers, expand_at=b, pair_image=pair_image, norm_of=b) as got,
        ):
            score = self._logit(self.vision(pixel_values=pixels), text)
            act = got["norm"][0]
            (grad,) = torch.autograd.grad(score.sum(), [act])
        act = tokens_to_grid(act, self.grid, prefix=self.prefix)
        grad = tokens_to_grid(grad, self.grid, prefix=self.prefix)
        return gradcam(act, grad, relu=relu)
