"""Flickr30k Entities: phrase markup in ``Sentences/*.txt``, boxes in ``Annotations/*.xml``.

Layout under the dataset root (the Flickr30k Entities repository plus the Flickr30k images)::

    <root>/train.txt  <root>/val.txt  <root>/test.txt      one image id per line
    <root>/Sentences/<image_id>.txt                       five marked-up captions
    <root>/Annotations/<image_id>.xml                     Pascal-VOC-like boxes
    <root>/flickr30k-images/<image_id>.jpg

A caption marks each phrase as ``[/EN#<entity_id>/<type>[/<type>...] words]``. The XML has
``size/width``, ``size/height`` and ``object`` elements with one or more ``name`` (entity
ids) and either a ``bndbox`` (``xmin, ymin, xmax, ymax``: 1-based inclusive pixel indices,
converted by :func:`dataset_adapters.coords.corners_1based_to_xyxy`) or ``nobndbox``/``scene``
flags.

One sample per phrase that has a box, id ``flickr30k/<split>/<image_id>/s<k>/p<entity_id>``
(``k`` = 0-based caption line; a second mention of the same entity in one caption gets the
suffix ``_2``, a third ``_3``...). Phrases of entities with only the XML ``scene`` flag (no
box) ground to the whole image ``[0, 0, width, height]`` and are tagged ``whole_image``;
the shipped protocols exclude them, as the standard boxed-phrase set does. The tag
``scene`` is only ever the entity *type* of the markup (``[/EN#7/scene a stage]``), box or
not. Other phrases without a box (``notvisual`` and ``nobndbox``) are not samples and are
counted in ``skipped``.

``<root>/UNRELATED_CAPTIONS`` (from the Flickr30k Entities repository; ``<image_id>
<sentence number>`` per line, 1-based, ``#`` comments) lists captions that do not describe
their image: they are left out of the training captions (counted in ``skipped``) and their
phrases are tagged ``unrelated_caption`` (kept: the standard evaluation counts them).
"""

from __future__ import annotations

import logging
import re
import xml.etree.ElementTree as ET
from collections import Counter
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np

from dataset_adapters._files import under_root
from dataset_adapters.base import ADAPTERS, DatasetAdapter
from dataset_adapters.coords import corners_1based_to_xyxy
from dataset_adapters.probe_tags import probe_tags, training_pairs
from groundbench.errors import DataFormatError
from groundbench.types import CaptionRecord, GroundingSample

log = logging.getLogger(__name__)

#: Published image counts per split (Plummer et al. 2015).
PUBLISHED_IMAGES = {"train": 29783, "val": 1000, "test": 1000}

#: Tag of a phrase grounded to the whole image (XML ``scene`` flag, no box).
WHOLE_IMAGE_TAG = "whole_image"
#: Tag of a phrase of a caption listed in ``UNRELATED_CAPTIONS``.
UNRELATED_TAG = "unrelated_caption"
#: The official list of captions that do not describe their image, under the dataset root.
UNRELATED_CAPTIONS = "UNRELATED_CAPTIONS"

_MARKUP = re.compile(r"\[/EN#(\d+)((?:/[^\s/\]]+)+) ([^\]]*)\]")
_BOX_MODES = ("any", "merged")


@dataclass(frozen=True)
class Phrase:
    """One marked-up phrase of a caption: entity id, types and its span in the clean text."""

    entity_id: str
    types: tuple[str, ...]
    text: str
    span: tuple[int, int]


def parse_sentence(line: str, where: str) -> tuple[str, list[Phrase]]:
    """Strip the ``[/EN#id/type words]`` markup from one caption line.

    Args:
        line: a line of ``Sentences/<image_id>.txt``.
        where: file and line, for errors.

    Returns:
        The clean caption (words joined by single spaces) and its phrases, with character
        spans into it.

    Raises:
        DataFormatError: brackets are unbalanced or a phrase is malformed.

    Example:
        >>> text, phrases = parse_sentence("[/EN#18/people A man] rides [/EN#7/other a bike] .", "x")
        >>> text, [(p.entity_id, p.types, text[p.span[0]:p.span[1]]) for p in phrases]
        ('A man rides a bike .', [('18', ('people',), 'A man'), ('7', ('other',), 'a bike')])
    """
    parts: list[str] = []
    phrases: list[Phrase] = []
    pos = 0  # in the marked-up line
    length = 0  # of the clean text built so far

    def add(chunk: str) -> None:
        nonlocal length
        for word in chunk.split():
            if parts:
                length += 1
            parts.append(word)
            length += len(word)

    for m in _MARKUP.finditer(line):
        add(line[pos : m.start()])
        words = m.group(3).split()
        if not words:
            raise DataFormatError(f"{where}: phrase {m.group(0)!r} has no words")
        start = length + (1 if parts else 0)
        add(m.group(3))
        phrases.append(
            Phrase(
                m.group(1),
                tuple(m.group(2).strip("/").split("/")),
                " ".join(words),
                (start, length),
            )
        )
        pos = m.end()
    add(line[pos:])
    text = " ".join(parts)
    if "[" in text or "]" in text:
        raise DataFormatError(
            f"{where}: unbalanced or malformed phrase markup in {line.strip()!r:.120}; "
            "expected [/EN#<id>/<type> words]"
        )
    return text, phrases


@dataclass(frozen=True)
class ImageBoxes:
    """What one ``Annotations/<id>.xml`` says: size, boxes per entity, scene entities."""

    width: int
    height: int
    boxes: dict[str, np.ndarray]  # entity id -> (k, 4) xyxy
    scene: frozenset[str]


def parse_annotation(path: Path) -> ImageBoxes:
    """Read one Flickr30k Entities XML file; boxes become ``xyxy`` continuous pixels.

    Raises:
        DataFormatError: the file is missing, truncated, or lacks a size or box coordinate.
    """
    try:
        root = ET.parse(path).getroot()
    except FileNotFoundError as exc:
        raise DataFormatError(f"{path} does not exist; check the dataset root") from exc
    except ET.ParseError as exc:
        raise DataFormatError(
            f"{path}: malformed XML ({exc}); the file is truncated or corrupt: re-download it"
        ) from exc

    def number(elem: ET.Element | None, tag: str, where: str) -> int:
        node = None if elem is None else elem.find(tag)
        try:
            return int(float(node.text))  # type: ignore[union-attr,arg-type]
        except (AttributeError, TypeError, ValueError) as exc:
            raise DataFormatError(f"{path}: {where} needs a numeric <{tag}>") from exc

    size = root.find("size")
    width, height = number(size, "width", "<size>"), number(size, "height", "<size>")
    boxes: dict[str, list[list[int]]] = {}
    scene = set()
    for i, obj in enumerate(root.findall("object")):
        names = [n.text.strip() for n in obj.findall("name") if n.text and n.text.strip()]
        if not names:
            raise DataFormatError(f"{path}: <object> {i} has no <name> (entity id)")
        bnd = obj.find("bndbox")
        if bnd is not None:
            corners = [
                number(bnd, t, f"<object> {i} <bndbox>") for t in ("xmin", "ymin", "xmax", "ymax")
            ]
            for name in names:
                boxes.setdefault(name, []).append(corners)
        elif (obj.findtext("scene") or "0").strip() not in ("0", ""):
            scene.update(names)
    return ImageBoxes(
        width,
        height,
        {k: corners_1based_to_xyxy(np.array(v, dtype=np.float64)) for k, v in boxes.items()},
        frozenset(scene),
    )


def read_unrelated_captions(path: Path) -> frozenset[tuple[str, int]]:
    """Read ``UNRELATED_CAPTIONS``: ``(image_id, k)`` pairs, ``k`` the 0-based caption line.

    The file says ``<image_id> <sentence number>`` per line, the number 1-based; lines
    starting with ``#`` are comments. A missing file gives the empty set.

    Raises:
        DataFormatError: a line is not two integers with a sentence number >= 1.

    Example:
        >>> import tempfile, os
        >>> path = os.path.join(tempfile.mkdtemp(), "UNRELATED_CAPTIONS")
        >>> _ = open(path, "w").write("# format: <imageID> <sentence number>\\n129602216 5\\n")
        >>> sorted(read_unrelated_captions(Path(path)))
        [('129602216', 4)]
    """
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return frozenset()
    except UnicodeDecodeError as exc:
        raise DataFormatError(f"{path}: not UTF-8 text ({exc}); re-download it") from exc
    out = set()
    for n, line in enumerate(lines, 1):
        parts = line.split()
        if not parts or parts[0].startswith("#"):
            continue
        if len(parts) != 2 or not parts[0].isdigit() or not parts[1].isdigit() or parts[1] == "0":
            raise DataFormatError(
                f"{path} line {n}: expected '<image_id> <sentence number>' (integers, the "
                f"number 1-based), got {line.strip()!r:.80}; re-download the file from the "
                "Flickr30k Entities repository"
            )
        out.add((parts[0], int(parts[1]) - 1))
    return frozenset(out)


@ADAPTERS.register("flickr30k_entities", formats="Sentences/*.txt + Annotations/*.xml")
class Flickr30kEntitiesAdapter(DatasetAdapter):
    """Flickr30k Entities phrases with their boxes.

    Args:
        root: the folder holding ``Sentences/``, ``Annotations/``, the split lists and
            ``flickr30k-images/``.
        box_mode: ``any`` (default: every box of the entity, a hit on any counts) or
            ``merged`` (one box enclosing all of them).
        image_dir: the images; default ``<root>/flickr30k-images``.
    """

    name = "flickr30k_entities"
    count_unit = "images"

    def __init__(
        self, root: Path, *, box_mode: str = "any", image_dir: str | Path | None = None
    ) -> None:
        if box_mode not in _BOX_MODES:
            raise DataFormatError(
                f"flickr30k_entities adapter: unknown box_mode {box_mode!r}; use any or merged"
            )
        super().__init__(root, box_mode=box_mode, image_dir=image_dir)
        self.box_mode = box_mode
        self.image_dir = (
            under_root(self.root, image_dir) if image_dir else self.root / "flickr30k-images"
        )
        self.skipped: Counter = Counter()  # reason -> phrases or captions the last load left out

    def splits(self) -> tuple[str, ...]:
        return tuple(s for s in ("train", "val", "test") if (self.root / f"{s}.txt").is_file())

    def published_counts(self) -> dict[str, int]:
        """Published image counts per split (``data check`` compares image counts)."""
        return dict(PUBLISHED_IMAGES)

    def image_ids(self, split: str) -> list[str]:
        """Return the split's image ids, in file order."""
        path = self.root / f"{split}.txt"
        if not path.is_file():
            raise DataFormatError(
                f"{path} does not exist; Flickr30k Entities splits are train, val and test "
                "(copy train.txt/val.txt/test.txt from the Flickr30k Entities repository)"
            )
        ids = [
            line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()
        ]
        bad = [i for i in ids if not i.isdigit()]
        if bad:
            raise DataFormatError(f"{path}: image ids must be digits, got {bad[0]!r}")
        return ids

    def _sentences(self, image_id: str) -> list[tuple[str, list[Phrase]]]:
        path = self.root / "Sentences" / f"{image_id}.txt"
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except FileNotFoundError as exc:
            raise DataFormatError(f"{path} does not exist; check the dataset root") from exc
        except UnicodeDecodeError as exc:
            raise DataFormatError(f"{path}: not UTF-8 text ({exc}); re-download it") from exc
        return [
            parse_sentence(line, f"{path} line {k + 1}")
            for k, line in enumerate(lines)
            if line.strip()
        ]

    @cached_property
    def _unrelated(self) -> frozenset[tuple[str, int]]:
        path = self.root / UNRELATED_CAPTIONS
        if not path.is_file():
            log.info(
                "flickr30k_entities: no %s under %s; every caption counts as related "
                "(copy the file from the Flickr30k Entities repository)",
                UNRELATED_CAPTIONS,
                self.root,
            )
        return read_unrelated_captions(path)

    @cached_property
    def _train_pairs(self) -> frozenset[tuple[str, str]]:
        return training_pairs(
            p.text for i in self.image_ids("train") for _, ps in self._sentences(i) for p in ps
        )

    def _boxes(self, entity_id: str, ann: ImageBoxes) -> np.ndarray | None:
        """The entity's ``(k, 4)`` boxes per ``box_mode``; the whole image for a scene; or None.

        An entity with a box is grounded to it even when another XML object flags it
        ``scene``; only scene entities without any box get the whole image.
        """
        if entity_id in ann.boxes:
            boxes = ann.boxes[entity_id]
            if self.box_mode == "merged":
                return np.concatenate([boxes[:, :2].min(0), boxes[:, 2:].max(0)])[None]
            return boxes
        if entity_id in ann.scene:
            return np.array([[0.0, 0.0, ann.width, ann.height]])
        return None

    @staticmethod
    def _type_counts(sentences: list[tuple[str, list[Phrase]]], ann: ImageBoxes) -> Counter:
        """Boxed entities of the image per type, each entity with the union of its mentions' types.

        A chain can be typed differently in different captions (``people`` in one, ``other``
        in another); the union makes the count independent of caption order.
        """
        types_by_entity: dict[str, set[str]] = {}
        for _, phrases in sentences:
            for p in phrases:
                types_by_entity.setdefault(p.entity_id, set()).update(p.types)
        return Counter(t for e, ts in types_by_entity.items() if e in ann.boxes for t in ts)

    def load_samples(self, split: str) -> list[GroundingSample]:
        seen_pairs = self._train_pairs if split != "train" and "train" in self.splits() else None
        self.skipped = Counter()
        samples = []
        for image_id in self.image_ids(split):
            ann = parse_annotation(self.root / "Annotations" / f"{image_id}.xml")
            sentences = self._sentences(image_id)
            type_counts = self._type_counts(sentences, ann)
            for k, (text, phrases) in enumerate(sentences):
                mentions: Counter = Counter()
                for p in phrases:
                    mentions[p.entity_id] += 1
                    boxes = self._boxes(p.entity_id, ann)
                    if boxes is None:
                        self.skipped["notvisual" if "notvisual" in p.types else "no_box"] += 1
                        continue
                    suffix = "" if mentions[p.entity_id] == 1 else f"_{mentions[p.entity_id]}"
                    same = (
                        max(type_counts[t] for t in p.types) if p.entity_id in ann.boxes else None
                    )
                    tags = set(p.types) | {f"split={split}"}
                    if p.entity_id not in ann.boxes:
                        tags.add(WHOLE_IMAGE_TAG)
                    if (image_id, k) in self._unrelated:
                        tags.add(UNRELATED_TAG)
                    tags |= probe_tags(
                        p.text, boxes, ann.width, ann.height,
                        same_category_count=same, seen_pairs=seen_pairs,
                    )  # fmt: skip
                    samples.append(
                        GroundingSample(
                            id=f"flickr30k/{split}/{image_id}/s{k}/p{p.entity_id}{suffix}",
                            image_path=str(self.image_dir / f"{image_id}.jpg"),
                            width=ann.width,
                            height=ann.height,
                            text=text,
                            phrase=p.text,
                            span=p.span,
                            boxes=boxes,
                            tags=tags,
                            meta={
                                "image_id": image_id,
                                "sentence_index": k,
                                "entity_id": p.entity_id,
                            },
                        )
                    )
        if self.skipped:
            log.info(
                "flickr30k_entities %s: phrases without boxes left out: %s",
                split,
                dict(self.skipped),
            )
        return samples

    def load_captions(self, split: str) -> list[CaptionRecord]:
        """Return the split's captions, less those ``UNRELATED_CAPTIONS`` lists (see ``skipped``)."""
        self.skipped = Counter()
        out = []
        for image_id in self.image_ids(split):
            ann = parse_annotation(self.root / "Annotations" / f"{image_id}.xml")
            for k, (text, _) in enumerate(self._sentences(image_id)):
                if (image_id, k) in self._unrelated:
                    self.skipped[UNRELATED_TAG] += 1
                    continue
                out.append(
                    CaptionRecord(
                        id=f"flickr30k/{split}/{image_id}/s{k}",
                        image_path=str(self.image_dir / f"{image_id}.jpg"),
                        width=ann.width,
                        height=ann.height,
                        text=text,
                        tags=frozenset({f"split={split}"}),
                    )
                )
        if self.skipped:
            log.info(
                "flickr30k_entities %s: captions left out (listed in %s): %d",
                split,
                UNRELATED_CAPTIONS,
                self.skipped[UNRELATED_TAG],
            )
        return out
