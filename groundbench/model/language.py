"""The text side: a generic English chunker, the vocabulary, and word types learned from captions.

Nothing here knows the synthetic generator's words. A small closed-class English list
(determiners, numerals, copulas, relative pronouns, prepositions, conjunctions, pronouns)
and punctuation separate *noun phrases*: a noun phrase is a maximal run of the other words.
What lies in the gap between two noun phrases says how they relate:

* a relation word (``left``, ``above``, ``next``, ``between``…) gives a triple
  (target, relation, landmark): ``the ring left of the star``;
* only a copula or ``that is`` / ``which is`` makes the next phrase a predicate of the
  previous one, merged before its head noun (``the ring which is large`` → ``large ring``);
  ``and`` or a comma then continues the predicate;
* a relation before the first phrase makes that phrase the landmark and the next one the
  referent (``under the yellow heart, the orange heart``).

Word *types* group words that fill the same slot of a noun phrase (``red``/``blue``,
``circle``/``star``): two words are one type when they share a phrase far less often than
chance predicts and sit at the same distance from the phrase end. The reconstruction head
predicts a hidden word among its own type only, so the attention must say *where* the
object is, not *which kind* of word is missing.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

UNKNOWN = "<unk>"

RELATION_WORDS: tuple[str, ...] = (
    "left",
    "right",
    "above",
    "over",
    "below",
    "under",
    "beneath",
    "underneath",
    "next",
    "beside",
    "near",
    "between",
    "behind",
    "front",
)
"""Relation words, in a fixed order: the index of a word is its relation id."""

_COPULAS = frozenset("is are was were be been being am".split())
_RELATIVES = frozenset("that which who".split())
_CONTINUERS = frozenset(["and", ","])
CLOSED_CLASS: frozenset[str] = (
    frozenset(
        # determiners and quantifiers
        "a an the this that these those some any each every no another other others both all "
        "either neither such what which whose whom who one ones "
        # numerals
        "two three four five six seven eight nine ten several many few first second third "
        # prepositions and particles
        "of in on at by for from with without to into onto out off up down about after before "
        "against along among around across through toward towards within inside outside top "
        "bottom back side "
        # conjunctions, pronouns, adverbs that never name an object
        "and or but nor while as than then also very it its they them their he she his her him "
        "i me my we us our you your there here where when".split()
    )
    | _COPULAS
    | frozenset(RELATION_WORDS)
)

_TOKEN = re.compile(r"[a-z]+(?:'[a-z]+)?|\d+|[^\sa-z\d]")


def tokenize(text: str) -> list[str]:
    """Split ``text`` into lowercase words and punctuation marks.

    Example:
        >>> tokenize("The ring, left of a STAR.")
        ['the', 'ring', ',', 'left', 'of', 'a', 'star', '.']
    """
    return _TOKEN.findall(text.lower())


def is_content(token: str) -> bool:
    """Whether ``token`` can be part of a noun phrase (an open-class word)."""
    return token.isalpha() and token not in CLOSED_CLASS


@dataclass(frozen=True)
class Relation:
    """``phrases[target]`` is ``word`` (a :data:`RELATION_WORDS` entry) ``phrases[landmark]``."""

    target: int
    word: str
    landmark: int


@dataclass(frozen=True)
class Parse:
    """A chunked text.

    Attributes:
        phrases: noun phrases, each a tuple of words in text order (predicates merged in).
        relations: (target, relation, landmark) triples between phrases.
        referent: index of the phrase the text is about (the first one, unless a leading
            relation made the first phrase a landmark); -1 when there is no phrase.
    """

    phrases: tuple[tuple[str, ...], ...]
    relations: tuple[Relation, ...]
    referent: int

    def relation_of(self, phrase: int) -> Relation | None:
        """The first triple whose target is ``phrase``, or None."""
        return next((r for r in self.relations if r.target == phrase), None)


def _kind_of_gap(gap: Sequence[str]) -> tuple[str, str | None]:
    """Classify the tokens between two phrases: relation / predicate / continue / other."""
    rel = next((t for t in gap if t in RELATION_WORDS), None)
    if rel is not None:
        return "relation", rel
    words = [t for t in gap if t not in ("a", "an", "the")]
    if words and words[-1] in _COPULAS and all(t in _COPULAS | _RELATIVES for t in words):
        return "predicate", None
    if words and all(t in _CONTINUERS for t in words):
        return "continue", None
    return "other", None


def parse(text: str) -> Parse:
    """Chunk ``text`` into noun phrases and relation triples (see the module docstring).

    Example:
        >>> p = parse("the square that is blue and large, next to the two circles")
        >>> p.phrases, p.relations
        ((('blue', 'large', 'square'), ('circles',)), (Relation(target=0, word='next', landmark=1),))
        >>> parse("under the yellow heart, the orange heart").referent
        1
    """
    tokens = tokenize(text)
    runs: list[list[str]] = []
    gaps: list[list[str]] = [[]]  # gaps[k] precedes runs[k]
    for t in tokens:
        if is_content(t):
            if gaps[-1] or not runs:
                runs.append([])
                gaps.append([])
            runs[-1].append(t)
        else:
            gaps[-1].append(t)
    # gaps[0] precedes runs[0]; gaps[k] (k >= 1) follows runs[k - 1]
    phrases: list[list[str]] = []
    relations: list[Relation] = []
    leading, lead_rel = _kind_of_gap(gaps[0]) if runs else ("other", None)
    in_predicate = False
    for k, run in enumerate(runs):
        kind, rel = _kind_of_gap(gaps[k]) if k > 0 else ("other", None)
        if k > 0 and (kind == "predicate" or (kind == "continue" and in_predicate)):
            head = phrases[-1]
            phrases[-1] = head[:-1] + run + head[-1:]  # modifiers go before the head noun
            in_predicate = True
            continue
        in_predicate = False
        phrases.append(list(run))
        if kind == "relation" and len(phrases) > 1:
            relations.append(Relation(len(phrases) - 2, rel, len(phrases) - 1))
    referent = 0 if phrases else -1
    if leading == "relation" and len(phrases) > 1:
        relations.insert(0, Relation(1, lead_rel, 0))
        referent = 1
    return Parse(tuple(tuple(p) for p in phrases), tuple(relations), referent)


class Vocabulary:
    """Open-class words with their learned types; id 0 is ``<unk>`` (a zero embedding).

    Args:
        words: ``<unk>`` first, then the words.
        types: one type id per word (``types[0]`` is unused and 0).

    Example:
        >>> v = Vocabulary(["<unk>", "circle", "red"], [0, 1, 2])
        >>> v.id("circles"), v.id("red"), v.id("zebra")
        (1, 2, 0)
    """

    def __init__(self, words: Sequence[str], types: Sequence[int]) -> None:
        if not words or words[0] != UNKNOWN:
            raise ValueError(f"a vocabulary starts with {UNKNOWN!r}")
        if len(set(words)) != len(words):
            raise ValueError("a vocabulary must not repeat a word")
        if len(types) != len(words) or any(t < 0 for t in types):
            raise ValueError(
                f"a vocabulary needs one non-negative type per word: {len(words)} words, "
                f"{len(types)} types"
            )
        self.words = list(words)
        self.types = [int(t) for t in types]
        self._ids = {w: i for i, w in enumerate(self.words)}

    def __len__(self) -> int:
        return len(self.words)

    def id(self, word: str) -> int:
        """Return ``word``'s id; a plural falls back to its singular; unseen words give 0."""
        if word in self._ids:
            return self._ids[word]
        for cut in ("s", "es"):
            if word.endswith(cut) and word[: -len(cut)] in self._ids:
                return self._ids[word[: -len(cut)]]
        return 0

    def ids(self, words: Iterable[str]) -> list[int]:
        """Return the id of each word."""
        return [self.id(w) for w in words]

    @classmethod
    def build(cls, texts: Iterable[str], *, min_count: int = 5) -> Vocabulary:
        """Collect open-class words seen ``min_count`` times in ``texts`` and learn their types.

        Example:
            >>> caps = [f"a {c} {s}" for c in ("red", "blue") for s in ("ring", "star")] * 20
            >>> v = Vocabulary.build(caps)
            >>> v.words, v.types
            (['<unk>', 'blue', 'red', 'ring', 'star'], [0, 1, 1, 2, 2])
        """
        parses = [parse(t) for t in texts]
        counts = Counter(w for p in parses for phrase in p.phrases for w in phrase)
        words = [UNKNOWN, *sorted(w for w, c in counts.items() if c >= min_count)]
        provisional = cls(words, [0] * len(words))
        phrases = [provisional.ids(ph) for p in parses for ph in p.phrases]
        return cls(words, learn_word_types(phrases, len(words)))


def learn_word_types(
    phrases: Sequence[Sequence[int]],
    vocab_size: int,
    *,
    exclusion: float = 0.05,
    min_expected: float = 5.0,
    max_position_l1: float = 0.5,
    positions: int = 4,
) -> list[int]:
    """Group words that fill the same slot of a noun phrase into types.

    Words ``u`` and ``v`` are linked when (a) they share a phrase less than ``exclusion``
    times as often as chance predicts (``n_u n_v / n_phrases``, at least ``min_expected``),
    and (b) their histograms of position from the phrase end (0 = last word; positions past
    ``positions - 1`` pooled) differ by less than ``max_position_l1`` in L1. Types are the
    connected components of the links; words linked to no other word share one open type,
    so no word is trivially predictable. Type 0 is that open type.

    Args:
        phrases: word ids per noun phrase (0 = unknown, ignored).
        vocab_size: number of ids.

    Returns:
        A type id per word id (index 0, ``<unk>``, gets 0).
    """
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    rows, cols, pos = [], [], []
    for r, phrase in enumerate(phrases):
        n = len(phrase)
        seen = set()
        for k, w in enumerate(phrase):
            if w and w not in seen:
                seen.add(w)
                rows.append(r)
                cols.append(w)
                pos.append(min(n - 1 - k, positions - 1))
    types = [0] * vocab_size
    if not rows:
        return types
    incidence = coo_matrix(
        (np.ones(len(rows)), (rows, cols)), shape=(len(phrases), vocab_size)
    ).tocsr()
    together = (incidence.T @ incidence).toarray()  # V V phrases shared
    count = np.diag(together).copy()
    hist = np.zeros((vocab_size, positions))
    np.add.at(hist, (np.asarray(cols), np.asarray(pos)), 1.0)
    hist /= np.maximum(hist.sum(1, keepdims=True), 1.0)
    expected = np.outer(count, count) / max(len(phrases), 1)
    l1 = np.abs(hist[:, None, :] - hist[None, :, :]).sum(-1)
    link = (expected >= min_expected) & (together < exclusion * expected) & (l1 < max_position_l1)
    np.fill_diagonal(link, False)
    link[0, :] = link[:, 0] = False
    _, component = connected_components(link, directed=False)
    sizes = np.bincount(component)
    next_type, seen_types = 1, {}
    for w in range(1, vocab_size):
        c = component[w]
        if sizes[c] < 2:
            continue
        if c not in seen_types:
            seen_types[c] = next_type
            next_type += 1
        types[w] = seen_types[c]
    return types
