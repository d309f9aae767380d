"""COCO Captions (``captions_<split>.json``): image–caption pairs for training only.

Layout under the dataset root (as the COCO download unpacks)::

    <root>/annotations/captions_train2017.json     <root>/annotations/captions_val2017.json
    <root>/train2017/<file_name>                   <root>/val2017/<file_name>

A captions file is COCO style: ``images`` (``id``, ``file_name``, ``width``, ``height``) and
``annotations`` (``id``, ``image_id``, ``caption``). One record per caption, id
``coco/<split>/<image_id>/c<annotation id>``. The split names are the files' suffixes
(``train2017``, ``val2014``, …). There are no boxes: :meth:`load_samples` refuses, so the
set trains the reference model and a grounding protocol evaluates it elsewhere.

COCO's train images (2014 and 2017) include the images of RefCOCO, RefCOCO+ and RefCOCOg's
val and test splits: a model trained on them has seen those evaluation images, and its
RefCOCO-family scores are not held out. The images sit under other file names, so the
overlap check of ``groundbench train`` (by path) cannot see it.
"""

from __future__ import annotations

from pathlib import Path

from dataset_adapters._files import field, read_json, under_root
from dataset_adapters.base import ADAPTERS, DatasetAdapter
from groundbench.errors import DataFormatError
from groundbench.types import CaptionRecord

_PREFIX = "captions_"


@ADAPTERS.register("coco_captions", formats="annotations/captions_<split>.json")
class CocoCaptionsAdapter(DatasetAdapter):
    """COCO Captions, for training.

    Args:
        root: the folder holding ``annotations/`` and the image folders.
        image_dir: the images of the split read; default ``<root>/<split>``.
    """

    name = "coco_captions"

    def __init__(self, root: Path, *, image_dir: str | Path | None = None) -> None:
        super().__init__(root, image_dir=image_dir)
        self.image_dir = under_root(self.root, image_dir) if image_dir else None

    def splits(self) -> tuple[str, ...]:
        folder = self.root / "annotations"
        return tuple(
            sorted(p.stem[len(_PREFIX) :] for p in folder.glob(f"{_PREFIX}*.json"))
            if folder.is_dir()
            else ()
        )

    def kind(self, split: str) -> str:
        """Every split holds captions only (``groundbench data check`` counts them)."""
        return "captions"

    def load_samples(self, split: str) -> list:
        raise DataFormatError(
            f"coco_captions {split}: COCO Captions have no phrase boxes, so nothing can be "
            "evaluated on them; train on them (groundbench train --data coco_captions:ROOT) "
            "and evaluate on a grounding set"
        )

    def load_captions(self, split: str) -> list[CaptionRecord]:
        """Return one record per caption, in the file's annotation order."""
        path = self.root / "annotations" / f"{_PREFIX}{split}.json"
        if not path.is_file():
            have = ", ".join(self.splits()) or "none"
            raise DataFormatError(
                f"{path} does not exist (splits found: {have}); put the COCO captions file "
                f"there (annotations_trainval2017.zip holds captions_train2017.json)"
            )
        data = read_json(path)
        images_dir = self.image_dir or self.root / split
        images = {}
        for k, image in enumerate(field(data, "images", str(path), list)):
            where = f"{path} images[{k}]"
            image_id = field(image, "id", where, int)
            width, height = field(image, "width", where, int), field(image, "height", where, int)
            if width <= 0 or height <= 0:
                raise DataFormatError(f"{where}: width and height must be positive")
            images[image_id] = (
                str(images_dir / field(image, "file_name", where, str)),
                width,
                height,
            )
        out = []
        for k, ann in enumerate(field(data, "annotations", str(path), list)):
            where = f"{path} annotations[{k}]"
            image_id = field(ann, "image_id", where, int)
            if image_id not in images:
                raise DataFormatError(
                    f"{where}: image_id {image_id} is not among the file's images; the file "
                    "is truncated or edited: re-download it"
                )
            caption = field(ann, "caption", where, str).strip()
            ann_id = ann.get("id", k)  # field() above checked that ann is an object
            file, width, height = images[image_id]
            out.append(
                CaptionRecord(
                    f"coco/{split}/{image_id}/c{ann_id}",
                    file,
                    width,
                    height,
                    caption,
                    frozenset({f"split={split}"}),
                )
            )
        return out
