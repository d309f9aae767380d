"""Read grounding out of the model: the referent phrase's attention over the visual tokens.

The sample's phrase is chunked (:func:`~groundbench.model.language.parse`); its referent
noun phrase, with every word visible, is one query, and when a relation links it to a
landmark (``the ring left of the star``) the landmark's attention shifts the logits through
the relation kernel, as in training. The map is that attention, ``(1, H, h, w)`` per sample
(``L = 1`` grounding attention, ``H`` heads), for the protocol's pipeline to aggregate,
upsample and score. The checkpoint's ``model.readout`` picks the map: the softmax attention
at ``model.readout_temperature`` (1 = the training attention), or the sigmoid mask of the
same logits (``model.mask: sigmoid``), which does not make the tokens compete.

``passes="masked"`` instead averages several passes, each hiding one referent word (the
training-time query); it is a measured option (``docs/model.md``), not the default.

Each sample is encoded on its own, so a map never depends on the batch it came in.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
import torch

from groundbench.errors import MethodError
from groundbench.model.data import image_to_uint8, last_words, pad_words
from groundbench.model.grounding import NO_RELATION, relation_code
from groundbench.model.language import Vocabulary, parse
from groundbench.model.network import GroundingModel
from groundbench.types import GroundingSample, RawMaps

Passes = Literal["full", "masked"]


def phrase_queries(
    phrase: str, vocab: Vocabulary, words: int, passes: Passes = "full"
) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Return the read-out queries of ``phrase``: ``(P, words)`` query ids, ``(words,)``
    landmark ids and the relation code.

    Example:
        >>> v = Vocabulary(["<unk>", "ring", "star", "red"], [0, 1, 1, 2])
        >>> q, landmark, code = phrase_queries("the red ring left of the star", v, 3)
        >>> q.tolist(), landmark.tolist(), code
        ([[3, 1, 0]], [2, 0, 0], 0)
    """
    p = parse(phrase)
    if p.referent < 0:
        ids: list[int] = []
    else:
        ids = last_words(vocab.ids(p.phrases[p.referent]), words)
    relation = p.relation_of(p.referent) if p.referent >= 0 else None
    landmark, code = [], NO_RELATION
    if relation is not None:
        landmark, code = (
            vocab.ids(p.phrases[relation.landmark]),
            relation_code(relation.word, inverse=False),
        )
    if passes == "masked" and sum(1 for i in ids if i) >= 2:
        queries = [ids[:k] + ids[k + 1 :] for k, i in enumerate(ids) if i]
    elif passes in ("full", "masked"):
        queries = [ids]
    else:
        raise MethodError(f"read-out passes must be 'full' or 'masked', got {passes!r}")
    return (
        torch.tensor([pad_words(q, words) for q in queries], dtype=torch.long),
        torch.tensor(pad_words(landmark, words), dtype=torch.long),
        code,
    )


def read_out_map(model: GroundingModel, logits: torch.Tensor) -> torch.Tensor:
    """The read-out map of attention logits ``(..., N)``, float32, by ``model.cfg.readout``:
    ``softmax(logits / readout_temperature)`` or the sigmoid mask ``σ(logits + b)``."""
    cfg = model.cfg
    if cfg.readout == "mask":
        return model.mask(logits)
    return (logits.float() / cfg.readout_temperature).softmax(-1)


@torch.no_grad()
def read_out(
    model: GroundingModel,
    vocab: Vocabulary,
    samples: Sequence[GroundingSample],
    images: Sequence[np.ndarray],
    *,
    device: str | torch.device = "cpu",
    passes: Passes = "full",
) -> RawMaps:
    """Return ``kind="attention"`` RawMaps: ``(1, H, h, w)`` per sample, or ``(P, 1, H, h, w)``
    with ``passes="masked"``.

    Args:
        model: a trained model (put in eval mode here).
        vocab: its vocabulary.
        samples: the phrases to ground (``sample.phrase`` is read; a phrase with no known
            word gives the query of the learned bias alone).
        images: ``(height, width, 3)`` uint8 RGB per sample.
        device: where to compute.
        passes: ``full`` (one query, every referent word visible) or ``masked``.
    """
    if len(images) != len(samples):
        raise MethodError(f"read_out got {len(images)} images for {len(samples)} samples")
    model.eval()
    device = torch.device(device)
    cfg = model.cfg
    maps = []
    for sample, image in zip(samples, images, strict=True):
        logits = phrase_logits(model, vocab, sample.phrase, image, device=device, passes=passes)
        P = logits.shape[1]
        grid = read_out_map(model, logits).view(P, 1, cfg.heads, cfg.grid, cfg.grid).cpu()
        maps.append(grid[0] if passes == "full" else grid)
    return RawMaps(tuple(s.id for s in samples), tuple(maps), kind="attention")


@torch.no_grad()
def phrase_logits(
    model: GroundingModel,
    vocab: Vocabulary,
    phrase: str,
    image: np.ndarray,
    *,
    device: torch.device,
    passes: Passes = "full",
) -> torch.Tensor:
    """The read-out's attention logits ``(1, P, H, N)`` of ``phrase`` over ``image``
    (``(height, width, 3)`` uint8): one query per pass (:func:`phrase_queries`), with the
    relation bias of its landmark. The map is :func:`read_out_map` of them."""
    cfg = model.cfg
    query, landmark, code = phrase_queries(phrase, vocab, cfg.max_phrase_words, passes)
    P = query.shape[0]
    pixels = image_to_uint8(image, cfg.image_size)[None].to(device).float().div_(255.0)
    keys, values = model.encode(pixels)
    return model.logits(
        keys,
        values,
        query[None].to(device),
        landmark.expand(P, -1)[None].to(device),
        torch.full((1, P), code, dtype=torch.long, device=device),
    )


def gradcam_read_out(
    model: GroundingModel,
    vocab: Vocabulary,
    samples: Sequence[GroundingSample],
    images: Sequence[np.ndarray],
    *,
    device: str | torch.device = "cpu",
) -> RawMaps:
    """Return ``kind="heatmap"`` Grad-CAM maps ``(h, w)`` of the training objective, per sample.

    The score is the training task on the referent phrase: for each of its known words, the
    head's logit (pre-softmax) of that word predicted from the attention-pooled value of a
    query made of the phrase's *other* words (with the relation shift, as in training); the
    scores are summed. Grad-CAM (:func:`~groundbench.attribution.gradcam`, ReLU) is taken
    over the visual tokens, the token encoder's output on the ``h × w`` grid. A phrase with
    no known word gives a zero map.
    """
    from groundbench.attribution import gradcam, tokens_to_grid

    model.eval()
    device = torch.device(device)
    cfg = model.cfg
    maps = []
    for sample, image in zip(samples, images, strict=True):
        p = parse(sample.phrase)
        ids = (
            last_words(vocab.ids(p.phrases[p.referent]), cfg.max_phrase_words)
            if p.referent >= 0
            else []
        )
        known = [(k, i) for k, i in enumerate(ids) if i]
        if not known:
            maps.append(torch.zeros(cfg.grid, cfg.grid))
            continue
        _, landmark, code = phrase_queries(sample.phrase, vocab, cfg.max_phrase_words)
        query = torch.tensor(
            [pad_words(ids[:k] + ids[k + 1 :], cfg.max_phrase_words) for k, _ in known]
        )
        target = torch.tensor([i for _, i in known], device=device)
        P = len(known)
        pixels = image_to_uint8(image, cfg.image_size)[None].to(device).float().div_(255.0)
        with torch.enable_grad():
            tokens = model.encoder(pixels).detach().requires_grad_(True)  # 1 N C
            keys, values = model.grounding.keys_values(tokens)
            _, pooled = model.ground(
                keys,
                values,
                query[None].to(device),
                landmark.expand(P, -1)[None].to(device),
                torch.full((1, P), code, dtype=torch.long, device=device),
            )  # 1 P e
            logits = model.predict(pooled, target[None])  # 1 P V
            score = logits[0, torch.arange(P, device=device), target].sum()
            (grad,) = torch.autograd.grad(score, [tokens])
        grid = (cfg.grid, cfg.grid)
        cam = gradcam(
            tokens_to_grid(tokens.detach(), grid, prefix=0), tokens_to_grid(grad, grid, prefix=0)
        )
        maps.append(cam[0].float().cpu())
    return RawMaps(tuple(s.id for s in samples), tuple(maps), kind="heatmap")
