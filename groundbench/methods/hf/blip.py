"""BLIP image–text matching (``BlipForImageTextRetrieval``): ITM Grad-CAM and the rest.

The text encoder cross-attends to the image in every layer (LAVIS sets ``fusion_layer`` to
the layer count for BLIP), and transformers does not return those attentions: a forward
hook on ``text_encoder.encoder.layer[block].crossattention.self`` captures the
post-softmax, pre-dropout probabilities, and a pre-hook on that layer makes its input the
gradient leaf, so the backward pass neither enters the image tower nor the layers below.
The score is the ITM head's positive logit (pre-softmax), as ALBEF and LAVIS.
"""

from __future__ import annotations

from typing import Any

import torch

from groundbench.attribution import gradcam, itm_gradcam, occlusion, patchsim, rise, tokens_to_grid
from groundbench.errors import MethodError
from groundbench.methods.hf.preprocess import tokenize
from groundbench.methods.hf.towers import attention_missing, block_index, captured

# variant → (block, tokens, first_token); block None = the 3rd cross-attention layer
VARIANTS = {"albef": (None, "all", "cls"), "lavis": (6, "words", "enc")}


class BlipITM:
    """A loaded ``BlipForImageTextRetrieval`` and the recipes it supports."""

    recipes = ("itm-gradcam", "gradcam", "patchsim", "rise", "occlusion")

    def __init__(self, model, tokenizer, spec: str) -> None:
        self.model, self.tokenizer, self.spec = model, tokenizer, spec
        v = model.config.vision_config
        self.size, self.patch = int(v.image_size), int(v.patch_size)
        self.grid = (self.size // self.patch, self.size // self.patch)
        self.vision = model.vision_model
        self.layers = self.vision.encoder.layers
        self.text_layers = model.text_encoder.encoder.layer
        self.limit = int(model.config.text_config.max_position_embeddings)

    def resolve(self, recipe: str, knobs: dict[str, Any]) -> dict[str, Any]:
        """Fill the model-dependent defaults of ``itm-gradcam`` (by ``variant``)."""
        if recipe != "itm-gradcam":
            return knobs
        if knobs["variant"] not in VARIANTS:
            raise MethodError(f"{self.spec}: variant must be one of {', '.join(VARIANTS)}")
        block, tokens, first = VARIANTS[knobs["variant"]]
        if block is None:  # the 3rd layer with cross-attention (ALBEF's block 8 of 6..11)
            fused = [
                i for i, layer in enumerate(self.text_layers) if hasattr(layer, "crossattention")
            ]
            if len(fused) < 3:
                raise MethodError(f"{self.spec}: fewer than 3 cross-attention layers; set block=")
            block = fused[2]
        out = {**knobs}
        for key, value in (("block", block), ("tokens", tokens), ("first_token", first)):
            out[key] = value if out[key] is None else out[key]
        out["block"] = block_index(
            int(out["block"]), len(self.text_layers), f"{self.spec}: itm-gradcam"
        )
        if not hasattr(self.text_layers[out["block"]], "crossattention"):
            raise MethodError(f"{self.spec}: text layer {out['block']} has no cross-attention")
        if out["first_token"] not in ("cls", "enc"):
            raise MethodError(
                f"{self.spec}: first_token must be cls or enc, got {out['first_token']!r}"
            )
        if out["first_token"] == "enc":
            self.enc_id()
        return out

    def enc_id(self) -> int:
        """The [ENC] token id LAVIS puts in place of [CLS]."""
        i = self.tokenizer.convert_tokens_to_ids("[ENC]")
        if i is None or i == self.tokenizer.unk_token_id:
            raise MethodError(f"{self.spec}: the tokenizer has no [ENC] token; use first_token=cls")
        return int(i)

    def settings(self) -> dict[str, Any]:
        """How texts and scores are formed, readable."""
        return {
            "target": "ITM positive logit itm_head(text_encoder(text, image)[:, 0])[:, 1], pre-softmax",
            "text_padding": "longest",
            "max_tokens": self.limit,
            "truncation": "none: a longer text is an error",
            "image_tokens": "[CLS] + patches",
            "grid": list(self.grid),
        }

    def randomisation_layers(self) -> dict[str, list[torch.nn.Module]]:
        """Parameterised layers per tower, output side first (the text encoder is the fusion)."""
        v, m = self.vision, self.model
        return {
            "vision": [m.vision_proj, v.post_layernorm, *reversed(self.layers), v.embeddings],
            "fusion": [m.itm_head, m.text_proj, *reversed(self.text_layers)],
            "text": [m.text_encoder.embeddings],
        }

    def _text(self, texts: list[str], first_token: str = "cls"):
        enc = tokenize(self.tokenizer, texts, self.limit, pad_to=None, spec=self.spec)
        dev = self.model.itm_head.weight.device
        ids, mask = enc["input_ids"].to(dev), enc["attention_mask"].to(dev)
        if first_token == "enc":
            ids = ids.clone()
            ids[:, 0] = self.enc_id()
        return ids, mask

    def _itm(self, image_embeds, ids, mask) -> torch.Tensor:
        ones = torch.ones(image_embeds.shape[:2], dtype=torch.long, device=image_embeds.device)
        out = self.model.text_encoder(
            input_ids=ids,
            attention_mask=mask,
            encoder_hidden_states=image_embeds,
            encoder_attention_mask=ones,
        ).last_hidden_state
        return self.model.itm_head(out[:, 0])[:, 1]

    def score_fn(self, ids, mask):
        """The black-box ITM score of one tokenised text ``(1, T)`` over image batches."""

        def score(images: torch.Tensor) -> torch.Tensor:
            with torch.no_grad():
                emb = self.vision(pixel_values=images).last_hidden_state
                n = len(images)
                return self._itm(emb, ids.expand(n, -1), mask.expand(n, -1))

        return score

    def maps(self, recipe: str, knobs: dict[str, Any], pixels, pair_image, texts) -> torch.Tensor:
        """``(P, h, w)`` maps (``(P, size, size)`` for RISE) of the pairs."""
        if recipe == "itm-gradcam":
            return self._itm_gradcam(knobs, pixels, pair_image, texts)
        ids, mask = self._text(texts)
        if recipe == "gradcam":
            b = block_index(knobs["block"], len(self.layers), f"{self.spec}: gradcam")
            with (
                torch.enable_grad(),
                captured(self.layers, expand_at=b, pair_image=pair_image, norm_of=b) as got,
            ):
                score = self._itm(self.vision(pixel_values=pixels).last_hidden_state, ids, mask)
                act = got["norm"][0]
                (grad,) = torch.autograd.grad(score.sum(), [act])
            act, grad = (tokens_to_grid(t, self.grid) for t in (act, grad))
            return gradcam(act, grad, relu=knobs["relu"])
        if recipe == "patchsim":
            with torch.no_grad():
                emb = self.vision(pixel_values=pixels).last_hidden_state[:, 1:]
                text = self.model.text_encoder(
                    input_ids=ids, attention_mask=mask
                ).last_hidden_state[:, 0]
                sim = patchsim(self.model.vision_proj(emb)[pair_image], self.model.text_proj(text))
            return sim.reshape(-1, *self.grid)
        maps = []
        for k in range(len(texts)):
            n = int(mask[k].sum())
            score = self.score_fn(ids[k : k + 1, :n], mask[k : k + 1, :n])
            image = pixels[pair_image[k]]
            if recipe == "rise":
                keys = ("num_masks", "num_cells", "p", "seed", "output")
                maps.append(rise(score, image, **{n: knobs[n] for n in keys}))
            else:
                maps.append(
                    occlusion(score, image, window=knobs["window"], baseline=knobs["baseline"])
                )
        return torch.stack(maps)

    def _itm_gradcam(self, knobs, pixels, pair_image, texts) -> torch.Tensor:
        ids, mask = self._text(texts, knobs["first_token"])
        layer = self.text_layers[knobs["block"]]
        got: dict[str, torch.Tensor] = {}

        def leaf(module, args, kwargs):
            return (args[0].detach().requires_grad_(True), *args[1:]), kwargs

        def keep(module, args, out):
            if out[1] is None:
                raise attention_missing(f"text layer {knobs['block']} cross-attention")
            got["a"] = out[1]

        with torch.no_grad():
            image_embeds = self.vision(pixel_values=pixels).last_hidden_state[pair_image]
        handles = [
            layer.register_forward_pre_hook(leaf, with_kwargs=True),
            layer.crossattention.self.register_forward_hook(keep),
        ]
        try:
            with torch.enable_grad():
                score = self._itm(image_embeds, ids, mask)
                (grad,) = torch.autograd.grad(score.sum(), [got["a"]])
        finally:
            for h in handles:
                h.remove()
        cam = itm_gradcam(got["a"], grad, mask, tokens=knobs["tokens"], image_prefix=1)
        return cam.reshape(-1, *self.grid)
