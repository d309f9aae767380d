"""Training-time augmentation: grey images, and masking beyond the hidden word (more hidden
query words, hidden image patches).

Each is seeded by ``(seed, step)``, so a resumed run draws what the uninterrupted run drew.
"""

from __future__ import annotations

import torch


def grey_some(images: torch.Tensor, prob: float, *, seed: int, step: int) -> torch.Tensor:
    """Replace each image ``(B, 3, S, S)`` by its channel mean with probability ``prob``
    (seeded by ``seed`` and ``step``, so a resumed run draws the same images)."""
    g = torch.Generator().manual_seed(seed * 1_000_003 + step)
    pick = (torch.rand(images.shape[0], generator=g) < prob).to(images.device)
    grey = images.mean(1, keepdim=True).expand_as(images)
    return torch.where(pick[:, None, None, None], grey, images)


def query_drop_prob(step: int, total: int, prob: float, schedule: str) -> float:
    """The probability of hiding each visible query word at ``step`` of ``total``:
    ``prob`` throughout (``constant``) or rising from 0 to ``prob`` (``linear``: easy to hard).

    Example:
        >>> query_drop_prob(0, 100, 0.5, "linear"), query_drop_prob(99, 100, 0.5, "linear")
        (0.0, 0.5)
    """
    if schedule == "linear":
        return prob * step / max(total - 1, 1)
    return prob


def drop_query_words(query: torch.Tensor, prob: float, *, seed: int, step: int) -> torch.Tensor:
    """Hide (set to 0) each word of the queries ``(B, Q, P)`` with probability ``prob``,
    keeping each query's last word, so no query loses all its words.

    Example:
        >>> q = torch.tensor([[[5, 6, 7, 0]]])
        >>> drop_query_words(q, 1.0, seed=0, step=0).tolist()
        [[[0, 0, 7, 0]]]
    """
    if prob <= 0:
        return query
    g = torch.Generator().manual_seed(seed * 1_000_033 + step)
    drop = (torch.rand(query.shape, generator=g) < prob).to(query.device) & (query > 0)
    positions = torch.arange(query.shape[-1], device=query.device)
    last = torch.where(query > 0, positions, -1).amax(-1, keepdim=True)  # B Q 1
    drop &= positions != last
    return query.masked_fill(drop, 0)


def hide_patches(
    images: torch.Tensor, ratio: float, stride: int, *, seed: int, step: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Hide a random ``ratio`` of each image's ``stride × stride`` token cells.

    Args:
        images: ``(B, 3, S, S)`` in ``[0, 1]``.
        ratio: fraction of the ``(S / stride)²`` cells hidden per image (rounded down, at
            least one).
        stride: pixels per visual token side.

    Returns:
        The images with hidden cells set to grey (0.5, the encoder's zero) and ``(B, N)``
        bool, True where a token's cell is hidden (row-major, as the token grid).
    """
    B, _, S, _ = images.shape
    grid = S // stride
    n = grid * grid
    k = max(1, int(ratio * n))
    g = torch.Generator().manual_seed(seed * 1_000_037 + step)
    order = torch.rand(B, n, generator=g).argsort(-1)
    hidden = torch.zeros(B, n, dtype=torch.bool)
    hidden.scatter_(1, order[:, :k], True)
    hidden = hidden.to(images.device)
    pixels = hidden.view(B, 1, grid, 1, grid, 1).expand(B, 1, grid, stride, grid, stride)
    pixels = pixels.reshape(B, 1, S, S)
    return images.masked_fill(pixels, 0.5), hidden
