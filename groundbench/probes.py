"""Robustness probes over sample lists: the protocol's tag/area selection and the blind control.

Both are pure functions of their inputs (and a seed): the same samples in any order give
the same result, so a report depends only on the protocol and the data.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Sequence

import numpy as np

from groundbench.errors import DataFormatError, ProtocolError, did_you_mean
from groundbench.protocol import SelectSpec
from groundbench.types import GroundingSample

#: Tag set on every sample of the blind control.
BLIND_TAG = "blind"


def union_area_fraction(sample: GroundingSample) -> float:
    """Return the area of the sample's union box, clipped to the image, over the image area.

    The union box encloses every box of the phrase (continuous ``xyxy`` pixels), as the MG
    lineage measures a phrase's size.

    Example:
        >>> s = GroundingSample("a", "a.png", 10, 10, "x", "x", (0, 1), [[0, 0, 5, 2], [8, 8, 12, 12]])
        >>> union_area_fraction(s)
        1.0
    """
    b = sample.boxes
    x0, y0 = max(b[:, 0].min(), 0.0), max(b[:, 1].min(), 0.0)
    x1, y1 = min(b[:, 2].max(), float(sample.width)), min(b[:, 3].max(), float(sample.height))
    area = max(x1 - x0, 0.0) * max(y1 - y0, 0.0)
    return float(area / (sample.width * sample.height))


def select_samples(samples: Sequence[GroundingSample], select: SelectSpec) -> list[GroundingSample]:
    """Return the samples a protocol's ``select`` section keeps, in their input order.

    A sample is kept when it has **all** of ``include_tags`` (each tag narrows the probe:
    ``[relational, small]`` = small relational phrases), **none** of ``exclude_tags``, and —
    when ``min_area_fraction > 0`` — a union box covering **strictly more** than that fraction
    of the image (:func:`union_area_fraction`). The MG convention drops phrases whose box
    covers 5% of the image or less, so ``min_area_fraction: 0.05`` keeps ``> 5%``.

    Args:
        samples: the split's samples.
        select: the protocol's selection (``include_tags``, ``exclude_tags``,
            ``min_area_fraction``).

    Example:
        >>> s = GroundingSample("a", "a.png", 10, 10, "x", "x", (0, 1), [[0, 0, 5, 1]], tags={"small"})
        >>> len(select_samples([s], SelectSpec(("small",), (), 0.0)))
        1
        >>> len(select_samples([s], SelectSpec((), (), 0.05)))  # covers exactly 5%: dropped
        0
    """
    include = frozenset(select.include_tags)
    exclude = frozenset(select.exclude_tags)
    fraction = float(select.min_area_fraction)
    return [
        s
        for s in samples
        if include <= s.tags
        and not (exclude & s.tags)
        and (fraction <= 0 or union_area_fraction(s) > fraction)
    ]


def check_select_tags(select: SelectSpec, split_tags: Iterable[str], where: str) -> list[str]:
    """Check the tags a selection names against the tags the split's samples carry.

    An ``include_tags`` entry no sample carries would leave nothing, and an ``exclude_tags``
    entry close to a carried tag (``notvisaul``) is a typo that would exclude nothing: both
    are errors with the closest tag. An ``exclude_tags`` entry like no carried tag (the MG
    preset's ``notvisual`` outside Flickr30k) excludes nothing and is returned as a note.

    Args:
        select: the protocol's selection.
        split_tags: every tag of the split's samples, before selection.
        where: what to name in messages, e.g. ``protocol synth_test.albef (synth/test)``.

    Returns:
        One note per excluded tag no sample carries.

    Raises:
        ProtocolError: an included tag no sample carries, or an excluded tag close to one.

    Example:
        >>> sel = SelectSpec(("relational",), ("notvisual",), 0.0)
        >>> check_select_tags(sel, {"relational", "small"}, "p")
        ["p: select.exclude_tags: no sample carries 'notvisual', so it excludes nothing"]
    """
    known = sorted(set(split_tags))
    shown = ", ".join(known[:40]) + (f", … ({len(known)} tags)" if len(known) > 40 else "")
    notes = []
    for key, tags in (("include_tags", select.include_tags), ("exclude_tags", select.exclude_tags)):
        for tag in tags:
            if tag in known:
                continue
            hint = did_you_mean(tag, known)
            if key == "include_tags" or hint:
                raise ProtocolError(
                    f"{where}: select.{key}: no sample carries the tag {tag!r}{hint} "
                    f"(tags of the split: {shown or 'none'})"
                )
            notes.append(
                f"{where}: select.{key}: no sample carries {tag!r}, so it excludes nothing"
            )
    return notes


#: ``key=value`` tag keys whose value names what the target is (synthetic shape and colour,
#: RefCOCO's COCO category): a donor phrase using such a word describes the target.
DESCRIBING_TAG_KEYS: tuple[str, ...] = ("shape", "colour", "color", "category")
#: Tag added to a blind sample whose donor phrase still describes its target (no donor
#: that does not was left for it).
DESCRIBING_DONOR_TAG = "blind:donor-describes-target"
# words that say nothing about what a target is: articles, prepositions, relation words
_STOP_WORDS = frozenset(
    "a an the of and or to in on at by with is are its it this that these those there "
    "left right above below under over behind front next near between beside top bottom "
    "middle center centre other another one".split()
)
_WORD = re.compile(r"[a-z0-9]+")
# tries per sample to find a swap partner; bounds the repair at O(n · _TRIES)
_TRIES = 256


def _words(text: str) -> frozenset[str]:
    return frozenset(_WORD.findall(text.lower()))


def target_words(sample: GroundingSample) -> frozenset[str]:
    """Words that describe a sample's target: its phrase's content words and its attributes.

    The attributes are the values of its ``shape=``, ``colour=`` and ``category=`` tags
    (:data:`DESCRIBING_TAG_KEYS`); function and spatial-relation words are left out.

    Example:
        >>> s = GroundingSample("a", "a.png", 4, 4, "the star", "the star", (0, 8),
        ...                     [[0, 0, 1, 1]], tags={"shape=star", "colour=white", "small"})
        >>> sorted(target_words(s))
        ['star', 'white']
    """
    attributes = set()
    for tag in sample.tags:
        key, sep, value = tag.partition("=")
        if sep and key in DESCRIBING_TAG_KEYS:
            attributes |= _words(value)
    return frozenset((_words(sample.phrase) | attributes) - _STOP_WORDS)


def _categories(sample: GroundingSample) -> frozenset[str]:
    return frozenset(t for t in sample.tags if t.startswith("category="))


def describes_target(donor: GroundingSample, target: GroundingSample) -> bool:
    """Whether ``donor``'s phrase could be read as describing ``target``.

    True when the donor's phrase uses one of :func:`target_words` (the target's shape,
    colour, category name, or a content word of its own phrase), or both samples carry
    the same ``category=`` tag (RefCOCO: another expression of the same COCO category).
    """
    if _categories(donor) & _categories(target):
        return True
    return bool(_words(donor.phrase) & target_words(target))


def blind_derangement(samples: Sequence[GroundingSample], seed: int) -> list[int]:
    """Return ``source[i]``: whose phrase sample ``i`` gets, never one from its own image.

    Images are shuffled (seeded), samples are laid out image by image, and each takes the
    phrase of the sample ``m`` places further on (cyclically), ``m`` being the most phrases
    any one image has. No sample keeps its own phrase or gets one about its own image (which
    could name the same referent, as RefCOCO's several sentences per object do). Then each
    sample whose donor describes its target (:func:`describes_target`) swaps donors with
    another sample (seeded; the first of up to 256 random partners for which both new
    donors come from another image and describe neither target), so a donor that describes
    its target remains only where no such swap was found.

    Raises:
        DataFormatError: fewer than 2 samples, or one image holds more than half of them
            (then no such swap exists).

    Example:
        >>> s = [GroundingSample(f"s{i}", f"{i // 2}.png", 4, 4, "x", "x", (0, 1), [[0, 0, 1, 1]])
        ...      for i in range(6)]
        >>> src = blind_derangement(s, seed=0)
        >>> all(s[j].image_path != s[i].image_path for i, j in enumerate(src))
        True
    """
    n = len(samples)
    by_id = sorted(range(n), key=lambda i: samples[i].id)
    groups: dict[str, list[int]] = {}
    for i in by_id:
        groups.setdefault(samples[i].image_path, []).append(i)
    largest = max((len(g) for g in groups.values()), default=0)
    if n < 2 or 2 * largest > n:
        raise DataFormatError(
            f"blind control: cannot give each of {n} samples a phrase from another image "
            f"(one image holds {largest} of them); evaluate more samples or images"
        )
    rng = np.random.default_rng(seed)
    images = sorted(groups)
    order: list[int] = []
    for k in rng.permutation(len(images)):
        members = groups[images[k]]
        order += [members[j] for j in rng.permutation(len(members))]
    source = [0] * n
    for pos, i in enumerate(order):
        source[i] = order[(pos + largest) % n]
    _avoid_describing_donors(samples, source, by_id, rng)
    return source


def _avoid_describing_donors(
    samples: Sequence[GroundingSample], source: list[int], by_id: list[int], rng
) -> None:
    """Swap donors in place so that as few as possible describe their target."""
    words = [_words(s.phrase) for s in samples]
    targets = [target_words(s) for s in samples]
    cats = [_categories(s) for s in samples]
    image = [s.image_path for s in samples]

    def fits(donor: int, target: int) -> bool:
        return (
            image[donor] != image[target]
            and not (cats[donor] & cats[target])
            and not (words[donor] & targets[target])
        )

    n = len(samples)
    for i in by_id:
        if fits(source[i], i):
            continue
        for pos in rng.integers(0, n, size=min(_TRIES, n)):
            j = by_id[int(pos)]
            if j != i and fits(source[j], i) and fits(source[i], j):
                source[i], source[j] = source[j], source[i]
                break


def blind_control(samples: Sequence[GroundingSample], seed: int) -> list[GroundingSample]:
    """Swap every sample's phrase (text, phrase, span) for another image's, by a seeded derangement.

    Boxes, mask and image stay, so a method that ignores language scores the same as on the
    real phrases, and one that listens drops to what the image alone tells it (its centre or
    saliency prior): donors are drawn so that they do not describe the target
    (:func:`blind_derangement`). Ids are kept; each sample gets the tag ``blind`` and
    ``meta["blind_source_id"]`` (the sample whose phrase it now carries); one whose donor
    still describes its target (no other was found) also gets :data:`DESCRIBING_DONOR_TAG`,
    so the report scores those apart. The swap depends only on the seed and the set of
    samples, not on their order.

    Raises:
        DataFormatError: as :func:`blind_derangement`.
    """
    source = blind_derangement(samples, seed)
    out = []
    for s, j in zip(samples, source, strict=True):
        donor = samples[j]
        tags = s.tags | {BLIND_TAG}
        if describes_target(donor, s):
            tags |= {DESCRIBING_DONOR_TAG}
        out.append(
            dataclasses.replace(
                s,
                text=donor.text,
                phrase=donor.phrase,
                span=donor.span,
                tags=tags,
                meta={**s.meta, "blind_source_id": donor.id},
            )
        )
    return out
