"""The no-boxes guarantee: the training data path cannot receive a GroundingSample or a box."""

from __future__ import annotations

import ast
import dataclasses
from pathlib import Path

import numpy as np
import pytest

import groundbench.model as model_pkg
from groundbench.errors import DataFormatError
from groundbench.model.data import CaptionDataset, captions_fingerprint, collate
from groundbench.model.text import Vocabulary
from groundbench.types import CaptionRecord, GroundingSample

TRAINING_MODULES = ("data", "train", "objective", "masking", "losses", "config", "runlog")


def test_caption_record_has_no_box_field():
    fields = {f.name for f in dataclasses.fields(CaptionRecord)}
    assert not fields & {"boxes", "mask", "phrase", "span"}


def test_dataset_refuses_grounding_samples(square_records):
    sample = GroundingSample(
        "g/1",
        square_records[0].image_path,
        32,
        32,
        "a red square",
        "red square",
        (2, 12),
        np.array([[0.0, 0.0, 16.0, 16.0]]),
    )
    with pytest.raises(DataFormatError) as err:
        CaptionDataset([square_records[0], sample], Vocabulary.build(["a"]), 32, 8)
    assert str(err.value) == (
        "training data must be CaptionRecords (image + caption, no boxes), got GroundingSample for 'g/1'; "
        "load it with adapter.load_captions(split), never load_samples"
    )


def test_training_modules_never_name_boxes_or_grounding_samples():
    root = Path(model_pkg.__file__).parent
    for name in TRAINING_MODULES:
        tree = ast.parse((root / f"{name}.py").read_text())
        names = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
        attrs = {n.attr for n in ast.walk(tree) if isinstance(n, ast.Attribute)}
        imported = {
            a.name for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) for a in n.names
        }
        assert "GroundingSample" not in names | imported, name
        assert not {"boxes", "load_samples", "mask_rle"} & attrs, name


def test_batches_hold_pixels_and_words_only(square_records):
    vocab = Vocabulary.build(r.text for r in square_records)
    ds = CaptionDataset(square_records[:3], vocab, 16, 8)
    batch = collate([ds[i] for i in range(3)])
    assert set(batch) == {"images", "ids", "pad", "words"}
    assert batch["images"].shape == (3, 3, 16, 16)
    assert float(batch["images"].max()) <= 1.0
    assert batch["words"][0] == ["a", "red", "square"]


def test_fingerprint_depends_on_text(square_records):
    a = captions_fingerprint(square_records)
    changed = [dataclasses.replace(square_records[0], text="a big square"), *square_records[1:]]
    assert a != captions_fingerprint(changed)
    assert a == captions_fingerprint(list(square_records))
