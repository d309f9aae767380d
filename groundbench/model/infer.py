"""Read grounding out of the model: the referent's cross-attention over several masked passes.

For each sample the phrase is located in ``sample.text`` by ``sample.span``; its referent
is the content words of its first noun phrase (``white star`` in ``the white star over the
ring``). The map is the decoder's cross-attention from the referent's positions to the
visual tokens, averaged over those positions, in P passes that hide different parts of
the referent (see :func:`pass_masks`): hidden words must be found from the context, as in
training, and visible ones point at what they name. Random choices come from a generator
seeded by the sample id, so a read-out is reproducible and independent of the batch.
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
    phrase_groups,
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


def referent_tokens(words: Sequence[str], phrase: Sequence[int]) -> list[int]:
    """Return the content words of the phrase's first noun phrase (its referent).

    In ``the star over the ring`` the referent is ``star``; ``ring`` names a landmark.
    Falls back to every phrase token when the first noun phrase has no content word.

    Example:
        >>> referent_tokens("the white star over the ring".split(), [0, 1, 2, 3, 4, 5])
        [1, 2]
    """
    groups = phrase_groups(words)
    first = groups[phrase[0]]
    out = [i for i in phrase if groups[i] == first and word_class(words[i]) == "content"]
    return out or list(phrase)


def pass_masks(
    words: Sequence[str], target: Sequence[int], *, passes: int, generator: torch.Generator
) -> torch.Tensor:
    """Return ``(P, T)`` bool word masks, one per read-out pass.

    Pass 0 hides nothing: the referent's words point at what they name. When the text has
    content words besides the referent (a relation's landmark, say), pass 1 hides the whole
    referent, so the context alone must find it, and later passes hide a random non-empty
    part of it (``the white <mask> under the star``). Without such context every pass
    hides nothing, since hiding the referent would leave nothing to read.

    Example:
        >>> words = "the white star over the ring".split()
        >>> pass_masks(words, [1, 2], passes=2, generator=torch.Generator()).int().tolist()
        [[0, 0, 0, 0, 0, 0], [0, 1, 1, 0, 0, 0]]
    """
    T = len(words)
    masks = torch.zeros(passes, T, dtype=torch.bool)
    context = [
        i for i, w in enumerate(words) if word_class(w) == "content" and i not in set(target)
    ]
    if not context:
        return masks
    for p in range(1, passes):
        if p == 1 or len(target) < 2:
            masks[p, list(target)] = True
            continue
        k = 1 + int(torch.randint(len(target) - 1, (), generator=generator))
        pick = torch.randperm(len(target), generator=generator)[:k]
        masks[p, [target[int(i)] for i in pick]] = True
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
        seed: base seed of the per-sample pass masks.
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
        target = referent_tokens(words, phrase)
        masks = pass_masks(words, target, passes=passes, generator=gen)
        row = (
            torch.tensor(word_ids, dtype=torch.long).expand(passes, -1).masked_fill(masks, MASK_ID)
        )
        ids[b, :, : len(word_ids)] = row
        select[b, :, target] = True
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
