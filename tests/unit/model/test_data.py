"""The no-boxes guarantee and the pair tensors of the training data."""

from __future__ import annotations

import ast
import dataclasses
from pathlib import Path

import numpy as np
import pytest

import groundbench.model as model_pkg
from groundbench.errors import DataFormatError
from groundbench.model import load_config
from groundbench.model.data import build_training_data, captions_fingerprint, phrase_pairs
from groundbench.model.grounding import NO_RELATION, relation_code
from groundbench.model.language import Vocabulary, parse
from groundbench.types import CaptionRecord, GroundingSample

TRAINING_MODULES = ("data", "train", "objective", "config", "runlog", "language", "network")


def test_caption_record_has_no_box_field():
    fields = {f.name for f in dataclasses.fields(CaptionRecord)}
    assert not fields & {"boxes", "mask", "phrase", "span"}


def test_training_data_refuses_grounding_samples(square_records):
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
        build_training_data([square_records[0], sample], load_config("tiny"), progress=False)
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


def test_a_hidden_word_never_reaches_its_own_query():
    vocab = Vocabulary(["<unk>", "red", "ring", "star", "small"], [0, 1, 2, 2, 3])
    pairs = phrase_pairs(parse("the small red ring left of the star"), vocab, 4)
    assert [(q, t) for q, t, _, _ in pairs] == [
        ([1, 2, 0, 0], 4),
        ([4, 2, 0, 0], 1),
        ([4, 1, 0, 0], 2),
        ([0, 0, 0, 0], 3),
    ]
    left = relation_code("left", inverse=False)
    assert [(p, r) for _, _, p, r in pairs] == [([3, 0, 0, 0], left)] * 3 + [
        ([4, 1, 2, 0], relation_code("left", inverse=True))
    ]
    assert phrase_pairs(parse("a zebra"), vocab, 4) == []
    assert phrase_pairs(parse("a star"), vocab, 2)[0][3] == NO_RELATION


def test_images_are_decoded_once_per_image(square_records):
    extra = [dataclasses.replace(r, id=r.id + "/c1", text="the square") for r in square_records[:4]]
    data = build_training_data([*square_records[:8], *extra], load_config("tiny"), progress=False)
    assert data.images.shape == (8, 3, 32, 32) and data.images.dtype.is_floating_point is False
    assert data.query.shape[:2] == data.target.shape == data.relation.shape
    # "a red square" gives 2 pairs; "the square" gives 1 (an empty query)
    assert (data.target > 0).sum(1).tolist() == [3, 3, 3, 3, 2, 2, 2, 2]
    batch = data.batch(np.array([0, 5]))
    assert set(batch) == {"images", "query", "target", "partner", "relation", "group"}
    assert float(batch["images"].max()) <= 1.0 and batch["images"].shape == (2, 3, 32, 32)
    # image 0: "a red square" (pairs 1, 2 share a phrase) and "the square"; image 5: one caption
    assert data.group[0, :3].tolist() == [1, 1, 2] and data.group[5, :3].tolist() == [1, 1, 0]


def test_no_known_word_is_a_clear_error(square_records):
    with pytest.raises(DataFormatError) as err:
        build_training_data(square_records[:4], load_config("small-cpu"), progress=False)
    assert str(err.value) == (
        "none of the 4 training captions has a word seen 5 times; lower "
        "train.min_word_count or add captions"
    )


def test_fingerprint_depends_on_text(square_records):
    a = captions_fingerprint(square_records)
    changed = [dataclasses.replace(square_records[0], text="a big square"), *square_records[1:]]
    assert a != captions_fingerprint(changed)
    assert a == captions_fingerprint(list(square_records))


def test_training_data_keeps_the_identity_of_every_image_it_saw(square_records):
    import hashlib
    from pathlib import Path

    records = [*square_records[:6], dataclasses.replace(square_records[0], id="squares/x/c1")]
    data = build_training_data(records, load_config("tiny"), progress=False)
    expected = sorted(
        {hashlib.sha256(Path(r.image_path).read_bytes()).hexdigest()[:16] for r in records}
    )
    assert list(data.image_digests) == expected and len(expected) == 6
    assert data.sources == ("squares",)


def test_a_long_phrase_keeps_its_last_words_and_its_head_noun():
    vocab = Vocabulary(["<unk>", "big", "circle", "red", "shiny"], [0, 1, 2, 3, 1])
    pairs = phrase_pairs(parse("a shiny big red circle left of a big red circle"), vocab, 2)
    # the first phrase is cut to "red circle"; its partner too
    assert [(q, t, pa) for q, t, pa, _ in pairs[:2]] == [([2, 0], 3, [3, 2]), ([3, 0], 2, [3, 2])]
