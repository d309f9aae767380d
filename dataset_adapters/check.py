"""``groundbench data check``: what is on disk, next to what was published, and what is wrong.

:func:`check_dataset` loads every split of an adapter and reports, per split: the sample
and image counts next to the published count (caption counts for a captions-only split),
missing image files (counted, never fatal: an evaluation reports them too), records whose
image file (its header, no pixel decoded) has another size than the record says (fatal:
an evaluation refuses them), boxes reaching
outside the image, degenerate boxes (zero width or height), duplicate sample ids, what the
adapter had to leave out of the files (its ``load_warnings``), what it does not count as a
sample by design (its ``skipped``, e.g. Flickr30k's ``notvisual`` phrases), the referents
behind the sentences (REFER: one ref, several sentences), the training captions the
split gives, the first malformed record
(file and record named) when a split cannot be loaded at all, and, for each
:class:`Expectation` given (the shipped protocols' sample sets), the count found next to
the count expected on the full dataset.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from dataset_adapters.base import DatasetAdapter
from groundbench.bounds import image_header_size
from groundbench.errors import DataFormatError
from groundbench.types import GroundingSample

#: How many example ids each finding lists.
EXAMPLES = 5
#: Boxes may overshoot the image by this much (px) before counting as out of image.
TOLERANCE_PX = 1e-6


@dataclass(frozen=True)
class Expectation:
    """A named sample set of one split and what it should count on the full dataset.

    Attributes:
        name: what is counted, e.g. the protocol ``flickr30k_test.albef``.
        split: the split it reads.
        expected: the full-dataset count, or None where none is published.
        unit: ``samples`` or ``images``.
        source: where ``expected`` comes from.
        measure: the split's samples -> the count (e.g. the protocol's selection, counted).
    """

    name: str
    split: str
    expected: int | None
    unit: str
    source: str
    measure: Callable[[list[GroundingSample]], int]


@dataclass(frozen=True)
class ExpectedCheck:
    """An :class:`Expectation` measured: ``found`` next to ``expected``."""

    name: str
    expected: int | None
    found: int
    unit: str
    source: str

    @property
    def differs(self) -> bool:
        """Whether a published count exists and the data here gives another."""
        return self.expected is not None and self.found != self.expected


@dataclass(frozen=True)
class SplitCheck:
    """Findings for one split; ``examples`` maps a finding to a few sample ids or paths."""

    split: str
    samples: int = 0
    refs: int | None = None
    captions: int = 0
    images: int = 0
    published: int | None = None
    unit: str = "samples"
    missing_images: int = 0
    out_of_image_boxes: int = 0
    degenerate_boxes: int = 0
    duplicate_ids: int = 0
    size_mismatches: int = 0
    error: str | None = None
    examples: dict[str, list[str]] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()
    expected: tuple[ExpectedCheck, ...] = ()
    skipped: dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """No malformed record, duplicate id or record sized unlike its image (the rest warns)."""
        return self.error is None and self.duplicate_ids == 0 and self.size_mismatches == 0

    @property
    def loaded(self) -> int:
        """The count to compare with :attr:`published` (samples or images, per ``unit``)."""
        return self.images if self.unit == "images" else self.samples


def _missing(paths: list[str]) -> list[str]:
    return [p for p in paths if not os.path.isfile(p)]


def _size_mismatches(records: Sequence[Any]) -> list[str]:
    """``"<id>: record W×H, image W'×H'"`` per record whose image header gives another size.

    Only headers are read (Pillow decodes no pixel), once per image; a missing or
    unreadable image is left to the missing-image count and to evaluation.
    """
    real: dict[str, tuple[int, int] | None] = {}
    found = []
    for r in records:
        if r.image_path not in real:
            try:
                real[r.image_path] = image_header_size(r.image_path)
            except OSError:
                real[r.image_path] = None
        size = real[r.image_path]
        if size is not None and size != (r.width, r.height):
            found.append(f"{r.id}: record {r.width}×{r.height}, image {size[0]}×{size[1]}")
    return found


def _check_captions(adapter: DatasetAdapter, split: str) -> SplitCheck:
    """Findings for a captions-only split (an adapter whose ``kind(split)`` is ``captions``)."""
    try:
        captions = adapter.load_captions(split)
    except DataFormatError as exc:
        return SplitCheck(split, error=str(exc))
    images = sorted({c.image_path for c in captions})
    missing = _missing(images)
    dupes = [i for i, c in Counter(c.id for c in captions).items() if c > 1]
    sizes = _size_mismatches(captions)
    found = (("missing_images", missing), ("duplicate_ids", dupes), ("size_mismatches", sizes))
    return SplitCheck(
        split,
        captions=len(captions),
        images=len(images),
        missing_images=len(missing),
        duplicate_ids=len(dupes),
        size_mismatches=len(sizes),
        examples={kind: v[:EXAMPLES] for kind, v in found if v},
        warnings=tuple(getattr(adapter, "load_warnings", ())),
    )


def check_split(
    adapter: DatasetAdapter, split: str, expectations: Sequence[Expectation] = ()
) -> SplitCheck:
    """Load one split and collect its findings (a malformed file becomes ``error``).

    Args:
        adapter: the opened dataset.
        split: the split to load.
        expectations: sample sets to count in this split (those of other splits are ignored).
    """
    kind = getattr(adapter, "kind", None)
    if kind is not None and kind(split) == "captions":
        return _check_captions(adapter, split)
    published = (
        adapter.published_counts().get(split) if hasattr(adapter, "published_counts") else None
    )
    unit = getattr(adapter, "count_unit", "samples")
    try:
        samples = adapter.load_samples(split)
    except DataFormatError as exc:
        return SplitCheck(split, published=published, unit=unit, error=str(exc))
    warnings = tuple(getattr(adapter, "load_warnings", ()))
    skipped = dict(getattr(adapter, "skipped", {}))  # before load_captions resets it
    refs = (
        len({s.meta["ref_id"] for s in samples})
        if samples and all("ref_id" in s.meta for s in samples)
        else None
    )
    try:
        captions = len(adapter.load_captions(split))
    except DataFormatError:
        captions = 0  # the samples loaded: the caption files' problem shows at training
    expected = tuple(
        ExpectedCheck(e.name, e.expected, e.measure(samples), e.unit, e.source)
        for e in expectations
        if e.split == split
    )
    examples: dict[str, list[str]] = {}

    def note(kind: str, what: str) -> None:
        bucket = examples.setdefault(kind, [])
        if len(bucket) < EXAMPLES:
            bucket.append(what)

    images = sorted({s.image_path for s in samples})
    missing = _missing(images)
    for p in missing[:EXAMPLES]:
        note("missing_images", p)
    out_of_image = degenerate = 0
    for s in samples:
        b = s.boxes
        outside = (
            (b[:, 0] < -TOLERANCE_PX)
            | (b[:, 1] < -TOLERANCE_PX)
            | (b[:, 2] > s.width + TOLERANCE_PX)
            | (b[:, 3] > s.height + TOLERANCE_PX)
        )
        flat = (b[:, 2] <= b[:, 0]) | (b[:, 3] <= b[:, 1])
        if outside.any():
            out_of_image += int(np.count_nonzero(outside))
            note("out_of_image_boxes", s.id)
        if flat.any():
            degenerate += int(np.count_nonzero(flat))
            note("degenerate_boxes", s.id)
    dupes = [i for i, c in Counter(s.id for s in samples).items() if c > 1]
    for i in dupes[:EXAMPLES]:
        note("duplicate_ids", i)
    sizes = _size_mismatches(samples)
    for what in sizes[:EXAMPLES]:
        note("size_mismatches", what)
    return SplitCheck(
        split,
        samples=len(samples),
        refs=refs,
        captions=captions,
        images=len(images),
        published=published,
        unit=unit,
        missing_images=len(missing),
        out_of_image_boxes=out_of_image,
        degenerate_boxes=degenerate,
        duplicate_ids=len(dupes),
        size_mismatches=len(sizes),
        examples=examples,
        warnings=warnings,
        expected=expected,
        skipped=skipped,
    )


def check_dataset(
    adapter: DatasetAdapter,
    splits: list[str] | None = None,
    expectations: Sequence[Expectation] = (),
) -> list[SplitCheck]:
    """Check ``splits`` (default: every split the adapter finds) of one dataset root.

    Args:
        adapter: the opened dataset.
        splits: the splits to check; default every split found.
        expectations: sample sets to count next to their expected full-dataset counts.

    Raises:
        DataFormatError: the dataset root provides no split at all.
    """
    splits = list(splits or adapter.splits())
    if not splits:
        raise DataFormatError(
            f"{adapter.root}: no {adapter.name} split found; see docs/adapters.md for the layout"
        )
    return [check_split(adapter, s, expectations) for s in splits]


def _count(n: int | None, unit: str) -> str:
    return "-" if n is None else f"{n} {unit}"


def format_checks(name: str, checks: list[SplitCheck]) -> str:
    """Render findings as a plain-text table plus one line per problem.

    A malformed file that breaks several splits (one ``instances.json`` for all of them) is
    reported once, naming those splits.
    """
    width = max(8, *(len(c.split) for c in checks))
    n_warnings = sum(len(c.warnings) for c in checks)
    verdict = "OK" if all(c.ok for c in checks) else "PROBLEMS FOUND"
    if n_warnings:
        verdict += f" ({n_warnings} warning{'s' * (n_warnings > 1)} below)"
    lines = [
        f"{name}: {verdict}",
        f"{'split':<{width}} {'samples':>8} {'refs':>7} {'captions':>8} {'images':>7} {'published':>18} "
        f"{'missing img':>11} {'out-of-image':>12} {'degenerate':>10} {'dup ids':>7} "
        f"{'size≠image':>10}",
    ]
    for c in checks:
        pub = _count(c.published, c.unit)
        if c.published is not None and c.published != c.loaded:
            pub += " (!)"
        lines.append(
            f"{c.split:<{width}} {c.samples:>8} {'-' if c.refs is None else c.refs:>7} "
            f"{c.captions:>8} {c.images:>7} {pub:>18} "
            f"{c.missing_images:>11} "
            f"{c.out_of_image_boxes:>12} {c.degenerate_boxes:>10} {c.duplicate_ids:>7} "
            f"{c.size_mismatches:>10}"
        )
    lines += _expected_table(checks)
    errors: dict[str, list[str]] = {}
    for c in checks:
        if c.error:
            errors.setdefault(c.error, []).append(c.split)
    lines += [f"[{', '.join(splits)}] malformed: {error}" for error, splits in errors.items()]
    for c in checks:
        if c.skipped:
            counts = ", ".join(f"{k} {v}" for k, v in sorted(c.skipped.items()))
            lines.append(f"[{c.split}] not samples by design: {counts}")
        lines += [f"[{c.split}] warning: {w}" for w in c.warnings]
        for kind, ids in c.examples.items():
            lines.append(f"[{c.split}] {kind.replace('_', ' ')}: {', '.join(ids)}")
    return "\n".join(lines)


def _expected_table(checks: list[SplitCheck]) -> list[str]:
    rows = [(c.split, e) for c in checks for e in c.expected]
    if not rows:
        return []
    pw = max(len("protocol"), *(len(e.name) for _, e in rows))
    sw = max(len("split"), *(len(s) for s, _ in rows))
    lines = [
        "expected on the full dataset (docs/adapters.md) vs found here:",
        f"{'protocol':<{pw}} {'split':<{sw}} {'expected':>15} {'found':>19}  source",
    ]
    for split, e in rows:
        found = _count(e.found, e.unit) + (" (!)" if e.differs else "")
        lines.append(
            f"{e.name:<{pw}} {split:<{sw}} {_count(e.expected, e.unit):>15} {found:>19}  {e.source}"
        )
    return lines


def checks_to_dict(checks: list[SplitCheck]) -> list[dict[str, Any]]:
    """Plain-data form of the findings (for ``--json``)."""
    return [
        asdict(c)
        | {"ok": c.ok, "loaded": c.loaded}
        | {"expected": [asdict(e) | {"differs": e.differs} for e in c.expected]}
        for c in checks
    ]
