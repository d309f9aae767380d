"""A SQLite index of Visual Genome's JSON files, built once and read in seconds.

:func:`build_vg_index` streams ``image_data.json`` and ``region_descriptions.json`` (and,
when present, ``objects.json``, ``attributes.json``, ``relationships.json``) through
:func:`dataset_adapters.json_stream.iter_json_array` into one SQLite file, written to a
temporary name and then atomically renamed. The index remembers each source file's size
and modification time; :func:`index_is_current` tells whether it still matches them.

Tables: ``images(image_id, width, height, url, coco_id)``, ``regions(region_id, image_id,
phrase, x, y, width, height)``, ``object_names(image_id, name, count)``,
``attribute_pairs(image_id, attribute, name)``, ``relation_triples(image_id, subject,
predicate, object)``, ``phrase_pairs(image_id, attribute, noun)`` (the attribute–noun pairs
of the image's region phrases, :func:`dataset_adapters.probe_tags.attribute_noun_pairs`, so a
split's training pairs are one query) and ``meta(key, value)``. Names are lower case and
stripped.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
from collections import Counter
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from dataset_adapters.json_stream import iter_json_array
from dataset_adapters.probe_tags import attribute_noun_pairs
from groundbench.errors import DataFormatError

log = logging.getLogger(__name__)

INDEX_SCHEMA = 1
REQUIRED_FILES = ("image_data.json", "region_descriptions.json")
OPTIONAL_FILES = ("objects.json", "attributes.json", "relationships.json")
_BATCH = 20_000

_DDL = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE images (image_id INTEGER PRIMARY KEY, width INTEGER NOT NULL,
    height INTEGER NOT NULL, url TEXT, coco_id INTEGER);
CREATE TABLE regions (region_id INTEGER PRIMARY KEY, image_id INTEGER NOT NULL,
    phrase TEXT NOT NULL, x REAL NOT NULL, y REAL NOT NULL, width REAL NOT NULL,
    height REAL NOT NULL);
CREATE TABLE object_names (image_id INTEGER NOT NULL, name TEXT NOT NULL, count INTEGER NOT NULL);
CREATE TABLE attribute_pairs (image_id INTEGER NOT NULL, attribute TEXT NOT NULL, name TEXT NOT NULL);
CREATE TABLE relation_triples (image_id INTEGER NOT NULL, subject TEXT NOT NULL,
    predicate TEXT NOT NULL, object TEXT NOT NULL);
CREATE TABLE phrase_pairs (image_id INTEGER NOT NULL, attribute TEXT NOT NULL, noun TEXT NOT NULL);
"""
_POST_DDL = """
CREATE INDEX regions_by_image ON regions (image_id, region_id);
CREATE INDEX object_names_by_image ON object_names (image_id);
CREATE INDEX attribute_pairs_by_image ON attribute_pairs (image_id);
CREATE INDEX relation_triples_by_image ON relation_triples (image_id);
CREATE INDEX phrase_pairs_by_image ON phrase_pairs (image_id);
"""


def source_signature(root: Path) -> dict[str, str]:
    """Return ``{file name: "size:mtime_ns"}`` for the VG files present under ``root``."""
    out = {}
    for name in REQUIRED_FILES + OPTIONAL_FILES:
        path = root / name
        if path.is_file():
            st = path.stat()
            out[name] = f"{st.st_size}:{st.st_mtime_ns}"
    return out


def index_is_current(index_path: Path, root: Path) -> bool:
    """Return whether ``index_path`` exists, has this schema and matches the source files."""
    if not index_path.is_file():
        return False
    try:
        with sqlite3.connect(f"file:{index_path}?mode=ro", uri=True) as con:
            meta = dict(con.execute("SELECT key, value FROM meta"))
    except sqlite3.DatabaseError:
        return False
    return meta.get("schema") == str(INDEX_SCHEMA) and meta.get("sources") == json.dumps(
        source_signature(root), sort_keys=True
    )


def _int(record: Any, keys: tuple[str, ...], where: str) -> int:
    for key in keys:
        value = record.get(key) if isinstance(record, dict) else None
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    raise DataFormatError(f"{where}: needs an integer {' or '.join(map(repr, keys))}")


def _num(record: dict, key: str, where: str) -> float:
    value = record.get(key)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise DataFormatError(f"{where}: field {key!r} must be a number, got {value!r:.60}")
    return float(value)


#: Keys naming an object, in the order tried: v1.2+ ``names`` (list), v1.0 objects and
#: relationships ``name`` (str), v1.0 attributes ``object_names`` (list).
_NAME_KEYS = ("names", "name", "object_names")


def _names(obj: Any) -> list[str]:
    """Object names in v1.2+ (``names: [...]``) or v1.0 (``name: str``, ``object_names``) form."""
    if not isinstance(obj, dict):
        return []
    raw = next((obj[k] for k in _NAME_KEYS if k in obj), [])
    raw = [raw] if isinstance(raw, str) else raw
    return [n.strip().lower() for n in raw if isinstance(n, str) and n.strip()]


def _image_rows(path: Path, progress: tqdm) -> Iterator[tuple]:
    for i, img in enumerate(iter_json_array(path, on_progress=progress.update)):
        where = f"{path} element {i}"
        if not isinstance(img, dict):
            raise DataFormatError(f"{where}: expected an object")
        image_id = _int(img, ("image_id", "id"), where)  # v1.2+: image_id; v1.0: id
        coco = img.get("coco_id")
        yield (
            image_id,
            int(_num(img, "width", where)),
            int(_num(img, "height", where)),
            img.get("url") if isinstance(img.get("url"), str) else None,
            coco if isinstance(coco, int) else None,
        )


def _region_rows(path: Path, progress: tqdm) -> Iterator[tuple]:
    for i, entry in enumerate(iter_json_array(path, on_progress=progress.update)):
        where = f"{path} element {i}"
        regions = entry.get("regions") if isinstance(entry, dict) else None
        if not isinstance(regions, list):
            raise DataFormatError(f"{where}: expected an object with a 'regions' list")
        for j, r in enumerate(regions):
            w = f"{where} region {j}"
            if not isinstance(r, dict) or not isinstance(r.get("phrase"), str):
                raise DataFormatError(f"{w}: expected an object with a string 'phrase'")
            yield (
                _int(r, ("region_id", "id"), w),
                _int(r, ("image_id",), w)
                if "image_id" in r
                else _int(entry, ("id", "image_id"), where),
                r["phrase"].strip(),
                _num(r, "x", w),
                _num(r, "y", w),
                _num(r, "width", w),
                _num(r, "height", w),
            )


def _per_image(path: Path, key: str, progress: tqdm) -> Iterator[tuple[int, list]]:
    for i, entry in enumerate(iter_json_array(path, on_progress=progress.update)):
        where = f"{path} element {i}"
        items = entry.get(key) if isinstance(entry, dict) else None
        if not isinstance(items, list):
            raise DataFormatError(f"{where}: expected an object with a {key!r} list")
        yield _int(entry, ("image_id", "id"), where), items


def _object_rows(path: Path, progress: tqdm) -> Iterator[tuple]:
    for image_id, objects in _per_image(path, "objects", progress):
        counts = Counter(n for obj in objects for n in set(_names(obj)))
        yield from ((image_id, name, c) for name, c in counts.items())


def _attribute_rows(path: Path, progress: tqdm) -> Iterator[tuple]:
    for image_id, objects in _per_image(path, "attributes", progress):
        pairs = set()
        for obj in objects:
            attrs = obj.get("attributes") if isinstance(obj, dict) else None
            for a in attrs if isinstance(attrs, list) else []:
                if isinstance(a, str) and a.strip():
                    pairs.update((a.strip().lower(), n) for n in _names(obj))
        yield from ((image_id, a, n) for a, n in sorted(pairs))


def _relation_rows(path: Path, progress: tqdm) -> Iterator[tuple]:
    for image_id, rels in _per_image(path, "relationships", progress):
        triples = set()
        for rel in rels:
            if not isinstance(rel, dict) or not isinstance(rel.get("predicate"), str):
                continue
            pred = rel["predicate"].strip().lower()
            for s in _names(rel.get("subject")):
                triples.update((s, pred, o) for o in _names(rel.get("object")))
        yield from ((image_id, s, p, o) for s, p, o in sorted(triples) if p)


#: The unique id of each table that has one (its first column), as error messages name it.
_UNIQUE_IDS = {"images": "image id", "regions": "region id"}


class DuplicateIdError(Exception):
    """A row repeats the unique id of its table; ``value`` is that id."""

    def __init__(self, table: str, value: Any) -> None:
        super().__init__(f"duplicate {_UNIQUE_IDS.get(table, 'id')} {value}")
        self.value = value


def _insert(con: sqlite3.Connection, table: str, rows: Iterable[tuple]) -> int:
    n, batch = 0, []

    def flush() -> None:
        try:
            con.executemany(f"INSERT INTO {table} VALUES ({','.join('?' * len(batch[0]))})", batch)
        except sqlite3.IntegrityError as exc:
            # executemany stops at the first duplicate; the rows before it are in, so the
            # row count since the last batch points at the offending row
            (count,) = con.execute(f"SELECT COUNT(*) FROM {table}").fetchone()
            raise DuplicateIdError(table, batch[count - n][0]) from exc

    for row in rows:
        batch.append(row)
        if len(batch) >= _BATCH:
            flush()
            n, batch = n + len(batch), []
    if batch:
        flush()
    return n + len(batch)


def _phrase_pair_rows(con: sqlite3.Connection) -> Iterator[tuple]:
    """Distinct attribute–noun pairs per image, from the regions already indexed."""
    cursor = con.execute("SELECT image_id, phrase FROM regions ORDER BY image_id")
    current, pairs = None, set()
    for image_id, phrase in cursor:
        if image_id != current:
            yield from ((current, a, n) for a, n in sorted(pairs))
            current, pairs = image_id, set()
        pairs |= attribute_noun_pairs(phrase)
    yield from ((current, a, n) for a, n in sorted(pairs))


_LOADERS = {
    "image_data.json": ("images", _image_rows),
    "region_descriptions.json": ("regions", _region_rows),
    "objects.json": ("object_names", _object_rows),
    "attributes.json": ("attribute_pairs", _attribute_rows),
    "relationships.json": ("relation_triples", _relation_rows),
}


def build_vg_index(
    root: str | Path, index_path: str | Path, *, progress: bool = True
) -> dict[str, int]:
    """Stream Visual Genome's JSON files under ``root`` into a SQLite index at ``index_path``.

    Args:
        root: the folder holding ``image_data.json`` and ``region_descriptions.json``
            (required) and ``objects.json``, ``attributes.json``, ``relationships.json``
            (optional: without them, tags come from the lexicons only).
        index_path: where to write the index (its folder is created).
        progress: show a byte-level progress bar on stderr.

    Returns:
        Rows written per table.

    Raises:
        DataFormatError: a required file is missing, a file is malformed, or an image or
            region id repeats (the id is named).
    """
    root, index_path = Path(root), Path(index_path)
    for name in REQUIRED_FILES:
        if not (root / name).is_file():
            raise DataFormatError(
                f"{root / name} does not exist; download it from the Visual Genome site "
                "(see docs/adapters.md) into the dataset root"
            )
    sources = source_signature(root)
    index_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = index_path.with_name(index_path.name + f".tmp{os.getpid()}")
    tmp.unlink(missing_ok=True)
    counts: dict[str, int] = {}
    total = sum((root / n).stat().st_size for n in sources)
    con = sqlite3.connect(tmp)
    try:
        con.executescript("PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF;" + _DDL)
        with tqdm(total=total, unit="B", unit_scale=True, desc="indexing Visual Genome",
                  disable=not progress) as bar:  # fmt: skip
            for name in sources:
                table, rows = _LOADERS[name]
                try:
                    counts[table] = _insert(con, table, rows(root / name, bar))
                except DuplicateIdError as exc:
                    raise DataFormatError(
                        f"{root / name}: {_UNIQUE_IDS[table]} {exc.value} occurs more than "
                        "once; ids must be unique: re-download the file"
                    ) from exc
                log.info("indexed %s: %d rows", name, counts[table])
        con.executescript(_POST_DDL)
        counts["phrase_pairs"] = _insert(con, "phrase_pairs", _phrase_pair_rows(con))
        con.executemany(
            "INSERT INTO meta VALUES (?, ?)",
            [("schema", str(INDEX_SCHEMA)), ("sources", json.dumps(sources, sort_keys=True))],
        )
        con.commit()
    except BaseException:
        con.close()
        tmp.unlink(missing_ok=True)
        raise
    con.close()
    os.replace(tmp, index_path)
    return counts
