"""The dataset fingerprint certifies the pixels too, and stays cheap on a rerun."""

from __future__ import annotations

import os
import shutil
import sqlite3

from groundbench.evaluate import evaluate
from groundbench.evaluation import data
from groundbench.evaluation.data import dataset_fingerprint, file_sha256, load_samples
from groundbench.protocol import load_protocol


def _fingerprint(protocol, root):
    return dataset_fingerprint(load_samples(load_protocol(str(protocol)), root))


def test_roots_that_differ_only_in_pixels_get_different_fingerprints(tiny, tmp_path):
    protocol, root = tiny
    copy = shutil.copytree(root, tmp_path / "copy")
    assert _fingerprint(protocol, root) == _fingerprint(protocol, copy)
    other = tmp_path / "other"
    shutil.copytree(root, other)
    shutil.copy(root / "images" / "1.png", other / "images" / "0.png")  # same ids, boxes, text
    assert _fingerprint(protocol, root) != _fingerprint(protocol, other)


def test_a_resume_never_mixes_records_of_two_roots(tiny, tmp_path):
    # Two roots with the same ids, phrases and boxes but other images used to share the
    # cache key, so a resume silently mixed their records.
    protocol, root = tiny
    other = shutil.copytree(root, tmp_path / "other")
    for i in range(3):
        shutil.copy(root / "images" / f"{(i + 1) % 3}.png", other / "images" / f"{i}.png")
    kw = {"progress": False, "batch_size": 2}
    first = evaluate(str(protocol), "oracle_box", out_dir=tmp_path / "a", data_root=root, **kw)
    second = evaluate(str(protocol), "oracle_box", out_dir=tmp_path / "b", data_root=other, **kw)
    assert first.report["dataset"]["fingerprint"] != second.report["dataset"]["fingerprint"]


def test_file_hashes_are_cached_by_path_size_and_mtime(tiny, monkeypatch):
    _, root = tiny
    image = root / "images" / "0.png"
    digest = file_sha256(image)
    data.flush_hash_cache()
    db = sqlite3.connect(os.environ["GROUNDBENCH_CACHE"] + "/file_hashes.sqlite")
    assert db.execute("SELECT sha256 FROM files").fetchall() == [(digest,)]
    monkeypatch.setattr(data, "_HASHES", {})  # a new process: only the file cache remains
    monkeypatch.setattr(data, "open", _no_read, raising=False)
    assert file_sha256(image) == digest
    monkeypatch.delattr(data, "open")
    image.write_bytes(image.read_bytes() + b"\0")  # new size: hashed again
    assert file_sha256(image) != digest


def _no_read(*args, **kwargs):
    raise AssertionError("a cached file was read again")
