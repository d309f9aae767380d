"""What each split writes for one scene: training captions, or grounding records with tags.

Evaluation splits pick targets and build expressions that :func:`~.language.resolve` to
exactly their target. The probe splits whose scenes force a property on object 0
(``compositional``, ``distractors``, ``occlusion``, ``off_centre``, ``small``) refer to that
object; the others refer to distinct random objects. Tags are computed from the scene by the
same rules on every split (see ``docs/formats.md``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from groundbench.synthetic.language import (
    NEXT_TO_FRACTION,
    RELATIONS,
    Desc,
    Expression,
    between_holds,
    caption,
    paraphrases,
    realise,
    relation_holds,
    resolve,
)
from groundbench.synthetic.scene import Scene, SceneObject
from groundbench.synthetic.settings import Settings

FOCUS_SPLITS = frozenset({"compositional", "distractors", "occlusion", "off_centre", "small"})
#: A target whose visible box covers less than this fraction of the image is tagged ``small``.
SMALL_AREA_FRACTION = 0.05
#: A target with less than this share of its pixels visible is tagged ``occlusion``.
OCCLUDED_BELOW = 0.9
_EXPR_TRIES = 12


def captions_for(scene: Scene, rng: np.random.Generator, settings: Settings) -> list[str]:
    """Return ``captions_per_scene`` distinct-if-possible true captions of the scene."""
    gap = NEXT_TO_FRACTION * min(settings.height, settings.width)
    out: list[str] = []
    for _ in range(4 * settings.captions_per_scene):
        text = caption(scene.objects, rng, gap)
        if text not in out:
            out.append(text)
        if len(out) == settings.captions_per_scene:
            break
    return out


def expressions_for(
    scene: Scene, rng: np.random.Generator, settings: Settings, split: str
) -> list[tuple[int, Expression]]:
    """Return up to ``expressions_per_scene`` unambiguous ``(target index, expression)``.

    ``paraphrase`` returns a single source expression (its paraphrases come from
    :func:`~.language.paraphrases`).
    """
    gap = NEXT_TO_FRACTION * min(settings.height, settings.width)
    objs = scene.objects
    want = 1 if split == "paraphrase" else settings.expressions_per_scene
    if split in FOCUS_SPLITS:
        targets = [0] * want
    else:
        targets = [int(k) for k in rng.permutation(len(objs))]
    out: list[tuple[int, Expression]] = []
    seen: set[Expression] = set()
    for t in targets:
        for _ in range(_EXPR_TRIES):
            relational = split == "relational" or rng.random() < 0.4
            expr = _relational(objs, t, rng, gap, split) if relational else None
            expr = expr or (None if split == "relational" else _attribute(objs, t, rng, gap, split))
            if expr is not None and expr not in seen:
                seen.add(expr)
                out.append((t, expr))
                break
        if len(out) == want:
            break
    return out


def _attribute(objs, t: int, rng, gap: float, split: str) -> Expression | None:
    o = objs[t]
    options = [
        Desc(o.shape),
        Desc(o.shape, o.colour),
        Desc(o.shape, None, o.size),
        Desc(o.shape, o.colour, o.size),
    ]
    if split == "compositional":
        options = [d for d in options if d.colour]
    unique = [Expression(d) for d in options if resolve(Expression(d), objs, gap) == [t]]
    if not unique:
        return None
    # mostly the shortest unique description, sometimes an over-specified one
    return unique[0] if rng.random() < 0.6 else unique[int(rng.integers(len(unique)))]


def _relational(objs, t: int, rng, gap: float, split: str) -> Expression | None:
    o = objs[t]
    heads = (
        [Desc(o.shape, o.colour)]
        if split == "compositional"
        else [Desc(o.shape), Desc(o.shape, o.colour)]
    )
    cands: list[Expression] = []
    for j, m in enumerate(objs):
        if j == t:
            continue
        marks = [Expression(d) for d in _descs(m) if resolve(Expression(d), objs, gap) == [j]]
        if not marks:
            continue
        for rel in RELATIONS:
            if relation_holds(rel, o, m, gap):
                cands += [Expression(h, rel, marks[0].target) for h in heads]
    by_shape: dict[str, list[int]] = {}
    for k, m in enumerate(objs):
        by_shape.setdefault(m.shape, []).append(k)
    between = [
        Expression(h, "between", Desc(shape))
        for shape, ks in by_shape.items()
        if len(ks) == 2 and t not in ks and between_holds(o, objs[ks[0]], objs[ks[1]])
        for h in heads
    ]
    between = [e for e in between if resolve(e, objs, gap) == [t]]
    if between and rng.random() < 0.5:  # rare otherwise: it needs exactly two of a shape
        return between[int(rng.integers(len(between)))]
    valid = [e for e in cands if resolve(e, objs, gap) == [t]] + between
    # prefer expressions whose relation is needed: the head alone is ambiguous
    needed = [e for e in valid if len(resolve(Expression(e.target), objs, gap)) > 1]
    pool = needed or valid
    return pool[int(rng.integers(len(pool)))] if pool else None


def _descs(o: SceneObject) -> list[Desc]:
    return [
        Desc(o.shape),
        Desc(o.shape, o.colour),
        Desc(o.shape, None, o.size),
        Desc(o.shape, o.colour, o.size),
    ]


def tags_for(scene: Scene, t: int, expr: Expression, settings: Settings) -> list[str]:
    """Return the sorted tags of an expression about object ``t``."""
    o = scene.objects[t]
    x0, y0, x1, y1 = o.box
    cx, cy = settings.width / 2, settings.height / 2
    tags = {
        "relational" if expr.relation else "attribute",
        f"shape={o.shape}",
        f"colour={o.colour}",
    }
    if f"{o.colour} {o.shape}" in settings.heldout_pairs and expr.target.colour:
        tags.add("compositional")
    if sum(p.shape == o.shape for p in scene.objects) >= 2:
        tags.add("distractors")
    if o.visible_fraction < OCCLUDED_BELOW:
        tags.add("occlusion")
    if not (x0 <= cx <= x1 and y0 <= cy <= y1):
        tags.add("off-centre")
    if (x1 - x0) * (y1 - y0) < SMALL_AREA_FRACTION * settings.height * settings.width:
        tags.add("small")
    return sorted(tags)


def grounding_records(
    scene: Scene,
    rng: np.random.Generator,
    settings: Settings,
    split: str,
    scene_id: str,
    image: str,
) -> list[dict[str, Any]]:
    """Return the JSON-ready grounding records of one evaluation scene (one per phrase)."""
    from pycocotools import mask as mask_utils

    rles: dict[int, dict[str, Any]] = {}

    def record(
        rid: str, t: int, expr: Expression, text: str, extra_tags=(), meta=None
    ) -> dict[str, Any]:
        if t not in rles:
            m = np.asfortranarray((scene.label == t).astype(np.uint8))
            rle = mask_utils.encode(m)
            rles[t] = {
                "size": [int(v) for v in rle["size"]],
                "counts": rle["counts"].decode("ascii"),
            }
        return {
            "id": rid,
            "image": image,
            "width": settings.width,
            "height": settings.height,
            "text": text,
            "phrase": text,
            "span": [0, len(text)],
            "boxes": [list(scene.objects[t].box)],
            "mask": rles[t],
            "tags": sorted({*tags_for(scene, t, expr, settings), *extra_tags}),
            "meta": {"object": t, "relation": expr.relation, **(meta or {})},
        }

    out = []
    for e, (t, expr) in enumerate(expressions_for(scene, rng, settings, split)):
        rid = f"{scene_id}/e{e}"
        out.append(record(rid, t, expr, realise(expr, rng)))
        if split == "paraphrase":
            texts = paraphrases(expr)
            picks = rng.permutation(len(texts))[: settings.expressions_per_scene - 1]
            for p, i in enumerate(sorted(int(v) for v in picks)):
                out.append(
                    record(
                        f"{rid}/p{p + 1}", t, expr, texts[i], ("paraphrase",), {"source_id": rid}
                    )
                )
    return out
