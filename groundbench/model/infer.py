"""Read grounding out of the model: mask the phrase, keep its words' cross-attention.

For each sample the phrase's words (the tokens overlapping ``sample.span`` in
``sample.text``) are replaced by ``<mask>``, and the decoder's cross-attention from those
positions to the visual tokens, averaged over the phrase's tokens, is the map. Pass 0 hides
the phrase only; passes 1…P−1 also hide a random ``context_rate`` of the other words, drawn
from a generator seeded by the sample id, so a read-out is reproducible and independent of
batch composition. When the phrase is the whole text, masking it would leave nothing to
read, so its words stay visible (``mask_phrase`` decides).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np
import torch

from groundbench.errors import MethodError
from groundbench.model.data import image_to_tensor
from groundbench.model.network import GroundingModel
from groundbench.model.text import (
    MASK_ID,
    PAD_ID,
    Vocabulary,
    token_indices_in_span,
    tokenize,
    word_class,
)
from groundbench.types import GroundingSample, RawMaps


def sample_seed(sample_id: str, seed: int) -> int:
    """Return a 63-bit seed derived from a sample id and a base seed (stable across runs)."""
    digest = hashlib.sha256(f"{seed}:{sample_id}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & (2**63 - 1)


def _encode(
    sample: GroundingSample, vocab: Vocabulary, max_words: int
) -> tuple[list[int], list[int], list[str]]:
    words, spans = tokenize(sample.text)
    phrase = token_indices_in_span(spans, sample.span)
    if not phrase:
        raise MethodError(
            f"sample {sample.id!r}: the phrase {sample.phrase!r} has no word token to read out"
        )
    start = max(0, phrase[-1] + 1 - max_words)  # keep the whole phrase inside the window
    words = words[start : start + max_words]
    phrase = [i - start for i in phrase if 0 <= i - start < len(words)]
    return [vocab.id(w) for w in words], phrase, words


def pass_masks(
    words: Sequence[str],
    phrase: Sequence[int],
    *,
    passes: int,
    context_rate: float,
    mask_phrase: str,
    generator: torch.Generator,
) -> torch.Tensor:
    """Return ``(P, T)`` bool word masks: the phrase in every pass, plus random context from pass 1.

    Args:
        words: the caption's words.
        phrase: indices of the phrase's words.
        passes: number of passes P (>= 1).
        context_rate: fraction of the non-phrase words hidden in passes 1…P−1.
        mask_phrase: ``auto`` (hide the phrase unless it holds every content word of the
            text), ``always`` or ``never``.
        generator: randomness for the context masks.
    """
    T = len(words)
    masks = torch.zeros(passes, T, dtype=torch.bool)
    content = [i for i, w in enumerate(words) if word_class(w) == "content"]
    context = [i for i in range(T) if i not in set(phrase)]
    hide = mask_phrase == "always" or (
        mask_phrase == "auto" and any(i not in set(phrase) for i in content)
    )
    if hide:
        masks[:, list(phrase)] = True
    k = round(context_rate * len(context))
    for p in range(1, passes):
        if k and context:
            pick = torch.randperm(len(context), generator=generator)[:k]
            masks[p, [context[int(i)] for i in pick]] = True
    return masks


@torch.no_grad()
def read_out(
    model: GroundingModel,
    vocab: Vocabulary,
    samples: Sequence[GroundingSample],
    images: Sequence[np.ndarray],
    *,
    device: str | torch.device = "cpu",
    passes: int = 4,
    context_rate: float = 0.15,
    mask_phrase: str = "auto",
    seed: int = 0,
) -> RawMaps:
    """Return ``kind="attention"`` RawMaps ``(P, L, H, h, w)`` per sample and the gate's ``(L, H)`` weights.

    Args:
        model: a trained model (put in eval mode here).
        vocab: its vocabulary.
        samples: the phrases to ground.
        images: ``(height, width, 3)`` uint8 RGB per sample.
        device: where to compute.
        passes: read-out passes P with different context masks.
        context_rate: fraction of non-phrase words hidden in passes after the first.
        mask_phrase: see :func:`pass_masks`.
        seed: base seed of the per-sample context masks.
    """
    if passes < 1:
        raise MethodError(f"read-out passes must be >= 1, got {passes}")
    model.eval()
    device = torch.device(device)
    cfg = model.cfg
    encoded = [_encode(s, vocab, cfg.max_words) for s in samples]
    T = max(len(e[0]) for e in encoded)
    B = len(samples)
    ids = torch.full((B, passes, T), PAD_ID, dtype=torch.long)
    select = torch.zeros(B, passes, T, dtype=torch.bool)
    for b, (s, (word_ids, phrase, words)) in enumerate(zip(samples, encoded, strict=True)):
        gen = torch.Generator().manual_seed(sample_seed(s.id, seed))
        masks = pass_masks(
            words,
            phrase,
            passes=passes,
            context_rate=context_rate,
            mask_phrase=mask_phrase,
            generator=gen,
        )
        row = (
            torch.tensor(word_ids, dtype=torch.long).expand(passes, -1).masked_fill(masks, MASK_ID)
        )
        ids[b, :, : len(word_ids)] = row
        select[b, :, phrase] = True
    pixels = torch.stack([image_to_tensor(im, cfg.image_size) for im in images]).to(device)
    pixels = pixels[:, None].expand(-1, passes, -1, -1, -1).reshape(B * passes, *pixels.shape[1:])
    flat_ids = ids.view(B * passes, T).to(device)
    out = model(pixels, flat_ids, flat_ids == PAD_ID, None, need_weights=True)
    att = out.attention.float().view(B, passes, cfg.decoder_layers, cfg.heads, T, -1)  # B P L H T N
    weights = select.to(device, torch.float32)
    weights = weights / weights.sum(-1, keepdim=True)
    maps = torch.einsum("bplhtn,bpt->bplhn", att, weights)  # B P L H N
    maps = maps.reshape(
        B, passes, cfg.decoder_layers, cfg.heads, cfg.grid, cfg.grid
    ).cpu()  # B P L H h w
    return RawMaps(
        tuple(s.id for s in samples),
        tuple(maps.unbind(0)),
        kind="attention",
        head_weights=model.gate.weights().detach().float().cpu(),
    )
