"""Load a protocol's samples, fingerprint them, and serve batches (with images) to methods."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from dataset_adapters import open_dataset
from dataset_adapters.proposals import Proposals, gt_proposals, read_proposals
from groundbench.bounds import image_header_size
from groundbench.errors import DataFormatError, GroundbenchError
from groundbench.probes import (
    DESCRIBING_DONOR_TAG,
    blind_control,
    check_select_tags,
    select_samples,
)
from groundbench.protocol import Protocol
from groundbench.types import GroundingSample, Undefined

log = logging.getLogger(__name__)


def dataset_root(protocol: Protocol, data_root: str | Path | None) -> Path:
    """Return the dataset root: ``data_root``, or the generated default for ``synth``."""
    if data_root is not None:
        return Path(data_root)
    if protocol.dataset.name == "synth":
        from groundbench.synthetic import ensure_default_dataset

        return ensure_default_dataset()
    raise DataFormatError(
        f"protocol {protocol.name} reads the {protocol.dataset.name} dataset: pass its folder "
        "with --data-root (layouts in docs/adapters.md)"
    )


@dataclass(frozen=True)
class LoadedSplit:
    """A protocol's samples and what the adapter had to leave out of the split's files.

    Attributes:
        samples: selected, controlled, sorted by id, limited.
        warnings: the adapter's ``load_warnings`` in its order, paths under the dataset root
            written relative to it (so the report does not depend on where the data lives).
        skipped: reason -> count of records the adapter leaves out by rule (Flickr30k
            Entities' phrases without a box), sorted by reason; empty when it reports none.
        control: under a control, ``{"name": "blind", "donors_describing_target": k}``:
            how many of the samples kept a donor phrase that describes their target
            (:func:`~groundbench.probes.describes_target`); None without a control.
        proposals: the candidate boxes of a region-ranking protocol, else None.
    """

    samples: list[GroundingSample]
    warnings: tuple[str, ...] = ()
    skipped: dict[str, int] = field(default_factory=dict)
    control: dict[str, Any] | None = None
    proposals: Proposals | None = None


def load_samples(
    protocol: Protocol, data_root: str | Path | None, limit: int | None = None
) -> list[GroundingSample]:
    """Return the protocol's samples: selected, controlled, sorted by id, limited.

    Raises:
        DataFormatError: duplicate ids, or no sample left after selection.
    """
    return load_split(protocol, data_root, limit).samples


def load_split(
    protocol: Protocol, data_root: str | Path | None, limit: int | None = None
) -> LoadedSplit:
    """Load the protocol's split: its samples (as :func:`load_samples`) and the adapter's notes.

    The notes describe the split's files, before selection and ``limit``; the adapter logs
    its warnings as it loads, so they are not logged again here.

    Raises:
        DataFormatError: duplicate ids, or no sample left after selection.
        ProtocolError: the selection names a tag no sample carries (see
            :func:`~groundbench.probes.check_select_tags`).
    """
    ds = protocol.dataset
    adapter = open_dataset(ds.adapter, dataset_root(protocol, data_root), **dict(ds.options))
    loaded = adapter.load_samples(ds.split)
    notes = check_select_tags(
        protocol.select,
        {t for s in loaded for t in s.tags},
        f"protocol {protocol.name} ({ds.name}/{ds.split})",
    )
    for note in notes:
        log.info(note)
    samples = select_samples(loaded, protocol.select)
    if protocol.control == "blind":
        samples = blind_control(samples, protocol.bootstrap.seed)
    samples = sorted(samples, key=lambda s: s.id)
    for a, b in zip(samples, samples[1:], strict=False):
        if a.id == b.id:
            raise DataFormatError(f"{ds.adapter} split {ds.split}: sample id {a.id!r} occurs twice")
    if limit is not None:
        samples = samples[:limit]
    if not samples:
        raise DataFormatError(
            f"protocol {protocol.name}: no sample of {ds.name}/{ds.split} is left after selection "
            f"{protocol.canonical['select']}; check the dataset root and the select keys"
        )
    root = getattr(adapter, "root", None)
    warnings = tuple(
        root_relative(str(w), root) for w in getattr(adapter, "load_warnings", None) or ()
    )
    skipped = getattr(adapter, "skipped", None)
    counts = (
        {str(k): int(v) for k, v in sorted(skipped.items(), key=lambda kv: str(kv[0])) if v}
        if isinstance(skipped, Mapping)
        else {}
    )
    control = None
    if protocol.control == "blind":
        describing = sum(DESCRIBING_DONOR_TAG in s.tags for s in samples)
        control = {"name": "blind", "donors_describing_target": describing}
    proposals = load_proposals(protocol, dataset_root(protocol, data_root), samples)
    if proposals is not None:
        warnings += proposals.warnings
    return LoadedSplit(samples, warnings, counts, control, proposals)


def load_proposals(
    protocol: Protocol, root: Path, samples: Sequence[GroundingSample]
) -> Proposals | None:
    """The candidate boxes of the protocol's ``proposals`` (a file under ``root``, or ``gt``)."""
    spec = protocol.proposals
    if spec is None:
        return None
    if spec == "gt":
        return gt_proposals(samples)
    return read_proposals(root / spec["file"], samples)


def root_relative(text: str, root: str | Path | None) -> str:
    """Write the paths under ``root`` that ``text`` names relative to it.

    Only a path that starts a word (after a space, a quote or a bracket) is rewritten.

    Example:
        >>> root_relative("/data/vg/test_ids.txt: 1 of /data/vg2/x and /old/data/vg/y", "/data/vg")
        'test_ids.txt: 1 of /data/vg2/x and /old/data/vg/y'
    """
    if root is None or str(root) in ("", "."):
        return text
    prefix = re.escape(os.path.join(str(root), ""))
    return re.sub(rf"(?<![^\s'\"(\[]){prefix}", "", text)


def cluster_ids(samples: Sequence[GroundingSample], by: str) -> np.ndarray:
    """Number the clusters of ``samples`` (``by="image"``: one per image file) 0, 1, ... in
    order of first appearance; ``(N,)`` float64, as ``samples.csv`` stores them.

    Example:
        >>> s = [GroundingSample(f"s{i}", f"{i // 2}.png", 4, 4, "x", "x", (0, 1), [[0, 0, 1, 1]])
        ...      for i in range(5)]
        >>> cluster_ids(s, "image").tolist()
        [0.0, 0.0, 1.0, 1.0, 2.0]
    """
    if by != "image":
        raise DataFormatError(f"bootstrap.cluster: cannot cluster samples by {by!r}; use image")
    index: dict[str, int] = {}
    return np.array([index.setdefault(s.image_path, len(index)) for s in samples], np.float64)


def dataset_fingerprint(
    samples: Sequence[GroundingSample], proposals: Proposals | None = None
) -> str:
    """sha256 over what is scored of every sample, wherever the data lives.

    Covers the id, text, phrase and span, image size, boxes, mask, tags and the sha256 of
    the image file's bytes (:func:`file_sha256`), so two roots whose images differ never
    share a fingerprint, a cache key or a leaderboard column; with region ranking, also the
    proposal file's sha256 (or ``gt``).
    """
    h = hashlib.sha256()
    if proposals is not None:
        h.update(f"proposals:{proposals.sha256 or proposals.source}\n".encode())
    for s in samples:
        head = {
            "id": s.id,
            "text": s.text,
            "phrase": s.phrase,
            "span": list(s.span),
            "size": [s.width, s.height],
            "mask": None if s.mask is None else dict(s.mask),
            "tags": sorted(s.tags),
            "image": file_sha256(s.image_path),
        }
        h.update(json.dumps(head, sort_keys=True, ensure_ascii=False, default=str).encode())
        h.update(b"\0")
        h.update(np.ascontiguousarray(s.boxes, dtype="<f8").tobytes())
        h.update(b"\n")
    flush_hash_cache()
    return h.hexdigest()


def file_sha256(path: str | Path) -> str:
    """sha256 of a file's bytes, cached by (path, size, mtime) so unchanged files are read once.

    The cache is a small SQLite file in the user cache folder
    (``$GROUNDBENCH_CACHE`` or ``~/.cache/groundbench``); a missing file hashes as
    ``"missing"`` (the sample is then scored as ``missing_image``).
    """
    path = os.path.abspath(path)
    try:
        st = os.stat(path)
    except OSError:
        return "missing"
    stamp = (path, st.st_size, st.st_mtime_ns)
    hit = _HASHES.get(stamp)
    if hit is None:
        hit = _hash_store().get(stamp)
    if hit is None:
        digest = hashlib.sha256()
        try:
            with open(path, "rb") as f:
                for chunk in iter(lambda: f.read(1 << 20), b""):
                    digest.update(chunk)
        except OSError:
            return "missing"
        hit = digest.hexdigest()
        _hash_store().put(stamp, hit)
    _HASHES[stamp] = hit
    return hit


_HASHES: dict[tuple[str, int, int], str] = {}


class _HashStore:
    """Persistent (path, size, mtime) → sha256 table; any failure only costs a re-hash."""

    def __init__(self) -> None:
        base = os.environ.get("GROUNDBENCH_CACHE") or os.path.join(
            os.path.expanduser("~"), ".cache", "groundbench"
        )
        self._db = None
        self._pending: list[tuple[str, int, int, str]] = []
        try:
            import sqlite3

            os.makedirs(base, exist_ok=True)
            self._db = sqlite3.connect(os.path.join(base, "file_hashes.sqlite"), timeout=30)
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS files (path TEXT, size INTEGER, mtime_ns INTEGER, "
                "sha256 TEXT, PRIMARY KEY (path, size, mtime_ns))"
            )
            self._db.commit()
        except Exception as exc:  # read-only home, locked or corrupt database: hash every time
            log.info("file hash cache unavailable (%s); images are hashed on every run", exc)
            self._db = None

    def get(self, stamp: tuple[str, int, int]) -> str | None:
        if self._db is None:
            return None
        try:
            row = self._db.execute(
                "SELECT sha256 FROM files WHERE path=? AND size=? AND mtime_ns=?", stamp
            ).fetchone()
        except Exception:
            return None
        return None if row is None else row[0]

    def put(self, stamp: tuple[str, int, int], digest: str) -> None:
        if self._db is None:
            return
        self._pending.append((*stamp, digest))
        if len(self._pending) >= 512:
            self.flush()

    def flush(self) -> None:
        if self._db is None or not self._pending:
            return
        try:
            self._db.executemany("INSERT OR REPLACE INTO files VALUES (?, ?, ?, ?)", self._pending)
            self._db.commit()
        except Exception as exc:
            log.info("file hash cache not updated (%s)", exc)
        self._pending.clear()


_STORE: _HashStore | None = None


def _hash_store() -> _HashStore:
    global _STORE
    if _STORE is None:
        _STORE = _HashStore()
    return _STORE


def flush_hash_cache() -> None:
    """Write the hashes computed so far to the persistent cache."""
    if _STORE is not None:
        _STORE.flush()


@dataclass(frozen=True)
class Unread:
    """Why a sample of a batch has no image to score: the reason code its metrics get, and why.

    Attributes:
        reason: ``missing_image`` or ``image_size_mismatch``.
        message: one line naming the image file and the sample.
    """

    reason: Undefined
    message: str


class _ImageDataset(torch.utils.data.Dataset):
    """Index → (index, image or None, :class:`Unread` or None); decoding runs in workers.

    Every image's real size is compared with its record's: from the decoded pixels when the
    method reads them, else from the file's header (a missing or unreadable file is then no
    error, the method never reads it). A mismatched image is dropped; :func:`batches`
    refuses it or passes it on as unread, as the protocol says.
    """

    def __init__(self, samples: Sequence[GroundingSample], with_images: bool) -> None:
        self.samples = samples
        self.with_images = with_images
        self._sizes: dict[str, tuple[int, int] | None] = {}

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int) -> tuple[int, np.ndarray | None, Unread | None]:
        s = self.samples[i]
        if not self.with_images:
            if s.image_path not in self._sizes:
                try:
                    self._sizes[s.image_path] = image_header_size(s.image_path)
                except OSError:
                    self._sizes[s.image_path] = None
            real = self._sizes[s.image_path]
            return i, None, None if real is None else _mismatch(s, *real)
        try:
            image = s.load_image()
        except GroundbenchError as exc:
            return i, None, Unread(Undefined.MISSING_IMAGE, str(exc))
        mismatch = _mismatch(s, image.shape[1], image.shape[0])
        return i, None if mismatch else image, mismatch


def _mismatch(sample: GroundingSample, width: int, height: int) -> Unread | None:
    refusal = size_refusal(sample, width, height)
    return None if refusal is None else Unread(Undefined.IMAGE_SIZE_MISMATCH, refusal)


def size_refusal(sample: GroundingSample, width: int, height: int) -> str | None:
    """The one-line refusal when an image is ``width × height`` but its record says otherwise."""
    if (width, height) == (sample.width, sample.height):
        return None
    return (
        f"image {sample.image_path} is {width}×{height} pixels but sample {sample.id!r} records "
        f"{sample.width}×{sample.height}, so its boxes and the map would be in different "
        "frames; restore the original images or correct the record (`groundbench data check` "
        "lists every such record)"
    )


def _as_list(batch: list) -> list:
    return batch


def batches(
    samples: Sequence[GroundingSample],
    *,
    with_images: bool,
    batch_size: int,
    num_workers: int,
    on_size_mismatch: str = "refuse",
):
    """Yield ``(samples, images, unread)`` batches in order.

    A sample without an image to score has image None and an :class:`Unread`: its image
    could not be read (``missing_image``), or its real size differs from its record's
    (``image_size_mismatch``) and ``on_size_mismatch`` is ``"undefined"``.

    Raises:
        DataFormatError: an image whose real size differs from its record's under
            ``on_size_mismatch="refuse"`` (the batches yielded before it stay scored).
    """
    loader = torch.utils.data.DataLoader(
        _ImageDataset(samples, with_images),
        batch_size=batch_size,
        shuffle=False,
        num_workers=num_workers,
        collate_fn=_as_list,
    )
    for items in loader:
        unread = [u for _, _, u in items]
        if on_size_mismatch == "refuse":
            refusal = next(
                (u for u in unread if u and u.reason == Undefined.IMAGE_SIZE_MISMATCH), None
            )
            if refusal:
                raise DataFormatError(refusal.message)
        yield [samples[i] for i, _, _ in items], [img for _, img, _ in items], unread
