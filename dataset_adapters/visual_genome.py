"""Visual Genome region descriptions as grounding phrases, read through a SQLite index.

Layout under the dataset root (the Visual Genome v1.2 / v1.4 downloads)::

    <root>/image_data.json            [{image_id (v1.2+; "id" in v1.0), width, height, url, coco_id, ...}]
    <root>/region_descriptions.json   [{id: image_id, regions: [{region_id, image_id, phrase,
                                         x, y, width, height}]}]
    <root>/objects.json               optional: [{image_id, objects: [{object_id, names, ...}]}]
    <root>/attributes.json            optional: [{image_id, attributes: [{names, attributes}]}]
    <root>/relationships.json         optional: [{image_id, relationships: [{predicate,
                                         subject: {names}, object: {names}}]}]
    <root>/VG_100K/<image_id>.jpg     <root>/VG_100K_2/<image_id>.jpg

The JSON files are indexed once into ``<root>/groundbench_index/visual_genome.sqlite``
(``groundbench data index visual_genome --root ...``; built on first use otherwise). On a
read-only root (a shared cluster copy) the index goes to the user's cache instead:
``$GROUNDBENCH_CACHE/index/`` or ``~/.cache/groundbench/index/``, one file per root.
A region's ``x, y, width, height`` becomes ``[x, y, x + width, y + height]``.

Splits: with ``test_image_ids`` the splits are ``train`` (every other image) and ``test``;
without it, one split ``all``. ``test_image_ids`` names the MG authors' split file
``data_splits.pickle`` (a pickled dict of two sets of image ids, ``train`` and ``test``; read
by the restricted unpickler of :mod:`dataset_adapters.safe_pickle`), a text file of image
ids, one per line, or a JSON list. Sample id ``vg/<split>/<image_id>/r<region_id>``.

Nothing is dropped silently: regions of images that ``image_data.json`` does not list (no
image size, so no sample) and test ids without image metadata are counted in
``load_warnings`` and logged.
"""

from __future__ import annotations

import errno
import hashlib
import json
import logging
import os
import re
import sqlite3
from collections import defaultdict
from contextlib import closing
from functools import cached_property
from pathlib import Path
from typing import Any

from dataset_adapters._files import under_root
from dataset_adapters.base import ADAPTERS, DatasetAdapter
from dataset_adapters.coords import vg_region_to_xyxy
from dataset_adapters.index import build_vg_index, index_is_current
from dataset_adapters.probe_tags import probe_tags, words
from dataset_adapters.safe_pickle import load_data_pickle
from groundbench.errors import DataFormatError
from groundbench.types import CaptionRecord, GroundingSample

log = logging.getLogger(__name__)

_URL_TAIL = re.compile(r"([^/]+)/([^/]+)$")


#: Suffixes of a pickled split file (the MG authors' ``data_splits.pickle``).
PICKLE_SUFFIXES = (".pickle", ".pkl", ".p")
#: What ``test_image_ids`` may name, for error messages.
_ID_FILE_FORMS = "the MG data_splits.pickle, a text file of image ids (one per line) or a JSON list"


def _split_pickle_ids(path: Path) -> list[Any]:
    """The ``test`` ids of a pickled split dict (the MG ``data_splits.pickle``)."""
    data = load_data_pickle(path)
    ids = data.get("test") if isinstance(data, dict) else None
    if not isinstance(ids, (set, frozenset, list, tuple)):
        found = (
            f"a dict with keys {', '.join(map(repr, data))}"
            if isinstance(data, dict)
            else f"a {type(data).__name__}"
        )
        raise DataFormatError(
            f"{path}: expected the MG split pickle, a dict whose 'test' key holds a set of "
            f"image ids, got {found}; pass {_ID_FILE_FORMS}"
        )
    return list(ids)


def read_image_ids(path: Path) -> frozenset[int]:
    """Read the test image ids: MG ``data_splits.pickle``, a JSON list, or one id per line.

    A file ending in ``.pickle``, ``.pkl`` or ``.p``, or starting with a pickle's protocol
    byte, is read as the MG split pickle (its ``test`` set); other files as text.

    Raises:
        DataFormatError: the file is missing, unreadable, or holds something that is not an
            image id.

    Example:
        >>> import pickle, tempfile, os
        >>> path = os.path.join(tempfile.mkdtemp(), "data_splits.pickle")
        >>> with open(path, "wb") as f:
        ...     pickle.dump({"train": {1, 2}, "test": {3}}, f, protocol=2)
        >>> sorted(read_image_ids(Path(path)))
        [3]
    """
    try:
        data = path.read_bytes()
    except FileNotFoundError as exc:
        raise DataFormatError(f"test_image_ids file {path} does not exist") from exc
    if path.suffix in PICKLE_SUFFIXES or data[:1] == b"\x80":
        ids = _split_pickle_ids(path)
    else:
        ids = _text_ids(path, data)
    try:
        return frozenset(int(i) for i in ids)
    except (TypeError, ValueError) as exc:
        raise DataFormatError(f"{path}: image ids must be integers ({exc})") from exc


def _text_ids(path: Path, data: bytes) -> list[Any]:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DataFormatError(
            f"{path}: not a text list of image ids ({exc}); pass {_ID_FILE_FORMS}"
        ) from exc
    if text.lstrip().startswith("["):
        try:
            ids = json.loads(text)
        except json.JSONDecodeError as exc:
            raise DataFormatError(f"{path}: malformed JSON list of image ids ({exc})") from exc
        if not isinstance(ids, list):
            raise DataFormatError(f"{path}: expected a JSON list of image ids")
        return ids
    return [line.strip() for line in text.splitlines() if line.strip()]


def _has_sequence(phrase_words: tuple[str, ...], target: tuple[str, ...]) -> bool:
    """Whether the word sequence ``target`` appears consecutively in ``phrase_words``."""
    n = len(target)
    return n > 0 and any(
        phrase_words[i : i + n] == target for i in range(len(phrase_words) - n + 1)
    )


_NOT_WRITABLE = (errno.EACCES, errno.EPERM, errno.EROFS)


def cache_index_path(root: Path) -> Path:
    """Where a read-only root's index goes: ``$GROUNDBENCH_CACHE`` (else ``~/.cache/groundbench``)
    ``/index/visual_genome-<sha256 of the absolute root, 16 hex>.sqlite``."""
    base = os.environ.get("GROUNDBENCH_CACHE") or os.path.join(
        os.path.expanduser("~"), ".cache", "groundbench"
    )
    digest = hashlib.sha256(str(Path(root).resolve()).encode("utf-8")).hexdigest()[:16]
    return Path(base) / "index" / f"visual_genome-{digest}.sqlite"


def _unwritable(path: Path, exc: OSError) -> DataFormatError:
    return DataFormatError(
        f"cannot write the Visual Genome index {path} ({exc.strerror or exc}); pass "
        "-o index_path=PATH (or dataset.options.index_path) naming a writable file"
    )


@ADAPTERS.register("visual_genome", formats="region_descriptions.json + image_data.json (indexed)")
class VisualGenomeAdapter(DatasetAdapter):
    """Visual Genome region descriptions.

    Args:
        root: the folder holding the VG JSON files and image folders.
        test_image_ids: image-id list defining the ``test`` split (None: one split ``all``).
        index_path: the SQLite index; default ``<root>/groundbench_index/visual_genome.sqlite``,
            or the user's cache (:func:`cache_index_path`) when the root cannot be written.
        image_dir: a folder holding every ``<image_id>.jpg``; default: the folder named by
            each image's url (``VG_100K`` or ``VG_100K_2``) under ``root``.
    """

    name = "visual_genome"
    count_unit = "samples"

    def __init__(
        self,
        root: Path,
        *,
        test_image_ids: str | Path | None = None,
        index_path: str | Path | None = None,
        image_dir: str | Path | None = None,
    ) -> None:
        super().__init__(
            root, test_image_ids=test_image_ids, index_path=index_path, image_dir=image_dir
        )
        self.test_ids_path = under_root(self.root, test_image_ids) if test_image_ids else None
        self.test_ids = read_image_ids(self.test_ids_path) if self.test_ids_path else None
        self._explicit_index = index_path is not None
        self.index_path = (
            under_root(self.root, index_path)
            if index_path
            else self.root / "groundbench_index" / "visual_genome.sqlite"
        )
        self.image_dir = under_root(self.root, image_dir) if image_dir else None

    def build_index(self, *, progress: bool = True) -> dict[str, int]:
        """(Re)build the SQLite index from the JSON files; returns rows per table.

        Without an ``index_path`` option, a root that cannot be written sends the index to
        :func:`cache_index_path` (``self.index_path`` then names it).

        Raises:
            DataFormatError: the index cannot be written (the message names ``index_path``).
        """
        try:
            return build_vg_index(self.root, self.index_path, progress=progress)
        except OSError as exc:
            if exc.errno not in _NOT_WRITABLE:
                raise
            if self._explicit_index:
                raise _unwritable(self.index_path, exc) from exc
            cached = cache_index_path(self.root)
            log.warning(
                "cannot write the Visual Genome index inside %s (%s); writing it to %s",
                self.root, exc.strerror or exc, cached,
            )  # fmt: skip
            self.index_path = cached
            try:
                return build_vg_index(self.root, cached, progress=progress)
            except OSError as exc2:
                if exc2.errno not in _NOT_WRITABLE:
                    raise
                raise _unwritable(cached, exc2) from exc2

    def _connect(self, split: str) -> sqlite3.Connection:
        """Open the index read-only, with a temp view ``split_images`` of the split's image ids."""
        if split not in self.splits():
            raise DataFormatError(
                f"visual_genome has no split {split!r} here; its splits are "
                f"{', '.join(self.splits())} (pass test_image_ids for train/test)"
            )
        cached = cache_index_path(self.root)
        if (
            not self._explicit_index
            and not index_is_current(self.index_path, self.root)
            and index_is_current(cached, self.root)
        ):
            self.index_path = cached  # built there on an earlier read-only visit
        if not index_is_current(self.index_path, self.root):
            log.warning("building the Visual Genome index %s (once)", self.index_path)
            self.build_index()
        con = sqlite3.connect(f"file:{self.index_path}?mode=ro", uri=True)
        con.execute("CREATE TEMP TABLE test_ids (image_id INTEGER PRIMARY KEY)")
        con.executemany("INSERT INTO test_ids VALUES (?)", ((i,) for i in self.test_ids or ()))
        keep = {
            "all": "",
            "test": "WHERE image_id IN test_ids",
            "train": "WHERE image_id NOT IN test_ids",
        }
        con.execute(f"CREATE TEMP VIEW split_images AS SELECT image_id FROM images {keep[split]}")
        return con

    def splits(self) -> tuple[str, ...]:
        return ("all",) if self.test_ids is None else ("train", "test")

    def published_counts(self) -> dict[str, int]:
        """Visual Genome has no published per-split phrase counts; nothing to compare."""
        return {}

    def _image_path(self, image_id: int, url: str | None) -> str:
        # string joins, not pathlib: this runs once per region
        if self.image_dir is not None:
            return f"{self.image_dir}{os.sep}{image_id}.jpg"
        m = _URL_TAIL.search(url or "")
        folder, name = (m.group(1), m.group(2)) if m else ("VG_100K", f"{image_id}.jpg")
        return f"{self.root}{os.sep}{folder}{os.sep}{name}"

    def _rows(self, split: str) -> list[tuple[Any, ...]]:
        """The split's regions joined with their image's size; what the join drops is reported."""
        with closing(self._connect(split)) as con:
            rows = con.execute(
                "SELECT r.region_id, r.image_id, r.phrase, r.x, r.y, r.width, r.height, "
                "i.width, i.height, i.url FROM regions r JOIN images i USING (image_id) "
                "WHERE r.image_id IN split_images ORDER BY r.image_id, r.region_id"
            ).fetchall()
            self.load_warnings = self._unplaced(con, split)
        for line in self.load_warnings:
            log.warning("visual_genome %s: %s", split, line)
        return rows

    def _unplaced(self, con: sqlite3.Connection, split: str) -> list[str]:
        """Say which regions and test ids of ``split`` have no image metadata (so no sample)."""
        in_split = {
            "all": "",
            "test": "AND image_id IN test_ids",
            "train": "AND image_id NOT IN test_ids",
        }
        regions, images = con.execute(
            "SELECT COUNT(*), COUNT(DISTINCT image_id) FROM regions "
            f"WHERE image_id NOT IN (SELECT image_id FROM images) {in_split[split]}"
        ).fetchone()
        image_data = self.root / "image_data.json"
        out = []
        if regions:
            out.append(
                f"{self.root / 'region_descriptions.json'}: {regions} regions of {images} images "
                f"that {image_data} does not list are left out (no image size); use the files "
                "of one Visual Genome version"
            )
        if split == "test":
            (unknown,) = con.execute(
                "SELECT COUNT(*) FROM test_ids WHERE image_id NOT IN (SELECT image_id FROM images)"
            ).fetchone()
            if unknown:
                out.append(
                    f"{self.test_ids_path}: {unknown} of its {len(self.test_ids or ())} test "
                    f"image ids are not in {image_data}, so they have no samples; use the files "
                    "of one Visual Genome version"
                )
        return out

    def _image_knowledge(self, split: str) -> tuple[dict, dict, dict]:
        """Object-name counts, attribute pairs and relation triples of the split's images."""
        names, attrs, rels = defaultdict(dict), defaultdict(list), defaultdict(list)
        with closing(self._connect(split)) as con:
            keep = "WHERE image_id IN split_images"
            for image_id, name, count in con.execute(f"SELECT * FROM object_names {keep}"):
                names[image_id][tuple(words(name))] = count
            for image_id, a, n in con.execute(f"SELECT * FROM attribute_pairs {keep}"):
                attrs[image_id].append((tuple(words(a)), tuple(words(n))))
            for image_id, s, p, o in con.execute(f"SELECT * FROM relation_triples {keep}"):
                rels[image_id].append(tuple(tuple(words(t)) for t in (s, p, o)))
        return names, attrs, rels

    @cached_property
    def _train_pairs(self) -> frozenset[tuple[str, str]]:
        """Attribute–noun pairs of the train split's phrases (indexed at build time)."""
        with closing(self._connect("train")) as con:
            query = (
                "SELECT DISTINCT attribute, noun FROM phrase_pairs WHERE image_id IN split_images"
            )
            return frozenset(con.execute(query))

    def load_samples(self, split: str) -> list[GroundingSample]:
        rows = self._rows(split)
        names, attrs, rels = self._image_knowledge(split)
        seen_pairs = self._train_pairs if split == "test" else None
        samples = []
        for region_id, image_id, phrase, x, y, w, h, width, height, url in rows:
            box = vg_region_to_xyxy(x, y, w, h)[None, :]
            pw = tuple(words(phrase))
            mentioned = [c for n, c in names[image_id].items() if _has_sequence(pw, n)]
            tags = probe_tags(
                phrase, box, width, height,
                same_category_count=max(mentioned) if mentioned else None,
                seen_pairs=seen_pairs,
            )  # fmt: skip
            if any(_has_sequence(pw, a) and _has_sequence(pw, n) for a, n in attrs[image_id]):
                tags.add("attribute")
            if any(
                _has_sequence(pw, s) and _has_sequence(pw, p) and _has_sequence(pw, o)
                for s, p, o in rels[image_id]
            ):
                tags.add("relational")
            samples.append(
                GroundingSample(
                    id=f"vg/{split}/{image_id}/r{region_id}",
                    image_path=self._image_path(image_id, url),
                    width=width,
                    height=height,
                    text=phrase,
                    phrase=phrase,
                    span=(0, len(phrase)),
                    boxes=box,
                    tags=tags | {f"split={split}"},
                    meta={"image_id": image_id, "region_id": region_id},
                )
            )
        return samples

    def load_captions(self, split: str) -> list[CaptionRecord]:
        return [
            CaptionRecord(
                id=f"vg/{split}/{image_id}/r{region_id}",
                image_path=self._image_path(image_id, url),
                width=width,
                height=height,
                text=phrase,
                tags=frozenset({f"split={split}"}),
            )
            for region_id, image_id, phrase, _x, _y, _w, _h, width, height, url in self._rows(split)
        ]
