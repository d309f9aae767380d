"""The text side: a generic English chunker, the vocabulary, and word types learned from captions.

Nothing here knows the synthetic generator's words. A small closed-class English list
(determiners, numerals, copulas, relative pronouns, prepositions, conjunctions, pronouns)
and punctuation separate *noun phrases*: a noun phrase is a maximal run of the other words
(hyphenated words such as ``t-shirt`` are one word; the last word is the head noun).
What lies in the gap between two noun phrases says how they relate:

* a relation word (``left``, ``above``, ``next``, ``between``…) followed by a phrase gives
  a triple (target, relation, landmark): ``the ring left of the star``; ``left``, ``right``
  and ``front`` need ``of`` to take a landmark (``to the left of``, ``in front of``);
* only a copula or ``that is`` / ``which is`` makes the next phrase a predicate of the
  previous one, merged before its head noun (``the ring which is large`` → ``large ring``);
  ``and`` or a comma then continues the predicate;
* ``and`` or a comma with no determiner, before a phrase of two words or more, joins
  coordinated modifiers (``a black and white dog`` → ``black white dog``); the words before
  it must not look plural (``dogs and white cats`` stays two phrases);
* ``'s`` makes the previous phrase a possessor: ``a child 's toy`` is about the toy;
* a relation before the first phrase makes that phrase the landmark and the next one the
  referent (``under the yellow heart, the orange heart``).

Verbs are open-class words too, so one that follows its subject joins the subject's run;
after a singular determiner (``a dog runs``) a last word in ``-s`` is read as a verb and left
out of the phrase.

A location word with no landmark (``on the left``, ``far right``, ``in front``, ``second
from right``, ``left one``, or a relation word that ends the text) is an *absolute location*:
a :class:`Location` against the image frame, of the phrase it follows, or of the first
phrase when it comes first. A location or a relation after an *attribute* (a phrase after a
single preposition such as ``in`` or ``with``) belongs to the phrase the attribute
describes: ``man in red shirt on left`` and ``man in red shirt left of the car`` are about
the man. ``one`` / ``ones`` not followed by a noun or ``of`` is a
head noun (``the one behind the tall guy``). The referent is the phrase that holds the
text's head: the first phrase, unless a leading relation makes it a landmark or ``'s``
makes it a possessor.

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

from groundbench.model.word_types import learn_word_types

UNKNOWN = "<unk>"
#: Version of the chunking rules, part of a checkpoint method's fingerprint: raise it whenever
#: a change moves any parse, so a cached or published evaluation never mixes two readings.
PARSE_RULES = 2

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

FRAME_SIDES: dict[str, str] = {
    "left": "left",
    "leftmost": "left",
    "right": "right",
    "rightmost": "right",
    "top": "top",
    "above": "top",
    "over": "top",
    "bottom": "bottom",
    "below": "bottom",
    "under": "bottom",
    "beneath": "bottom",
    "underneath": "bottom",
    "middle": "middle",
    "center": "middle",
    "centre": "middle",
    "front": "front",
    "back": "back",
    "behind": "back",
}
"""Word → the side of the image frame it names when it has no landmark."""

_NEEDS_OF = frozenset(["left", "right", "front"])  # relative only as "left of", "in front of"
_PART_OF = frozenset("top bottom middle center centre back".split())  # "on top of": no frame side
_ORDINALS = {"first": 1, "second": 2, "third": 3, "fourth": 4, "fifth": 5}
_COPULAS = frozenset("is are was were be been being am".split())
_RELATIVES = frozenset("that which who".split())
_CONTINUERS = frozenset(["and", ","])
_DETERMINERS = frozenset("a an the this that these those".split())
_POSSESSIVE = "'s"
_ATTRIBUTE_PREPOSITIONS = frozenset("in with without of on at from by".split())
_HEAD_PRONOUNS = frozenset(["one", "ones"])
CLOSED_CLASS: frozenset[str] = (
    frozenset(
        # determiners and quantifiers
        "a an the this that these those some any each every no another other others both all "
        "either neither such what which whose whom who one ones "
        # numerals
        "two three four five six seven eight nine ten several many few first second third "
        "fourth fifth "
        # prepositions and particles
        "of in on at by for from with without to into onto out off up down about after before "
        "against along among around across through toward towards within inside outside top "
        "bottom back side far "
        # conjunctions, pronouns, adverbs that never name an object
        "and or but nor while as than then also very it its they them their he she his her him "
        "i me my we us our you your there here where when".split()
    )
    | _COPULAS
    | frozenset(RELATION_WORDS)
    | frozenset(FRAME_SIDES)
)

_TOKEN = re.compile(r"[a-z]+(?:-[a-z]+)*(?:'[a-z]+)?|'[a-z]+|\d+|[^\sa-z\d]")
_WORD = re.compile(r"[a-z]+(?:-[a-z]+)*")


def tokenize(text: str) -> list[str]:
    """Split ``text`` into lowercase words and punctuation marks; ``'s`` is a token of its own.

    Example:
        >>> tokenize("The ring, left of a STAR.")
        ['the', 'ring', ',', 'left', 'of', 'a', 'star', '.']
        >>> tokenize("a child's t-shirt")
        ['a', 'child', "'s", 't-shirt']
    """
    out = []
    for t in _TOKEN.findall(text.lower()):
        if t.endswith(_POSSESSIVE) and len(t) > 2:
            out += [t[:-2], _POSSESSIVE]
        else:
            out.append(t)
    return out


def is_content(token: str) -> bool:
    """Whether ``token`` can be part of a noun phrase (an open-class word)."""
    return bool(_WORD.fullmatch(token)) and token not in CLOSED_CLASS


@dataclass(frozen=True)
class Relation:
    """``phrases[target]`` is ``word`` (a :data:`RELATION_WORDS` entry) ``phrases[landmark]``."""

    target: int
    word: str
    landmark: int


@dataclass(frozen=True)
class Location:
    """``phrases[target]`` is at ``side`` of the image frame (a :data:`FRAME_SIDES` value).

    ``rank`` counts from that side (``second from right`` → 2; 1 otherwise); ``target`` is
    -1 when the text names no phrase (``second from right``).
    """

    target: int
    side: str
    rank: int = 1


@dataclass(frozen=True)
class Parse:
    """A chunked text.

    Attributes:
        phrases: noun phrases, each a tuple of words in text order (predicates merged in).
        relations: (target, relation, landmark) triples between phrases.
        referent: index of the phrase that holds the text's head (the first one, unless a
            leading relation made it a landmark or ``'s`` a possessor); -1 when there is no
            phrase.
        locations: absolute locations against the image frame.
    """

    phrases: tuple[tuple[str, ...], ...]
    relations: tuple[Relation, ...]
    referent: int
    locations: tuple[Location, ...] = ()

    def relation_of(self, phrase: int) -> Relation | None:
        """The first triple whose target is ``phrase``, or None."""
        return next((r for r in self.relations if r.target == phrase), None)

    def location_of(self, phrase: int) -> Location | None:
        """The first absolute location of ``phrase``, or None."""
        return next((loc for loc in self.locations if loc.target == phrase), None)


def _contents(tokens: Sequence[str]) -> list[bool]:
    """Which tokens are content words; ``one``/``ones`` are when no noun or ``of`` follows."""
    out = [is_content(t) for t in tokens]
    for k in range(len(tokens) - 1, -1, -1):  # right to left: "ones" may follow "one"
        last = k + 1 == len(tokens)
        if tokens[k] in _HEAD_PRONOUNS and (last or not (out[k + 1] or tokens[k + 1] == "of")):
            out[k] = True
    return out


def _split_gap(gap: Sequence[str], followed: bool) -> tuple[str | None, list[tuple[str, int]]]:
    """Return the gap's relation word (one that takes the next phrase as landmark) and its
    absolute locations ``(side, rank)``."""
    relation, locations = None, []
    for k, t in enumerate(gap):
        takes_landmark = followed and (t not in _NEEDS_OF or "of" in gap[k + 1 : k + 3])
        if t in RELATION_WORDS and takes_landmark and relation is None:
            relation = t
        elif t in FRAME_SIDES and not (t in _PART_OF and gap[k + 1 : k + 2] == ["of"]):
            rank = _ORDINALS.get(gap[k - 2], 1) if k >= 2 and gap[k - 1] == "from" else 1
            locations.append((FRAME_SIDES[t], rank))
    return relation, locations


def _is_attribute_gap(gap: Sequence[str]) -> bool:
    """Whether the gap makes the next phrase an attribute of the previous one: a single
    preposition such as ``in`` or ``with`` (``man in red shirt``, ``dog with a ball``)."""
    words = [t for t in gap if t not in _DETERMINERS]
    return len(words) == 1 and words[0] in _ATTRIBUTE_PREPOSITIONS


def _kind_of_gap(gap: Sequence[str], relation: str | None) -> str:
    """Classify the tokens between two phrases: relation / predicate / continue / coordinate /
    possessive / other."""
    if relation is not None:
        return "relation"
    if list(gap) == [_POSSESSIVE]:
        return "possessive"
    words = [t for t in gap if t not in ("a", "an", "the")]
    if words and words[-1] in _COPULAS and all(t in _COPULAS | _RELATIVES for t in words):
        return "predicate"
    if words and all(t in _CONTINUERS for t in words):
        return "continue" if len(words) < len(gap) else "coordinate"
    return "other"


def parse(text: str) -> Parse:
    """Chunk ``text`` into noun phrases, relation triples and absolute locations (see the
    module docstring).

    Example:
        >>> p = parse("the square that is blue and large, next to the two circles")
        >>> p.phrases, p.relations
        ((('blue', 'large', 'square'), ('circles',)), (Relation(target=0, word='next', landmark=1),))
        >>> parse("under the yellow heart, the orange heart").referent
        1
        >>> parse("man in red shirt on left").locations
        (Location(target=0, side='left', rank=1),)
    """
    tokens = tokenize(text)
    runs: list[list[str]] = []
    gaps: list[list[str]] = [[]]  # gaps[k] precedes runs[k]
    for t, content in zip(tokens, _contents(tokens), strict=True):
        if content:
            if gaps[-1] or not runs:
                runs.append([])
                gaps.append([])
            runs[-1].append(t)
        else:
            gaps[-1].append(t)
    # gaps[0] precedes runs[0]; gaps[k] (k >= 1) follows runs[k - 1]; gaps[-1] ends the text
    _split_verbs(runs, gaps)
    phrases: list[list[str]] = []
    relations: list[Relation] = []
    owner: list[int] = []  # per phrase: the phrase it describes (itself, or its attribute's owner)
    lead_rel, lead_locs = _split_gap(gaps[0], bool(runs))
    locations = [Location(0 if runs else -1, side, rank) for side, rank in lead_locs]
    referent = 0
    in_predicate = False
    for k, run in enumerate(runs):
        rel, locs = _split_gap(gaps[k], True) if k > 0 else (None, [])
        kind = _kind_of_gap(gaps[k], rel) if k > 0 else "first"
        locations += [Location(owner[-1], side, rank) for side, rank in locs]
        if kind == "predicate" or (kind in ("continue", "coordinate") and in_predicate):
            head = phrases[-1]
            phrases[-1] = head[:-1] + run + head[-1:]  # modifiers go before the head noun
            in_predicate = True
            continue
        in_predicate = False
        if kind == "coordinate" and _coordinates(phrases[-1], runs[k:], gaps[k + 1 :]):
            phrases[-1] = phrases[-1] + run  # modifiers joined by "and" / ","
            continue
        phrases.append(list(run))
        here = len(phrases) - 1
        attribute = kind == "other" and _is_attribute_gap(gaps[k])
        owner.append(owner[-1] if attribute else here)
        if kind == "relation":
            relations.append(Relation(owner[here - 1], rel, here))
        if kind == "possessive" and referent == here - 1:
            referent = here
    if runs:
        locations += [Location(owner[-1], s, r) for s, r in _split_gap(gaps[len(runs)], False)[1]]
    if lead_rel is not None and len(phrases) > 1:
        relations.insert(0, Relation(1, lead_rel, 0))
        referent = 1
    return Parse(
        tuple(tuple(p) for p in phrases),
        tuple(relations),
        referent if phrases else -1,
        tuple(locations),
    )


def _split_verbs(runs: list[list[str]], gaps: list[list[str]]) -> None:
    """Move a verb that ends a singular noun phrase into the gap after it, in place.

    After ``a``, ``an``, ``another``, ``each`` or ``every`` the head noun is singular, so a
    last word ending in ``s`` (not ``ss``, ``us``, ``is``) of a run of two words or more is
    read as a verb: ``a dog runs`` → ``dog``, ``a red shirt stands`` → ``red shirt``.
    """
    for k, run in enumerate(runs):
        last = run[-1]
        if (
            len(run) >= 2
            and gaps[k][-1:] in (["a"], ["an"], ["another"], ["each"], ["every"])
            and last.endswith("s")
            and not last.endswith(("ss", "us", "is"))
        ):
            gaps[k + 1].insert(0, run.pop())


def _coordinates(
    before: Sequence[str], runs: Sequence[Sequence[str]], after: Sequence[Sequence[str]]
) -> bool:
    """Whether ``before``, a bare ``and`` / comma, then ``runs[0]`` are coordinated modifiers.

    ``after[j]`` is the gap that follows ``runs[j]``. The chain of runs joined by bare ``and``
    / commas must end in a run of two words or more, and no word before that run may look
    plural (end in ``s`` but not ``ss``).
    """
    plural = lambda w: w.endswith("s") and not w.endswith("ss")  # noqa: E731
    if plural(before[-1]):
        return False
    for j, run in enumerate(runs):
        if len(run) >= 2:
            return True
        if plural(run[-1]) or j + 1 >= len(runs) or _kind_of_gap(after[j], None) != "coordinate":
            return False
    return False


NO_REFERENT = "text:no-referent"
"""Note on a phrase in which the chunker found no noun phrase: the map is the image's alone."""
NO_KNOWN_WORD = "text:no-known-word"
"""Note on a phrase whose referent has no vocabulary word: the query is the learned bias."""
LOCATION_UNUSED = "text:location-unused"
"""Note on a phrase whose referent has an absolute location, which the model cannot use."""


def reading_notes(text: str, vocab: Vocabulary, words: int) -> frozenset[str]:
    """What the read-out of ``text`` cannot follow: :data:`NO_REFERENT`, :data:`NO_KNOWN_WORD`,
    :data:`LOCATION_UNUSED` (``words``: the query's length, the last words of the phrase).

    Example:
        >>> v = Vocabulary(["<unk>", "circle"], [0, 0])
        >>> sorted(reading_notes("circle on left", v, 8)), sorted(reading_notes("far right", v, 8))
        (['text:location-unused'], ['text:location-unused', 'text:no-referent'])
    """
    p = parse(text)
    notes = set()
    if p.referent < 0:
        notes.add(NO_REFERENT)
    elif not any(vocab.ids(p.phrases[p.referent])[-words:]):
        notes.add(NO_KNOWN_WORD)
    if any(loc.target in (p.referent, -1) for loc in p.locations):
        notes.add(LOCATION_UNUSED)
    return frozenset(notes)


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
