"""Robustness-probe tags for real datasets, computed from text and geometry alone.

The tags match the synthetic benchmark's probe splits, so one protocol filter works on
every dataset:

- ``relational``: the text uses a spatial-relation word or phrase (:data:`RELATION_LEXICON`).
- ``attribute``: the text uses a colour, size, material or appearance word
  (:data:`ATTRIBUTE_LEXICON`).
- ``compositional``: the text pairs an attribute word with the following content word in a
  combination that never occurs in the training split's expressions (see
  :func:`attribute_noun_pairs`).
- ``distractors``: the image holds at least two objects of the target's category (the
  target included), so the category alone does not identify it.
- ``small``: the union box of the referent covers less than :data:`SMALL_AREA_FRACTION` of
  the image area.
- ``off-centre``: no referent box contains the image centre ``(width / 2, height / 2)``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

import numpy as np

#: A referent whose union box covers less than this fraction of the image is ``small``.
SMALL_AREA_FRACTION = 0.05

#: Spatial-relation words and phrases (lower case; matched on word boundaries).
RELATION_LEXICON: tuple[str, ...] = (
    "left", "right", "above", "below", "under", "underneath", "beneath", "over", "behind",
    "in front of", "front", "next to", "beside", "besides", "between", "near", "nearest",
    "closest", "close to", "far", "farthest", "furthest", "middle", "center", "centre",
    "top", "bottom", "upper", "lower", "on top of", "across", "along", "against", "inside",
    "outside", "around", "facing", "leftmost", "rightmost", "corner", "edge", "back",
    "background", "foreground", "by the", "on the side",
)  # fmt: skip

#: Attribute words (colour, size, material, appearance; lower case).
ATTRIBUTE_LEXICON: tuple[str, ...] = (
    "red", "green", "blue", "yellow", "orange", "purple", "pink", "brown", "black", "white",
    "gray", "grey", "silver", "gold", "golden", "tan", "beige", "dark", "light", "bright",
    "striped", "spotted", "plaid", "checkered", "big", "large", "small", "little", "tiny",
    "huge", "tall", "short", "long", "wide", "thin", "fat", "wooden", "metal", "plastic",
    "glass", "leather", "empty", "full", "open", "closed", "old", "young", "new", "round",
    "square", "blurry", "shiny", "wet", "dry", "cut", "sliced", "whole", "half",
)  # fmt: skip

_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")
_RELATION = re.compile(r"\b(?:" + "|".join(map(re.escape, RELATION_LEXICON)) + r")\b")
_ATTRIBUTES = frozenset(ATTRIBUTE_LEXICON)
# Words that may sit between an attribute and its noun, or that are never the noun.
_SKIP = frozenset({"a", "an", "the", "and", "or", "of", "with", "in", "on", "to", "is", "s"})


def words(text: str) -> list[str]:
    """Lower-case word tokens of ``text`` (letters and digits, apostrophes kept inside)."""
    return _WORD.findall(text.lower())


def is_relational(text: str) -> bool:
    """Return whether ``text`` uses a spatial-relation word (:data:`RELATION_LEXICON`).

    Example:
        >>> is_relational("the dog left of the car"), is_relational("a red car")
        (True, False)
    """
    return _RELATION.search(text.lower()) is not None


def has_attribute(text: str) -> bool:
    """Return whether ``text`` uses an attribute word (:data:`ATTRIBUTE_LEXICON`)."""
    return any(w in _ATTRIBUTES for w in words(text))


def attribute_noun_pairs(text: str) -> frozenset[tuple[str, str]]:
    """Return the ``(attribute, noun)`` pairs of ``text``.

    The noun is the next word after an attribute word that is neither another attribute nor
    a function word, so ``"big red ball"`` gives ``(big, ball)`` and ``(red, ball)``.

    Example:
        >>> sorted(attribute_noun_pairs("the big red ball near a white dog"))
        [('big', 'ball'), ('red', 'ball'), ('white', 'dog')]
    """
    return _pairs_of(words(text))


def _pairs_of(toks: list[str]) -> frozenset[tuple[str, str]]:
    pairs = set()
    for i, w in enumerate(toks):
        if w not in _ATTRIBUTES:
            continue
        for nxt in toks[i + 1 :]:
            if nxt in _ATTRIBUTES:
                continue
            if nxt not in _SKIP:
                pairs.add((w, nxt))
            break
    return frozenset(pairs)


def training_pairs(texts: Iterable[str]) -> frozenset[tuple[str, str]]:
    """Collect every attribute–noun pair used in the training split's texts."""
    out: set[tuple[str, str]] = set()
    for text in texts:
        out |= attribute_noun_pairs(text)
    return frozenset(out)


def is_compositional(text: str, seen_pairs: frozenset[tuple[str, str]]) -> bool:
    """Return whether ``text`` has an attribute–noun pair absent from ``seen_pairs``.

    Example:
        >>> is_compositional("a blue dog", frozenset({("blue", "car")}))
        True
    """
    return bool(attribute_noun_pairs(text) - seen_pairs)


def _box_rows(boxes_xyxy: np.ndarray) -> list[list[float]]:
    return np.asarray(boxes_xyxy, dtype=np.float64).reshape(-1, 4).tolist()


def is_small(boxes_xyxy: np.ndarray, width: int, height: int) -> bool:
    """Return whether the union box of ``boxes_xyxy`` covers < :data:`SMALL_AREA_FRACTION`.

    The union box (enclosing all boxes) is clipped to the image before measuring.

    Args:
        boxes_xyxy: ``(k, 4)`` boxes in continuous pixels.
        width: image width in pixels.
        height: image height in pixels.
    """
    return _is_small(_box_rows(boxes_xyxy), width, height)


def _is_small(rows: list[list[float]], width: int, height: int) -> bool:
    x0 = max(min(r[0] for r in rows), 0.0)
    y0 = max(min(r[1] for r in rows), 0.0)
    x1 = min(max(r[2] for r in rows), float(width))
    y1 = min(max(r[3] for r in rows), float(height))
    area = max(x1 - x0, 0.0) * max(y1 - y0, 0.0)
    return area < SMALL_AREA_FRACTION * width * height


def is_off_centre(boxes_xyxy: np.ndarray, width: int, height: int) -> bool:
    """Return whether no box contains the image centre ``(width / 2, height / 2)`` (closed).

    Example:
        >>> is_off_centre(np.array([[0.0, 0.0, 10.0, 10.0]]), 40, 40)
        True
    """
    return _is_off_centre(_box_rows(boxes_xyxy), width, height)


def _is_off_centre(rows: list[list[float]], width: int, height: int) -> bool:
    cx, cy = width / 2.0, height / 2.0
    return not any(r[0] <= cx <= r[2] and r[1] <= cy <= r[3] for r in rows)


def probe_tags(
    text: str,
    boxes_xyxy: np.ndarray,
    width: int,
    height: int,
    *,
    same_category_count: int | None = None,
    seen_pairs: frozenset[tuple[str, str]] | None = None,
) -> set[str]:
    """Return the probe tags of one phrase.

    Args:
        text: the phrase (or referring expression) the tags describe.
        boxes_xyxy: ``(k, 4)`` referent boxes in continuous pixels.
        width: image width in pixels.
        height: image height in pixels.
        same_category_count: objects of the target's category in the image, target
            included; None when the dataset has no categories (no ``distractors`` tag).
        seen_pairs: attribute–noun pairs of the training split; None skips
            ``compositional`` (e.g. for the training split itself).

    Returns:
        A subset of ``{"relational", "attribute", "compositional", "distractors", "small",
        "off-centre"}``.
    """
    toks = words(text)
    rows = _box_rows(boxes_xyxy)
    tags = set()
    if is_relational(text):
        tags.add("relational")
    if any(w in _ATTRIBUTES for w in toks):
        tags.add("attribute")
    if seen_pairs is not None and _pairs_of(toks) - seen_pairs:
        tags.add("compositional")
    if same_category_count is not None and same_category_count >= 2:
        tags.add("distractors")
    if _is_small(rows, width, height):
        tags.add("small")
    if _is_off_centre(rows, width, height):
        tags.add("off-centre")
    return tags
