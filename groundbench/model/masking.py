"""Masking strategies: which words and patches a training step hides.

Rates anneal from easy (``start``) to hard (``end``) over training when the curriculum is on.
Words are drawn by class (``content`` words — attributes and nouns — far more often than
relation and function words), and with probability ``group_prob`` a whole noun phrase's
content words are hidden together, which is what inference does with a phrase. Every draw
comes from an explicit ``torch.Generator``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch

from groundbench.model.text import phrase_groups, word_class


def anneal(rate: tuple[float, float], progress: float, curriculum: bool) -> float:
    """Return the rate at ``progress`` in [0, 1]: linear start → end, or ``end`` without curriculum.

    Example:
        >>> anneal((0.1, 0.3), 0.5, True)
        0.2
    """
    start, end = rate
    if not curriculum:
        return end
    p = min(max(progress, 0.0), 1.0)
    return round(start + (end - start) * p, 12)


def mask_words(
    words: Sequence[Sequence[str]],
    length: int,
    *,
    rate: float,
    class_weights: Mapping[str, float],
    group_prob: float,
    generator: torch.Generator,
) -> torch.Tensor:
    """Choose the words to hide in each caption.

    At least one word is hidden per non-empty caption; ``round(rate * n)`` otherwise, drawn
    without replacement with probability proportional to the word's class weight. With
    probability ``group_prob`` all content words of one noun phrase are hidden instead.

    Args:
        words: tokenised captions (truncated to ``length``).
        length: padded length ``T``.
        rate: fraction of words to hide.
        class_weights: weight per :func:`~groundbench.model.text.word_class`.
        group_prob: probability of hiding one whole phrase's content words.
        generator: source of randomness.

    Returns:
        ``(B, T)`` bool, True on hidden words (never on padding).
    """
    out = torch.zeros(len(words), length, dtype=torch.bool)
    for b, caption in enumerate(words):
        caption = list(caption[:length])
        n = len(caption)
        if n == 0:
            continue
        classes = [word_class(w) for w in caption]
        content = [i for i, c in enumerate(classes) if c == "content"]
        if content and float(torch.rand((), generator=generator)) < group_prob:
            groups = phrase_groups(caption)
            chosen = sorted({groups[i] for i in content})
            pick = chosen[int(torch.randint(len(chosen), (), generator=generator))]
            out[b, [i for i in content if groups[i] == pick]] = True
            continue
        weights = torch.tensor([class_weights.get(c, 0.0) for c in classes], dtype=torch.float64)
        if float(weights.sum()) <= 0:
            weights = torch.ones(n, dtype=torch.float64)
        k = min(max(1, round(rate * n)), int((weights > 0).sum()))
        idx = torch.multinomial(weights, k, replacement=False, generator=generator)
        out[b, idx] = True
    return out


def mask_patches(
    batch: int, tokens: int, *, rate: float, generator: torch.Generator
) -> torch.Tensor:
    """Hide ``round(rate * N)`` uniformly chosen patches per image.

    Returns:
        ``(B, N)`` bool, True on hidden patches.

    Example:
        >>> mask_patches(2, 10, rate=0.3, generator=torch.Generator().manual_seed(0)).sum(1).tolist()
        [3, 3]
    """
    k = round(rate * tokens)
    order = torch.rand(batch, tokens, generator=generator).argsort(dim=1)
    return order < k
