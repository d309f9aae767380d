"""The protocol hash: canonical JSON, idempotent, blind to spelling, sensitive to meaning."""

from __future__ import annotations

import copy
import hashlib
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from groundbench.errors import ProtocolError
from groundbench.protocol import protocol_from_mapping, protocol_hash

BASE = {
    "schema": 1,
    "about": "hash tests",
    "dataset": {"adapter": "native", "name": "synth", "split": "test"},
    "pipeline": {"upsample": {"mode": "bicubic"}},
    "metrics": [{"name": "pointing", "variant": "albef"}, {"name": "box_acc", "iou": 0.5}],
}


def hash_of(data: dict) -> str:
    return protocol_from_mapping(data).hash


def test_hash_is_sha256_of_compact_sorted_json():
    p = protocol_from_mapping(BASE)
    blob = json.dumps(
        p.canonical, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    )
    assert p.hash == hashlib.sha256(blob.encode("utf-8")).hexdigest()


def test_canonicalisation_is_idempotent():
    p = protocol_from_mapping(BASE)
    again = protocol_from_mapping(p.canonical)
    assert again.canonical == p.canonical and again.hash == p.hash


def test_about_and_integer_floats_do_not_change_the_hash():
    edited = copy.deepcopy(BASE)
    edited["about"] = "something else entirely"
    edited["metrics"][1]["iou"] = 0.5
    edited["pipeline"]["smooth"] = {"sigma_px": 0}
    base = copy.deepcopy(BASE)
    base["pipeline"]["smooth"] = {"sigma_px": 0.0}
    assert hash_of(edited) == hash_of(base)
    with_defaults = copy.deepcopy(BASE)
    with_defaults["select"] = {"include_tags": [], "exclude_tags": [], "min_area_fraction": 0}
    with_defaults["bootstrap"] = {"resamples": 1000, "seed": 0}
    assert hash_of(with_defaults) == hash_of(BASE)


def test_tag_order_and_repeats_do_not_change_the_hash():
    a, b = copy.deepcopy(BASE), copy.deepcopy(BASE)
    a["select"] = {"include_tags": ["small", "relational"]}
    b["select"] = {"include_tags": ["relational", "small", "small"]}
    assert hash_of(a) == hash_of(b)


@settings(max_examples=25, deadline=None)
@given(st.permutations(list(BASE)), st.randoms(use_true_random=False))
def test_key_order_does_not_change_the_hash(order, rnd):
    shuffled = {k: BASE[k] for k in order}
    inner = list(BASE["dataset"].items())
    rnd.shuffle(inner)
    shuffled["dataset"] = dict(inner)
    assert hash_of(shuffled) == hash_of(BASE)


SEMANTIC_EDITS = [
    ("dataset", "split", "val"),
    ("dataset", "name", "synth2"),
    ("dataset", "adapter", "mdetr"),
    ("select", "include_tags", ["small"]),
    ("select", "exclude_tags", ["small"]),
    ("select", "min_area_fraction", 0.05),
    (None, "resolution", [224, 224]),
    (None, "resolution", {"max_side": 1024}),
    (None, "region", "mask"),
    (None, "control", "blind"),
    ("bootstrap", "resamples", 999),
    ("bootstrap", "seed", 1),
    ("pipeline", "normalise", "softmax"),
    ("pipeline", "smooth", {"sigma_px": 1}),
    ("pipeline", "threshold", {"method": "otsu"}),
    ("pipeline", "regions", "union_box"),
    ("pipeline", "upsample", {"mode": "bilinear"}),
    ("pipeline", "aggregate", {"heads": "max"}),
    ("pipeline", "average", {"passes": "max"}),
    (None, "metrics", [{"name": "pointing", "variant": "albef"}, {"name": "box_acc", "iou": 0.3}]),
    (None, "metrics", [{"name": "pointing", "variant": "mg"}, {"name": "box_acc"}]),
    (None, "metrics", [{"name": "box_acc"}, {"name": "pointing", "variant": "albef"}]),
]


@pytest.mark.parametrize(("section", "key", "value"), SEMANTIC_EDITS)
def test_every_semantic_edit_changes_the_hash(section, key, value):
    edited = copy.deepcopy(BASE)
    target = edited if section is None else edited.setdefault(section, {})
    target[key] = value
    assert hash_of(edited) != hash_of(BASE)


def test_every_edit_gives_a_distinct_hash():
    hashes = set()
    for section, key, value in SEMANTIC_EDITS:
        edited = copy.deepcopy(BASE)
        (edited if section is None else edited.setdefault(section, {}))[key] = value
        hashes.add(hash_of(edited))
    assert len(hashes) == len(SEMANTIC_EDITS)


def test_nan_cannot_be_hashed():
    with pytest.raises(ProtocolError) as info:
        protocol_hash({"x": float("nan")})
    assert str(info.value) == (
        "protocol cannot be hashed as canonical JSON: Out of range float values are not JSON "
        "compliant"
    )
