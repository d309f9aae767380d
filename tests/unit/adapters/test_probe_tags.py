"""Probe-tag rules on hand-made phrases and boxes."""

from __future__ import annotations

import numpy as np
import pytest

from dataset_adapters.probe_tags import (
    SMALL_AREA_FRACTION,
    attribute_noun_pairs,
    is_compositional,
    is_off_centre,
    is_relational,
    is_small,
    probe_tags,
    training_pairs,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [("man on the left", True), ("the one in front of the car", True), ("leftover pizza", False),
     ("Top shelf", True), ("a red car", False)],
)  # fmt: skip
def test_relational_matches_whole_words(text, expected):
    assert is_relational(text) is expected


def test_pairs_skip_stacked_attributes_and_function_words():
    assert attribute_noun_pairs("big red ball") == {("big", "ball"), ("red", "ball")}
    assert attribute_noun_pairs("the red") == frozenset()
    assert attribute_noun_pairs("white and black dog") == frozenset({("black", "dog")})


def test_compositional_against_training_pairs():
    seen = training_pairs(["a red car", "blue dog"])
    assert not is_compositional("the red car on the left", seen)
    assert is_compositional("the red dog", seen)
    assert not is_compositional("dog", seen)


def test_small_uses_union_box_clipped_to_image():
    w, h = 100, 100
    just_below = np.sqrt(SMALL_AREA_FRACTION * w * h) - 0.01
    assert is_small(np.array([[0.0, 0.0, just_below, just_below]]), w, h)
    assert not is_small(np.array([[0.0, 0.0, 23.0, 23.0]]), w, h)  # 529 px² ≥ 500
    # two tiny boxes far apart: their union is large
    assert not is_small(np.array([[0.0, 0.0, 1.0, 1.0], [90.0, 90.0, 100.0, 100.0]]), w, h)
    # outside the image does not count
    assert is_small(np.array([[-50.0, -50.0, 5.0, 5.0]]), w, h)


def test_off_centre_closed_boundary():
    assert not is_off_centre(np.array([[50.0, 50.0, 60.0, 60.0]]), 100, 100)  # centre on the corner
    assert is_off_centre(np.array([[50.01, 0.0, 60.0, 100.0]]), 100, 100)


def test_probe_tags_combines_rules():
    tags = probe_tags("the small cup left of it", np.array([[0.0, 0.0, 2.0, 2.0]]), 10, 10,
                      same_category_count=2, seen_pairs=frozenset())  # fmt: skip
    assert tags == {
        "relational",
        "attribute",
        "compositional",
        "distractors",
        "small",
        "off-centre",
    }
    assert probe_tags("cup", np.array([[0.0, 0.0, 10.0, 10.0]]), 10, 10) == set()
