"""Language: descriptions, spatial relations, referring expressions, captions, paraphrases.

An :class:`Expression` is structured (target description, optional relation and landmark),
so it can be *resolved* against a scene — :func:`resolve` returns every object it fits —
and realised as text in a canonical or a paraphrased wording. An expression is kept only
when it resolves to exactly its target (unambiguous by construction).

Relations are predicates on the visible boxes ``[x0, y0, x1, y1]``:

- ``left of`` / ``right of``: the boxes are separated along x (``a.x1 <= b.x0``).
- ``above`` / ``below``: separated along y (``a.y1 <= b.y0``).
- ``next to``: the gap between the boxes is at most :data:`NEXT_TO_FRACTION` of the
  shorter image side (on both axes).
- ``between``: the target's centre lies strictly between the two landmarks' boxes along x
  (or along y) and within their joint extent on the other axis.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from groundbench.synthetic.scene import SceneObject

RELATIONS: tuple[str, ...] = ("left of", "right of", "above", "below", "next to")
NEXT_TO_FRACTION = 0.1
_SIZE_WORDS = {"small": ("small", "little"), "large": ("large", "big")}
_REL_WORDS = {
    "left of": ("left of", "to the left of"),
    "right of": ("right of", "to the right of"),
    "above": ("above", "over"),
    "below": ("below", "under"),
    "next to": ("next to", "beside"),
    "between": ("between",),
}


@dataclass(frozen=True)
class Desc:
    """A noun phrase: shape noun plus optional size and colour words."""

    shape: str
    colour: str | None = None
    size: str | None = None

    def fits(self, obj: SceneObject) -> bool:
        """Whether ``obj`` has every attribute this description names."""
        return (
            obj.shape == self.shape
            and (self.colour is None or obj.colour == self.colour)
            and (self.size is None or obj.size == self.size)
        )

    def words(self, size_word: int = 0) -> str:
        """``"large red circle"`` (``size_word`` picks the size synonym)."""
        parts = [_SIZE_WORDS[self.size][size_word]] if self.size else []
        return " ".join([*parts, *([self.colour] if self.colour else []), self.shape])


@dataclass(frozen=True)
class Expression:
    """A referring expression: a target description, optionally related to landmark(s).

    ``relation == "between"`` means "between the two ``landmark.shape``\\ s" (exactly two
    objects fit ``landmark``).
    """

    target: Desc
    relation: str | None = None
    landmark: Desc | None = None


def relation_holds(relation: str, a: SceneObject, b: SceneObject, gap_px: float) -> bool:
    """Whether ``a`` is ``relation`` ``b`` (a binary relation of :data:`RELATIONS`)."""
    ax0, ay0, ax1, ay1 = a.box
    bx0, by0, bx1, by1 = b.box
    if relation == "left of":
        return ax1 <= bx0
    if relation == "right of":
        return bx1 <= ax0
    if relation == "above":
        return ay1 <= by0
    if relation == "below":
        return by1 <= ay0
    if relation == "next to":
        return max(bx0 - ax1, ax0 - bx1) <= gap_px and max(by0 - ay1, ay0 - by1) <= gap_px
    raise ValueError(f"unknown relation {relation!r}")


def between_holds(a: SceneObject, b: SceneObject, c: SceneObject) -> bool:
    """Whether ``a``'s centre lies between ``b`` and ``c`` (see the module docstring)."""
    x, y = a.centre
    (b0, b1, b2, b3), (c0, c1, c2, c3) = b.box, c.box
    on_x = (b2 < x < c0 or c2 < x < b0) and min(b1, c1) <= y <= max(b3, c3)
    on_y = (b3 < y < c1 or c3 < y < b1) and min(b0, c0) <= x <= max(b2, c2)
    return on_x or on_y


def resolve(expr: Expression, objects: list[SceneObject], gap_px: float) -> list[int]:
    """Return the indices of every object ``expr`` can refer to in the scene.

    A relational expression whose landmark is not unique (not exactly two for ``between``)
    refers to nothing: the listener could not tell which landmark is meant.
    """
    cands = [k for k, o in enumerate(objects) if expr.target.fits(o)]
    if expr.relation is None:
        return cands
    marks = [k for k, o in enumerate(objects) if expr.landmark.fits(o)]
    if expr.relation == "between":
        if len(marks) != 2:
            return []
        b, c = objects[marks[0]], objects[marks[1]]
        return [k for k in cands if k not in marks and between_holds(objects[k], b, c)]
    if len(marks) != 1:
        return []
    m = objects[marks[0]]
    return [
        k for k in cands if k != marks[0] and relation_holds(expr.relation, objects[k], m, gap_px)
    ]


def realise(expr: Expression, rng: np.random.Generator | None = None) -> str:
    """Write ``expr`` in the canonical wording (``rng`` may pick size/relation synonyms).

    Example:
        >>> realise(Expression(Desc("circle"), "left of", Desc("square", "blue")))
        'the circle left of the blue square'
    """
    pick = (lambda n: int(rng.integers(n))) if rng is not None else (lambda n: 0)
    text = "the " + expr.target.words(pick(2))
    if expr.relation == "between":
        return f"{text} between the two {expr.landmark.shape}s"
    if expr.relation:
        words = _REL_WORDS[expr.relation]
        text += f" {words[pick(len(words))]} the {expr.landmark.words(pick(2))}"
    return text


def paraphrases(expr: Expression) -> list[str]:
    """Return reworded versions of ``expr`` (relative clauses, reordering, synonyms).

    None of these templates is used for training captions, so the ``paraphrase`` split tests
    wordings the model has not seen; the vocabulary stays the training vocabulary.

    Example:
        >>> paraphrases(Expression(Desc("square", "blue")))[0]
        'the square that is blue'
    """
    t = expr.target
    adjs = [w for w in (_SIZE_WORDS[t.size][0] if t.size else None, t.colour) if w]
    if adjs:
        out = [
            f"the {t.shape} that is {' and '.join(adjs)}",
            f"the {t.shape} which is {' and '.join(adjs)}",
        ]
    else:
        out = [f"the {t.shape} shape", f"the one {t.shape}"]
    if expr.relation is None:
        out.append(f"the {t.words(1)} in the picture")
        return out
    if expr.relation == "between":
        land = f"the two {expr.landmark.shape}s"
    else:
        land = f"the {expr.landmark.words(1)}"
    rel = _REL_WORDS[expr.relation][-1]
    head = out[0] if adjs else f"the {t.shape}"
    return [
        f"{head} {rel} {land}",
        f"{rel} {land}, the {t.words(1)}",
        f"the {t.words(1)} that is {rel} {land}",
    ]


def caption(objects: list[SceneObject], rng: np.random.Generator, gap_px: float) -> str:
    """Write one true training caption about the scene (with attributes and relations).

    Forms: "a large green circle next to a small purple square", "the red star is above
    the white ring", "a blue cross, a small heart and a yellow ring", or a referring
    expression "the circle left of the blue square".
    """
    form = int(rng.integers(4))
    pair = None
    if form != 2:
        # the first ordered pair, in a random order, with a relation that holds
        n = len(objects)
        for flat in rng.permutation(n * n):
            i, j = divmod(int(flat), n)
            holds = [
                r for r in RELATIONS if i != j and relation_holds(r, objects[i], objects[j], gap_px)
            ]
            if holds:
                pair = (i, j, holds[int(rng.integers(len(holds)))])
                break
    if pair is None:
        k = min(len(objects), int(rng.integers(2, 5)))
        chosen = rng.choice(len(objects), size=k, replace=False)
        parts = [
            f"a {_random_desc(objects[i], rng).words(int(rng.integers(2)))}" for i in sorted(chosen)
        ]
        return ", ".join(parts[:-1]) + " and " + parts[-1]
    i, j, r = pair
    a, b = _random_desc(objects[i], rng), _random_desc(objects[j], rng)
    rel = _REL_WORDS[r][int(rng.integers(len(_REL_WORDS[r])))]
    sa, sb = (int(v) for v in rng.integers(2, size=2))
    if form == 0:
        return f"a {a.words(sa)} {rel} a {b.words(sb)}"
    if form == 1:
        return f"the {a.words(sa)} is {rel} the {b.words(sb)}"
    return realise(Expression(a, r, b), rng)


def _random_desc(obj: SceneObject, rng: np.random.Generator) -> Desc:
    use = rng.random(2) < (0.8, 0.5)  # colour often, size half the time
    return Desc(obj.shape, obj.colour if use[0] else None, obj.size if use[1] else None)
