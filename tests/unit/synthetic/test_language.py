"""Expressions are unambiguous by construction; relations mean what the docs say."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from groundbench.synthetic import PROBE_SPLITS, Settings, generate
from groundbench.synthetic.language import Desc, Expression, paraphrases, realise
from groundbench.synthetic.scene import SceneObject, sample_scene
from groundbench.synthetic.splits import expressions_for
from groundbench.synthetic.writer import scene_rng

SETTINGS = Settings()
GAP = 0.1 * 64


@pytest.fixture(scope="module")
def tiny_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny dataset (seed 3) written once for this module."""
    scenes = {"train": 30, "val": 10, "test": 10} | {s: 8 for s in PROBE_SPLITS}
    return generate(
        tmp_path_factory.mktemp("synth") / "tiny", {"scenes": scenes}, seed=3, progress=False
    )


def _obj(
    shape: str, colour: str, box: tuple[float, float, float, float], size: str = "small"
) -> SceneObject:
    return SceneObject(shape, colour, size, "solid", side=8, pixels=1, visible=1, box=box)


def _holds(rel: str, a: SceneObject, b: SceneObject, c: SceneObject | None = None) -> bool:
    """The relations written out again from docs/formats.md, independently of the library."""
    (ax0, ay0, ax1, ay1), (bx0, by0, bx1, by1) = a.box, b.box
    if rel == "left of":
        return ax1 <= bx0
    if rel == "right of":
        return ax0 >= bx1
    if rel == "above":
        return ay1 <= by0
    if rel == "below":
        return ay0 >= by1
    if rel == "next to":
        gx = max(bx0 - ax1, ax0 - bx1, 0)
        gy = max(by0 - ay1, ay0 - by1, 0)
        return gx <= GAP and gy <= GAP
    cx, cy = (ax0 + ax1) / 2, (ay0 + ay1) / 2
    (b0, b1, b2, b3), (c0, c1, c2, c3) = b.box, c.box
    x_between = min(b2, c2) < cx < max(b0, c0) and not (b0 < cx < b2 or c0 < cx < c2)
    y_between = min(b3, c3) < cy < max(b1, c1) and not (b1 < cy < b3 or c1 < cy < c3)
    return (x_between and min(b1, c1) <= cy <= max(b3, c3)) or (
        y_between and min(b0, c0) <= cx <= max(b2, c2)
    )


def _referents(expr: Expression, objs: list[SceneObject]) -> list[int]:
    def fits(d: Desc, o: SceneObject) -> bool:
        return o.shape == d.shape and d.colour in (None, o.colour) and d.size in (None, o.size)

    heads = [k for k, o in enumerate(objs) if fits(expr.target, o)]
    if expr.relation is None:
        return heads
    marks = [k for k, o in enumerate(objs) if fits(expr.landmark, o)]
    if expr.relation == "between":
        assert len(marks) == 2, "'the two Xs' must name exactly two objects"
        return [
            k
            for k in heads
            if k not in marks and _holds("between", objs[k], objs[marks[0]], objs[marks[1]])
        ]
    assert len(marks) == 1, "the landmark must be unique"
    return [k for k in heads if k != marks[0] and _holds(expr.relation, objs[k], objs[marks[0]])]


@pytest.mark.parametrize("split", ["val", "test", *PROBE_SPLITS])
def test_every_expression_has_exactly_one_referent(split: str) -> None:
    kinds = set()
    for i in range(60):
        rng = scene_rng(11, split, i)
        scene = sample_scene(rng, SETTINGS, split)
        for target, expr in expressions_for(scene, rng, SETTINGS, split):
            assert _referents(expr, scene.objects) == [target], (split, i, realise(expr))
            kinds.add(expr.relation)
    if split == "relational":
        assert None not in kinds and {"left of", "right of", "above", "below", "next to"} <= kinds
        assert "between" in kinds


def test_distractor_scenes_need_the_full_description() -> None:
    for i in range(30):
        rng = scene_rng(2, "distractors", i)
        scene = sample_scene(rng, SETTINGS, "distractors")
        t = scene.objects[0]
        for k in range(1, 4):
            o = scene.objects[k]
            assert [o.shape == t.shape, o.colour == t.colour, o.size == t.size].count(True) == 2


def test_relation_examples() -> None:
    a = _obj("circle", "red", (0, 0, 8, 8))
    b = _obj("square", "blue", (20, 0, 28, 8))
    c = _obj("star", "green", (10, 0, 18, 8))
    d = _obj("star", "green", (40, 0, 48, 8))
    objs = [a, b, c, d]
    from groundbench.synthetic.language import resolve

    assert resolve(Expression(Desc("circle"), "left of", Desc("square", "blue")), objs, GAP) == [0]
    assert resolve(Expression(Desc("square"), "between", Desc("star")), objs, GAP) == [1]
    assert resolve(Expression(Desc("star"), "next to", Desc("circle")), objs, GAP) == [2]
    assert resolve(Expression(Desc("circle"), "right of", Desc("square")), objs, GAP) == []
    # an ambiguous landmark refers to nothing
    assert resolve(Expression(Desc("circle"), "left of", Desc("star")), objs, GAP) == []


def test_realised_text_and_paraphrases() -> None:
    e = Expression(Desc("circle", None, None), "left of", Desc("square", "blue"))
    assert realise(e) == "the circle left of the blue square"
    assert (
        realise(Expression(Desc("square"), "between", Desc("star")))
        == "the square between the two stars"
    )
    p = paraphrases(Expression(Desc("square", "blue", "large")))
    assert p[0] == "the square that is large and blue"
    assert all("blue" in t and "square" in t for t in p)


def _mentions(text: str, colour: str, shape: str) -> bool:
    size = r"(?:(?:small|little|large|big) )?"
    return bool(
        re.search(rf"\b{colour} {shape}s?\b", text)
        or re.search(rf"\b{shape}s? (?:that|which) is (?:\w+ and )?{colour}\b", text)
        or re.search(rf"\b{size}{colour} {size}{shape}\b", text)
    )


def test_heldout_pairs_never_occur_in_training_captions(tiny_root: Path) -> None:
    import json

    captions = [
        json.loads(line)["text"] for line in (tiny_root / "train.jsonl").read_text().splitlines()
    ]
    assert len(captions) == 90
    for pair in SETTINGS.heldout_pairs:
        colour, shape = pair.split()
        assert not [t for t in captions if _mentions(t, colour, shape)], pair
    # ... and the probe does use them
    comp = (tiny_root / "compositional.jsonl").read_text()
    assert any(
        _mentions(json.loads(line)["text"], *p.split())
        for line in comp.splitlines()
        for p in SETTINGS.heldout_pairs
    )


def test_heldout_objects_never_appear_outside_the_compositional_split() -> None:
    held = set(SETTINGS.heldout_pairs)
    for split in ("train", "val", "test", "relational", "distractors", "small"):
        for i in range(40):
            scene = sample_scene(scene_rng(4, split, i), SETTINGS, split)
            assert not [o for o in scene.objects if f"{o.colour} {o.shape}" in held], (split, i)


def test_captions_mention_attributes_and_relations(tiny_root: Path) -> None:
    import json

    text = " ".join(
        json.loads(line)["text"] for line in (tiny_root / "train.jsonl").read_text().splitlines()
    )
    for word in (
        "left of",
        "above",
        "next to",
        "small",
        "large",
        *SETTINGS.colours,
        *SETTINGS.shapes,
    ):
        assert word in text, word
    assert ", " in text
