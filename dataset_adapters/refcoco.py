"""RefCOCO, RefCOCO+, RefCOCOg and ReferItGame (RefCLEF) in the REFER layout
(``refs(<split_by>).p`` + COCO JSON).

Layout under the dataset root (as the REFER API expects)::

    <root>/refcoco/refs(unc).p         <root>/refcoco/refs(google).p
    <root>/refcoco/instances.json
    <root>/refcoco+/refs(unc).p        <root>/refcoco+/instances.json
    <root>/refcocog/refs(umd).p        <root>/refcocog/refs(google).p
    <root>/refcocog/instances.json
    <root>/refclef/refs(unc).p         <root>/refclef/refs(berkeley).p
    <root>/refclef/instances.json
    <root>/images/mscoco/images/train2014/COCO_train2014_<12-digit id>.jpg
    <root>/images/saiapr_tc-12/<folder>/images/<image id>.jpg      (RefCLEF)

``refs(*).p`` is a pickled list of refs ``{ref_id, ann_id, image_id, split, category_id,
sent_ids, sentences: [{sent_id, sent, raw, tokens}], file_name}``; it is read with a
restricted unpickler (:mod:`dataset_adapters.safe_pickle`). ``instances.json`` is COCO
style: ``images`` (id, file_name, width, height), ``annotations`` (id, image_id,
category_id, bbox ``[x, y, w, h]``, segmentation polygons or RLE), ``categories``.

One sample per sentence, id ``<dataset>/<split_by>/<split>/r<ref_id>/s<sent_id>``; the
phrase is the whole (tokenised, lower-case) ``sent``; the box is the referent's COCO box
and the mask its segmentation as a compressed RLE.

RefCLEF samples carry three more tags, so that MG's ReferIt selection can be written as
protocol ``select`` keys: ``repeated_sentence`` (the sentence repeats an earlier identical
sentence of the same ref; MG counts each distinct sentence once), ``box_outside_image``
(the box reaches past the right or bottom edge; MG drops such refs) and ``in_image_list``
(the image is listed in the ``image_list`` file, e.g. ``referit_test_imlist.txt``).
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Mapping
from functools import cached_property
from pathlib import Path
from typing import Any

from dataset_adapters._files import bbox_field, field, read_json, under_root
from dataset_adapters.base import ADAPTERS, DatasetAdapter
from dataset_adapters.coords import coco_bbox_to_xyxy
from dataset_adapters.probe_tags import probe_tags, training_pairs
from dataset_adapters.safe_pickle import load_data_pickle
from groundbench.errors import DataFormatError
from groundbench.types import CaptionRecord, GroundingSample

log = logging.getLogger(__name__)

#: Valid ``split_by`` per ``dataset``; the first one is the default.
SPLITS_BY: dict[str, tuple[str, ...]] = {
    "refcoco": ("unc", "google"),
    "refcoco+": ("unc",),
    "refcocog": ("umd", "google"),
    "refclef": ("unc", "berkeley"),
}

#: Default image folder under the root per dataset (as the REFER API's IMAGE_DIR).
_IMAGE_DIRS = {"refclef": ("images", "saiapr_tc-12")}
_COCO_IMAGES = ("images", "mscoco", "images", "train2014")

#: Published sentence counts per (dataset, split_by) and split (Yu et al. 2016; Nagaraja
#: et al. 2016; train counts as the REFER files hold them), shown next to the loaded counts
#: by ``groundbench data check``.
PUBLISHED_SENTENCES: dict[tuple[str, str], dict[str, int]] = {
    ("refcoco", "unc"): {"train": 120624, "val": 10834, "testA": 5657, "testB": 5095},
    ("refcoco+", "unc"): {"train": 120191, "val": 10758, "testA": 5726, "testB": 4889},
    ("refcocog", "umd"): {"train": 80512, "val": 4896, "test": 9602},
}

_SPLIT_ORDER = ("train", "val", "test", "testA", "testB", "testC")


def segmentation_to_rle(segmentation: Any, height: int, width: int, where: str) -> dict:
    """Convert a COCO segmentation (polygons, RLE, or compressed RLE) to a compressed RLE.

    Args:
        segmentation: polygons ``[[x0, y0, x1, y1, ...], ...]`` (continuous pixels), an
            uncompressed RLE ``{"size": [h, w], "counts": [int, ...]}`` or a compressed one.
        height: image height in pixels.
        width: image width in pixels.
        where: the file and record, for errors.

    Returns:
        ``{"size": [height, width], "counts": str}``: one mask, parts merged.

    Raises:
        DataFormatError: the segmentation has none of these forms.
    """
    from pycocotools import mask as mask_utils

    try:
        if isinstance(segmentation, list):
            polygons = [p for p in segmentation if len(p) >= 6]
            if not polygons:
                raise ValueError("no polygon with at least 3 points")
            rle = mask_utils.merge(mask_utils.frPyObjects(polygons, height, width))
        elif isinstance(segmentation, Mapping) and isinstance(segmentation.get("counts"), list):
            rle = mask_utils.frPyObjects(dict(segmentation), height, width)
        elif isinstance(segmentation, Mapping) and isinstance(
            segmentation.get("counts"), (str, bytes)
        ):
            rle = dict(segmentation)
        else:
            raise ValueError(f"unrecognised segmentation {str(segmentation)[:60]}")
    except (ValueError, TypeError, IndexError) as exc:
        raise DataFormatError(
            f"{where}: bad segmentation ({exc}); expected COCO polygons or RLE"
        ) from exc
    if [int(v) for v in rle["size"]] != [height, width]:
        raise DataFormatError(
            f"{where}: segmentation size {list(rle['size'])} is not the image's [height, width] "
            f"= [{height}, {width}]; the annotation belongs to another image or resolution"
        )
    counts = rle["counts"]
    return {
        "size": [int(v) for v in rle["size"]],
        "counts": counts.decode("ascii") if isinstance(counts, bytes) else counts,
    }


@ADAPTERS.register("refcoco", formats="REFER refs(*).p + COCO instances.json")
class RefCocoAdapter(DatasetAdapter):
    """RefCOCO / RefCOCO+ / RefCOCOg / RefCLEF from the REFER files.

    Args:
        root: the folder holding ``refcoco/``, ``refcoco+/``, ``refcocog/``, ``refclef/``
            and ``images/``.
        dataset: ``refcoco`` (default), ``refcoco+``, ``refcocog`` or ``refclef``
            (ReferItGame).
        split_by: ``unc`` (default for RefCOCO/RefCOCO+/RefCLEF), ``umd`` (default for
            RefCOCOg), ``google`` or ``berkeley`` (RefCLEF).
        image_dir: the images; default ``<root>/images/mscoco/images/train2014`` (COCO
            train2014) or ``<root>/images/saiapr_tc-12`` (RefCLEF).
        image_list: RefCLEF only: a text file of image ids, one per line (the
            ``referit_<split>_imlist.txt`` of the Berkeley/MG splits); samples of listed
            images are tagged ``in_image_list``.
    """

    name = "refcoco"
    count_unit = "samples"

    def __init__(
        self,
        root: Path,
        *,
        dataset: str = "refcoco",
        split_by: str | None = None,
        image_dir: str | Path | None = None,
        image_list: str | Path | None = None,
    ) -> None:
        if dataset not in SPLITS_BY:
            raise DataFormatError(
                f"refcoco adapter: unknown dataset {dataset!r}; use one of {', '.join(SPLITS_BY)}"
            )
        split_by = split_by or SPLITS_BY[dataset][0]
        if split_by not in SPLITS_BY[dataset]:
            raise DataFormatError(
                f"refcoco adapter: {dataset} has no split_by {split_by!r}; "
                f"use one of {', '.join(SPLITS_BY[dataset])}"
            )
        if image_list is not None and dataset != "refclef":
            raise DataFormatError(
                f"refcoco adapter: image_list applies to dataset refclef only, not {dataset}"
            )
        super().__init__(
            root, dataset=dataset, split_by=split_by, image_dir=image_dir, image_list=image_list
        )
        self.dataset = dataset
        self.split_by = split_by
        self.image_dir = (
            under_root(self.root, image_dir)
            if image_dir
            else self.root.joinpath(*_IMAGE_DIRS.get(dataset, _COCO_IMAGES))
        )
        self.image_list_path = under_root(self.root, image_list) if image_list else None
        self.refs_path = self.root / dataset / f"refs({split_by}).p"
        self.instances_path = self.root / dataset / "instances.json"

    # ------------------------------------------------------------------ raw files

    @cached_property
    def _refs(self) -> list[dict]:
        refs = load_data_pickle(self.refs_path)
        if not isinstance(refs, list):
            raise DataFormatError(
                f"{self.refs_path}: expected a list of refs, got {type(refs).__name__}"
            )
        for i, ref in enumerate(refs):
            where = f"{self.refs_path} record {i}"
            for key in ("ref_id", "ann_id", "image_id"):
                field(ref, key, where, int)
            field(ref, "split", where, str)
            for j, sent in enumerate(field(ref, "sentences", where, list)):
                field(sent, "sent_id", f"{where} sentence {j}", int)
                field(sent, "sent", f"{where} sentence {j}", str)
        return refs

    @cached_property
    def _coco(self) -> tuple[dict[int, dict], dict[int, dict], dict[int, dict], Counter]:
        """Images, annotations and categories by id, and object counts per (image, category)."""
        data = read_json(self.instances_path)
        where = str(self.instances_path)
        images, anns, cats = {}, {}, {}
        for i, img in enumerate(field(data, "images", where, list)):
            w = f"{where} images[{i}]"
            images[field(img, "id", w, int)] = {
                "file_name": field(img, "file_name", w, str),
                "width": field(img, "width", w, int),
                "height": field(img, "height", w, int),
            }
        per_image_category: Counter = Counter()
        for i, ann in enumerate(field(data, "annotations", where, list)):
            w = f"{where} annotations[{i}]"
            ann_id = field(ann, "id", w, int)
            image_id = field(ann, "image_id", w, int)
            category_id = field(ann, "category_id", w, int)
            anns[ann_id] = {
                "image_id": image_id,
                "category_id": category_id,
                "bbox": bbox_field(ann, "bbox", w),
                "segmentation": ann.get("segmentation"),
                "where": w,
            }
            per_image_category[image_id, category_id] += 1
        for i, cat in enumerate(field(data, "categories", where, list)):
            w = f"{where} categories[{i}]"
            cats[field(cat, "id", w, int)] = {
                "name": field(cat, "name", w, str),
                "supercategory": str(cat.get("supercategory", "")),
            }
        return images, anns, cats, per_image_category

    @cached_property
    def _listed_images(self) -> frozenset[int] | None:
        """Image ids of the ``image_list`` file (None without one)."""
        if self.image_list_path is None:
            return None
        try:
            lines = self.image_list_path.read_text(encoding="utf-8").split()
        except OSError as exc:
            raise DataFormatError(
                f"image_list {self.image_list_path} cannot be read ({exc}); give the path of "
                "a referit_<split>_imlist.txt (absolute or relative to the dataset root)"
            ) from exc
        bad = [x for x in lines if not x.isdigit()]
        if bad:
            raise DataFormatError(
                f"image_list {self.image_list_path}: {bad[0]!r} is not an image id; the file "
                "lists one integer id per line"
            )
        return frozenset(int(x) for x in lines)

    def _clef_tags(self, ref: dict, sent: dict, seen: set[str], box, w: int, h: int) -> set[str]:
        """RefCLEF's selection tags for one sentence (``seen``: the ref's earlier sentences)."""
        if self.dataset != "refclef":
            return set()
        tags = set()
        if sent["sent"] in seen:
            tags.add("repeated_sentence")
        seen.add(sent["sent"])
        if box[0, 2] > w or box[0, 3] > h:
            tags.add("box_outside_image")
        listed = self._listed_images
        if listed is not None and ref["image_id"] in listed:
            tags.add("in_image_list")
        return tags

    @cached_property
    def _train_pairs(self) -> frozenset[tuple[str, str]]:
        return training_pairs(
            s["sent"] for ref in self._refs if ref["split"] == "train" for s in ref["sentences"]
        )

    # ------------------------------------------------------------------ contract

    def splits(self) -> tuple[str, ...]:
        present = {ref["split"] for ref in self._refs}
        return tuple(sorted(present, key=lambda s: ((_SPLIT_ORDER + (s,)).index(s), s)))

    def published_counts(self) -> dict[str, int]:
        """Published sentence counts per split for this dataset and ``split_by``."""
        return dict(PUBLISHED_SENTENCES.get((self.dataset, self.split_by), {}))

    def _split_refs(self, split: str) -> list[dict]:
        if split not in self.splits():
            raise DataFormatError(
                f"{self.refs_path} has no split {split!r}; its splits are {', '.join(self.splits())}"
            )
        return sorted((r for r in self._refs if r["split"] == split), key=lambda r: r["ref_id"])

    def load_samples(self, split: str) -> list[GroundingSample]:
        refs = self._split_refs(split)
        images, anns, cats, per_image_category = self._coco
        seen_pairs = None if split == "train" else self._train_pairs
        samples = []
        for ref in refs:
            where = f"{self.refs_path} ref_id {ref['ref_id']}"
            ann = anns.get(ref["ann_id"])
            img = images.get(ref["image_id"])
            if ann is None or img is None:
                missing = "ann_id" if ann is None else "image_id"
                raise DataFormatError(
                    f"{where}: {missing} {ref[missing]} is not in {self.instances_path}; "
                    "the refs file and instances.json come from different downloads"
                )
            box = coco_bbox_to_xyxy(ann["bbox"])[None, :]
            w, h = img["width"], img["height"]
            mask = (
                segmentation_to_rle(ann["segmentation"], h, w, ann["where"])
                if ann["segmentation"]
                else None
            )
            cat = cats.get(
                ann["category_id"], {"name": str(ann["category_id"]), "supercategory": ""}
            )
            base_tags = {f"category={cat['name']}", f"split={split}"}
            if cat["supercategory"]:
                base_tags.add(f"supercategory={cat['supercategory']}")
            same = per_image_category[ref["image_id"], ann["category_id"]]
            seen: set[str] = set()
            for sent in ref["sentences"]:
                text = sent["sent"]
                samples.append(
                    GroundingSample(
                        id=f"{self.dataset}/{self.split_by}/{split}/r{ref['ref_id']}/s{sent['sent_id']}",
                        image_path=str(self.image_dir / img["file_name"]),
                        width=w,
                        height=h,
                        text=text,
                        phrase=text,
                        span=(0, len(text)),
                        boxes=box,
                        mask=mask,
                        tags=base_tags
                        | self._clef_tags(ref, sent, seen, box, w, h)
                        | probe_tags(
                            text, box, w, h, same_category_count=same, seen_pairs=seen_pairs
                        ),
                        meta={
                            "ref_id": ref["ref_id"],
                            "sent_id": sent["sent_id"],
                            "ann_id": ref["ann_id"],
                            "image_id": ref["image_id"],
                            "raw": str(sent.get("raw", text)),
                        },
                    )
                )
        log.info(
            "refcoco: %d samples in %s %s/%s", len(samples), self.dataset, self.split_by, split
        )
        return samples

    def load_captions(self, split: str) -> list[CaptionRecord]:
        images = self._coco[0]
        out = []
        for ref in self._split_refs(split):
            img = images.get(ref["image_id"])
            if img is None:
                raise DataFormatError(
                    f"{self.refs_path} ref_id {ref['ref_id']}: image_id {ref['image_id']} is not "
                    f"in {self.instances_path}; the two files come from different downloads"
                )
            for sent in ref["sentences"]:
                out.append(
                    CaptionRecord(
                        id=f"{self.dataset}/{self.split_by}/{split}/r{ref['ref_id']}/s{sent['sent_id']}",
                        image_path=str(self.image_dir / img["file_name"]),
                        width=img["width"],
                        height=img["height"],
                        text=sent["sent"],
                        tags=frozenset({f"split={split}"}),
                    )
                )
        return out
