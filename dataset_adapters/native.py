"""The native format: the synthetic benchmark's files, and the format to convert own data to.

Layout under the dataset root (full description in ``docs/formats.md``)::

    <root>/dataset.yaml          name, format_version, splits {name: {kind, images, records}}
    <root>/<split>.jsonl         one JSON record per line
    <root>/images/...            image files, referenced by root-relative paths

A ``grounding`` split has one record per phrase: ``id``, ``image``, ``width``, ``height``,
``text``, ``phrase``, ``span`` ``[start, end)``, ``boxes`` (``xyxy`` in the project's
continuous-pixel convention), optional ``mask`` (COCO RLE ``{"size": [h, w], "counts": str}``),
``tags`` and ``meta``. A ``captions`` split (training) has ``id``, ``image``, ``width``,
``height``, ``text`` and optional ``tags``, and no boxes at all.

Validation is strict and complete: every bad record is listed with its file, line number and
what is wrong, then one :class:`DataFormatError` is raised.
"""

from __future__ import annotations

import json
import math
from functools import cached_property
from pathlib import Path, PurePosixPath
from typing import Any

import yaml

from dataset_adapters.base import ADAPTERS, DatasetAdapter
from groundbench.errors import DataFormatError
from groundbench.types import CaptionRecord, GroundingSample

KINDS = ("grounding", "captions")
_GROUNDING_KEYS = {
    "id",
    "image",
    "width",
    "height",
    "text",
    "phrase",
    "span",
    "boxes",
    "mask",
    "tags",
    "meta",
}
_CAPTION_KEYS = {"id", "image", "width", "height", "text", "tags", "meta"}
_MAX_LISTED = 30


@ADAPTERS.register("native")
class NativeAdapter(DatasetAdapter):
    """Reads a native-format dataset root (takes no options)."""

    name = "native"

    def __init__(self, root: Path, **options: Any) -> None:
        if options:
            raise DataFormatError(
                f"the native adapter takes no options, got {sorted(options)}; remove them"
            )
        super().__init__(root)

    @cached_property
    def manifest(self) -> dict[str, Any]:
        """The parsed and checked ``dataset.yaml``."""
        path = self.root / "dataset.yaml"
        try:
            with open(path, encoding="utf-8") as f:
                data = yaml.safe_load(f)
        except FileNotFoundError as exc:
            raise DataFormatError(
                f"{path} does not exist: {self.root} is not a native dataset root "
                "(generate one with `groundbench synth --out DIR`)"
            ) from exc
        except yaml.YAMLError as exc:
            raise DataFormatError(f"{path}: not valid YAML ({exc})") from exc
        if (
            not isinstance(data, dict)
            or not isinstance(data.get("splits"), dict)
            or not data["splits"]
        ):
            raise DataFormatError(f"{path}: needs a mapping with a non-empty 'splits' mapping")
        for split, info in data["splits"].items():
            kind = info.get("kind") if isinstance(info, dict) else None
            if kind not in KINDS:
                raise DataFormatError(
                    f"{path}: splits.{split}.kind must be one of {list(KINDS)}, got {kind!r}"
                )
        return data

    def splits(self) -> tuple[str, ...]:
        """Return the split names listed in ``dataset.yaml``, in file order."""
        return tuple(self.manifest["splits"])

    def kind(self, split: str) -> str:
        """Return ``"grounding"`` or ``"captions"`` for ``split``."""
        if split not in self.manifest["splits"]:
            raise DataFormatError(
                f"{self.root / 'dataset.yaml'} has no split {split!r}; splits: {', '.join(self.splits())}"
            )
        return self.manifest["splits"][split]["kind"]

    def load_samples(self, split: str) -> list[GroundingSample]:
        """Return the split's phrases with boxes, in file order.

        Raises:
            DataFormatError: the split is a captions split, or any record is invalid (all
                listed with line numbers).
        """
        if self.kind(split) != "grounding":
            raise DataFormatError(
                f"split {split!r} of {self.root} holds captions only (no boxes); "
                "read it with load_captions, or evaluate a grounding split"
            )
        return self._read(split, _grounding)

    def load_captions(self, split: str) -> list[CaptionRecord]:
        """Return the split's image–caption pairs; a grounding split gives its texts.

        No box is read into a :class:`CaptionRecord`.
        """
        parse = _caption if self.kind(split) == "captions" else _caption_of_grounding
        return self._read(split, parse)

    def _read(self, split: str, parse) -> list:
        path = self.root / f"{split}.jsonl"
        if not path.is_file():
            raise DataFormatError(
                f"{path} does not exist; split {split!r} is listed in dataset.yaml"
            )
        errors: list[str] = []
        out: list = []
        ids: dict[str, int] = {}
        images: dict[str, bool] = {}
        with open(path, encoding="utf-8") as f:
            for lineno, line in enumerate(f, start=1):
                if not line.strip():
                    continue
                where = f"{path.name} line {lineno}"
                try:
                    rec = json.loads(line)
                    item = parse(rec, self.root, where, images)
                except json.JSONDecodeError as exc:
                    errors.append(f"{where}: not valid JSON ({exc.msg} at column {exc.colno})")
                    continue
                except DataFormatError as exc:
                    errors.append(str(exc))
                    continue
                if item.id in ids:
                    errors.append(
                        f"{where}: id {item.id!r} repeats line {ids[item.id]}; ids must be unique"
                    )
                    continue
                ids[item.id] = lineno
                out.append(item)
        if errors:
            listed = "\n  ".join(errors[:_MAX_LISTED])
            more = (
                f"\n  ... and {len(errors) - _MAX_LISTED} more" if len(errors) > _MAX_LISTED else ""
            )
            raise DataFormatError(
                f"{path}: {len(errors)} invalid record(s); fix them (see docs/formats.md):\n  {listed}{more}"
            )
        return out


def _need(rec: dict, key: str, kind, where: str) -> Any:
    if key not in rec:
        raise DataFormatError(f"{where}: missing field {key!r}")
    value = rec[key]
    if isinstance(value, bool) or not isinstance(value, kind):
        want = kind.__name__ if isinstance(kind, type) else "/".join(k.__name__ for k in kind)
        raise DataFormatError(f"{where}: field {key!r} must be {want}, got {value!r:.60}")
    return value


def _common(rec: Any, root: Path, where: str, images: dict[str, bool], allowed: set[str]):
    if not isinstance(rec, dict):
        raise DataFormatError(f"{where}: a record must be a JSON object, got {type(rec).__name__}")
    unknown = sorted(set(rec) - allowed)
    if unknown:
        raise DataFormatError(f"{where}: unknown field(s) {unknown}; allowed: {sorted(allowed)}")
    rid = _need(rec, "id", str, where)
    if not rid:
        raise DataFormatError(f"{where}: id must be a non-empty string")
    where = f"{where} (id {rid!r})"
    image = _need(rec, "image", str, where)
    rel = PurePosixPath(image)
    if rel.is_absolute() or ".." in rel.parts or "\\" in image or not image:
        raise DataFormatError(
            f"{where}: image {image!r} must be a path relative to the dataset root, "
            "with '/' separators and no '..'"
        )
    if image not in images:
        images[image] = (root / rel).is_file()
    if not images[image]:
        raise DataFormatError(f"{where}: image file {image!r} does not exist under {root}")
    width, height = _need(rec, "width", int, where), _need(rec, "height", int, where)
    if width <= 0 or height <= 0:
        raise DataFormatError(
            f"{where}: width and height must be positive pixels, got {width}×{height}"
        )
    text = _need(rec, "text", str, where)
    if not text.strip():
        raise DataFormatError(f"{where}: text is empty")
    tags = rec.get("tags", [])
    if not isinstance(tags, list) or not all(isinstance(t, str) and t for t in tags):
        raise DataFormatError(
            f"{where}: tags must be a list of non-empty strings, got {tags!r:.60}"
        )
    return rid, str(root / rel), width, height, text, frozenset(tags), where


def _caption(rec: Any, root: Path, where: str, images: dict[str, bool]) -> CaptionRecord:
    if isinstance(rec, dict) and ("boxes" in rec or "mask" in rec):
        raise DataFormatError(
            f"{where}: a captions (training) split must not carry boxes or masks; "
            "drop them, or mark the split kind: grounding in dataset.yaml"
        )
    rid, image, width, height, text, tags, _ = _common(rec, root, where, images, _CAPTION_KEYS)
    return CaptionRecord(rid, image, width, height, text, tags)


def _caption_of_grounding(
    rec: Any, root: Path, where: str, images: dict[str, bool]
) -> CaptionRecord:
    s = _grounding(rec, root, where, images)
    return CaptionRecord(s.id, s.image_path, s.width, s.height, s.text, s.tags)


def _grounding(rec: Any, root: Path, where: str, images: dict[str, bool]) -> GroundingSample:
    rid, image, width, height, text, tags, where = _common(
        rec, root, where, images, _GROUNDING_KEYS
    )
    phrase = _need(rec, "phrase", str, where)
    span = _need(rec, "span", list, where)
    if len(span) != 2 or not all(isinstance(v, int) and not isinstance(v, bool) for v in span):
        raise DataFormatError(f"{where}: span must be [start, end] integers, got {span!r}")
    if not 0 <= span[0] < span[1] <= len(text) or text[span[0] : span[1]] != phrase:
        raise DataFormatError(
            f"{where}: span {span} selects {text[span[0] : span[1]]!r} of the text, not the "
            f"phrase {phrase!r}"
        )
    boxes = _need(rec, "boxes", list, where)
    if not boxes:
        raise DataFormatError(
            f"{where}: boxes is empty; a grounding record needs at least one box "
            "(caption-only records belong in a captions split)"
        )
    for k, b in enumerate(boxes):
        ok = isinstance(b, list) and len(b) == 4
        ok = ok and all(
            isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) for v in b
        )
        if not ok:
            raise DataFormatError(
                f"{where}: boxes[{k}] must be 4 finite numbers [x0, y0, x1, y1], got {b!r:.60}"
            )
        x0, y0, x1, y1 = b
        if not (0 <= x0 < x1 <= width and 0 <= y0 < y1 <= height):
            raise DataFormatError(
                f"{where}: boxes[{k}] = {b} must satisfy 0 <= x0 < x1 <= width ({width}) and "
                f"0 <= y0 < y1 <= height ({height}); boxes are xyxy, not [x, y, w, h]"
            )
    mask = rec.get("mask")
    if mask is not None:
        if (
            not isinstance(mask, dict)
            or set(mask) != {"size", "counts"}
            or mask["size"] != [height, width]
            or not isinstance(mask["counts"], str)
        ):
            raise DataFormatError(
                f"{where}: mask must be a COCO RLE {{'size': [{height}, {width}], 'counts': str}}, "
                f"got {json.dumps(mask)[:80]}"
            )
    meta = rec.get("meta", {})
    if not isinstance(meta, dict):
        raise DataFormatError(f"{where}: meta must be an object, got {type(meta).__name__}")
    return GroundingSample(
        id=rid,
        image_path=image,
        width=width,
        height=height,
        text=text,
        phrase=phrase,
        span=(span[0], span[1]),
        boxes=boxes,
        mask=mask,
        tags=tags,
        meta=meta,
    )
