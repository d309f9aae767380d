"""MDETR's pre-processed annotation files (COCO-style JSON with character spans).

Layout under the dataset root (MDETR's ``mdetr_annotations`` download plus the images)::

    <root>/mdetr_annotations/final_refcoco_{train,val,testA,testB}.json
    <root>/mdetr_annotations/final_refcoco+_{train,val,testA,testB}.json
    <root>/mdetr_annotations/final_refcocog_{train,val,test}.json
    <root>/mdetr_annotations/final_flickr_separateGT_{train,val,test}.json
    <root>/train2014/COCO_train2014_<12-digit id>.jpg      (RefCOCO family)
    <root>/flickr30k-images/<image id>.jpg                 (Flickr30k)

Each file has ``images`` (one record per expression or caption: ``id``, ``file_name``,
``width``, ``height``, ``caption``, ``dataset_name``, ``original_id`` or
``original_img_id``, ...) and ``annotations`` (``image_id`` = that record's id, ``bbox``
``[x, y, w, h]``, ``tokens_positive`` = ``[[start, end], ...]`` character spans into the
caption).

RefCOCO-family subsets give one sample per record (the whole expression, every box of the
record), id ``mdetr/<subset>/<split>/i<record id>``; their ``bbox`` is COCO's continuous
``[x, y, w, h]``.

The ``flickr`` subset (written by MDETR's ``flickr_combined.py``) gives one sample per
entry of a record's ``tokens_positive_eval`` (one per boxed phrase mention, as Flickr30k
Entities counts them), id ``mdetr/flickr/<split>/i<record id>/p<k>`` (``k`` = the entry's
index), with every box whose ``tokens_positive`` holds that mention's span. An annotation's
``tokens_positive`` lists *every* mention of the entities sharing its box, so it cannot be a
phrase itself. Its ``bbox`` is ``[xmin, ymin, xmax - xmin, ymax - ymin]`` over the XML's
**1-based inclusive** corners, so the box is ``[xmin - 1, ymin - 1, xmax, ymax]``, exactly
what the ``flickr30k_entities`` adapter reads from the same XML.
"""

from __future__ import annotations

from collections import defaultdict
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from dataset_adapters._files import bbox_field, field, read_json, under_root
from dataset_adapters.base import ADAPTERS, DatasetAdapter
from dataset_adapters.coords import coco_bbox_to_xyxy, corners_1based_to_xyxy
from dataset_adapters.probe_tags import probe_tags, training_pairs
from dataset_adapters.refcoco import PUBLISHED_SENTENCES
from groundbench.errors import DataFormatError
from groundbench.types import CaptionRecord, GroundingSample

#: subset -> (file-name stem after ``final_``, default image folder under the root).
SUBSETS: dict[str, tuple[str, str]] = {
    "refcoco": ("refcoco", "train2014"),
    "refcoco+": ("refcoco+", "train2014"),
    "refcocog": ("refcocog", "train2014"),
    "flickr": ("flickr_separateGT", "flickr30k-images"),
}
_SPLIT_ORDER = ("train", "val", "test", "testA", "testB")


def _spans(value: Any, where: str, text_len: int) -> tuple[tuple[int, int], ...]:
    ok = isinstance(value, list) and value and all(
        isinstance(s, list) and len(s) == 2 and all(isinstance(v, int) for v in s)
        and 0 <= s[0] <= s[1] <= text_len
        for s in value
    )  # fmt: skip
    if not ok:
        raise DataFormatError(
            f"{where}: tokens_positive must be [[start, end], ...] inside the caption "
            f"(length {text_len}), got {value!r:.80}"
        )
    return tuple(sorted((s[0], s[1]) for s in value))


def _size(value: int | str, key: str, where: str) -> int:
    """An image size: an int, or the digit string MDETR copies from the Flickr30k XML."""
    if isinstance(value, str):
        if not value.isdigit():
            raise DataFormatError(f"{where}: field {key!r} must be an integer, got {value!r:.40}")
        return int(value)
    return value


def _flickr_box(bbox: list[float]) -> np.ndarray:
    """MDETR's Flickr ``[xmin, ymin, xmax - xmin, ymax - ymin]`` (1-based corners) → ``xyxy``."""
    x, y, w, h = bbox
    return corners_1based_to_xyxy([x, y, x + w, y + h])


@ADAPTERS.register("mdetr", formats="MDETR final_*.json")
class MdetrAdapter(DatasetAdapter):
    """MDETR's RefCOCO/RefCOCO+/RefCOCOg and Flickr30k annotation files.

    Args:
        root: the folder holding ``mdetr_annotations/`` and the image folders.
        subset: ``refcoco`` (default), ``refcoco+``, ``refcocog`` or ``flickr``.
        image_dir: the images; default ``<root>/train2014`` for the RefCOCO family and
            ``<root>/flickr30k-images`` for ``flickr``.
    """

    name = "mdetr"

    def __init__(
        self, root: Path, *, subset: str = "refcoco", image_dir: str | Path | None = None
    ) -> None:
        if subset not in SUBSETS:
            raise DataFormatError(
                f"mdetr adapter: unknown subset {subset!r}; use one of {', '.join(SUBSETS)}"
            )
        super().__init__(root, subset=subset, image_dir=image_dir)
        self.subset = subset
        stem, default_images = SUBSETS[subset]
        self.stem = stem
        self.image_dir = (
            under_root(self.root, image_dir) if image_dir else self.root / default_images
        )
        self.count_unit = "images" if subset == "flickr" else "samples"

    def _path(self, split: str) -> Path:
        return self.root / "mdetr_annotations" / f"final_{self.stem}_{split}.json"

    def splits(self) -> tuple[str, ...]:
        found = sorted(self.root.glob(f"mdetr_annotations/final_{self.stem}_*.json"))
        names = {p.stem[len(f"final_{self.stem}_") :] for p in found}
        return tuple(sorted(names, key=lambda s: ((_SPLIT_ORDER + (s,)).index(s), s)))

    def published_counts(self) -> dict[str, int]:
        """Published counts: sentences (RefCOCO family, split_by unc/umd) or images (flickr)."""
        if self.subset == "flickr":
            return {"val": 1000, "test": 1000}
        split_by = "umd" if self.subset == "refcocog" else "unc"
        return dict(PUBLISHED_SENTENCES.get((self.subset, split_by), {}))

    def _records(self, split: str) -> list[tuple[dict, list[dict]]]:
        """The split's image records, sorted by id, each with its annotations."""
        path = self._path(split)
        if not path.is_file():
            raise DataFormatError(
                f"{path} does not exist; the {self.subset} splits here are "
                f"{', '.join(self.splits()) or 'none'} (download MDETR's annotations)"
            )
        data = read_json(path)
        anns = defaultdict(list)
        for i, ann in enumerate(field(data, "annotations", str(path), list)):
            where = f"{path} annotations[{i}]"
            ann["bbox"] = bbox_field(ann, "bbox", where)
            ann["where"] = where
            anns[field(ann, "image_id", where, int)].append(ann)
        records = []
        for i, img in enumerate(field(data, "images", str(path), list)):
            where = f"{path} images[{i}]"
            for key, kind in (("id", int), ("file_name", str), ("caption", str)):
                field(img, key, where, kind)
            for key in ("width", "height"):
                img[key] = _size(field(img, key, where, (int, str)), key, where)
            img["where"] = where
            records.append((img, anns.get(img["id"], [])))
        return sorted(records, key=lambda r: r[0]["id"])

    @cached_property
    def _train_pairs(self) -> frozenset[tuple[str, str]]:
        return training_pairs(img["caption"] for img, _ in self._records("train"))

    def _phrases(self, img: dict, anns: list[dict]) -> list[tuple[tuple[int, int], np.ndarray]]:
        """(span, boxes) per grounded phrase of one record."""
        text = img["caption"]
        if not anns:
            raise DataFormatError(f"{img['where']}: record {img['id']} has no annotation (box)")
        if self.subset != "flickr":
            boxes = np.stack([coco_bbox_to_xyxy(a["bbox"]) for a in anns])
            return [((0, len(text)), boxes)]
        boxes = [
            (set(_spans(a.get("tokens_positive"), a["where"], len(text))), _flickr_box(a["bbox"]))
            for a in anns
        ]
        out = []
        for k, entry in enumerate(field(img, "tokens_positive_eval", img["where"], list)):
            where = f"{img['where']} tokens_positive_eval[{k}]"
            spans = _spans(entry, where, len(text))
            mine = [box for held, box in boxes if set(spans) <= held]
            if not mine:
                raise DataFormatError(
                    f"{where}: no annotation of record {img['id']} holds the span {spans[0]}; "
                    "the file is not MDETR's flickr_combined.py output: re-download it"
                )
            out.append(((spans[0][0], spans[-1][1]), np.stack(mine)))
        return out

    def load_samples(self, split: str) -> list[GroundingSample]:
        has_train = split != "train" and "train" in self.splits()
        seen_pairs = self._train_pairs if has_train else None
        samples = []
        for img, anns in self._records(split):
            text, w, h = img["caption"], img["width"], img["height"]
            for k, (span, boxes) in enumerate(self._phrases(img, anns)):
                phrase = text[span[0] : span[1]]
                suffix = f"/p{k}" if self.subset == "flickr" else ""
                tags = probe_tags(phrase, boxes, w, h, seen_pairs=seen_pairs)
                samples.append(
                    GroundingSample(
                        id=f"mdetr/{self.subset}/{split}/i{img['id']}{suffix}",
                        image_path=str(self.image_dir / img["file_name"]),
                        width=w,
                        height=h,
                        text=text,
                        phrase=phrase,
                        span=span,
                        boxes=boxes,
                        tags=tags | {f"split={split}"},
                        meta={
                            "record_id": img["id"],
                            "original_id": img.get("original_id", img.get("original_img_id")),
                            "dataset_name": img.get("dataset_name"),
                        },
                    )
                )
        return samples

    def load_captions(self, split: str) -> list[CaptionRecord]:
        return [
            CaptionRecord(
                id=f"mdetr/{self.subset}/{split}/i{img['id']}",
                image_path=str(self.image_dir / img["file_name"]),
                width=img["width"],
                height=img["height"],
                text=img["caption"],
                tags=frozenset({f"split={split}"}),
            )
            for img, _ in self._records(split)
        ]
