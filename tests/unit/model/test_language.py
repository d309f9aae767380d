"""The generic text side: chunking, the vocabulary, learned word types."""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pytest

import groundbench.model as model_pkg
from groundbench.model.language import (
    CLOSED_CLASS,
    LOCATION_UNUSED,
    NO_KNOWN_WORD,
    NO_REFERENT,
    Location,
    Relation,
    Vocabulary,
    is_content,
    parse,
    reading_notes,
    tokenize,
)
from groundbench.synthetic.language import Desc, Expression, paraphrases, realise
from groundbench.synthetic.settings import Settings


@pytest.mark.parametrize(
    ("text", "phrases", "relations", "referent"),
    [
        (
            "the small yellow ring to the left of the purple star",
            [["small", "yellow", "ring"], ["purple", "star"]],
            [(0, "left", 1)],
            0,
        ),
        (
            "the red star is above the white ring",
            [["red", "star"], ["white", "ring"]],
            [(0, "above", 1)],
            0,
        ),
        (
            "a blue cross, a small heart and a yellow ring",
            [["blue", "cross"], ["small", "heart"], ["yellow", "ring"]],
            [],
            0,
        ),
        ("the ring which is large", [["large", "ring"]], [], 0),
        ("the square that is blue and large", [["blue", "large", "square"]], [], 0),
        (
            "under the yellow heart, the orange heart",
            [["yellow", "heart"], ["orange", "heart"]],
            [(1, "under", 0)],
            1,
        ),
        ("the circle between the two squares", [["circle"], ["squares"]], [(0, "between", 1)], 0),
        ("a man in a blue shirt", [["man"], ["blue", "shirt"]], [], 0),
        ("it", [], [], -1),
    ],
)
def test_parse(text, phrases, relations, referent):
    p = parse(text)
    assert [list(ph) for ph in p.phrases] == phrases
    assert [(r.target, r.word, r.landmark) for r in p.relations] == relations
    assert p.referent == referent


@pytest.mark.parametrize(
    ("text", "phrases", "relations", "referent", "locations"),
    [
        ("a black and white dog", [["black", "white", "dog"]], [], 0, []),
        ("orange and white cones", [["orange", "white", "cones"]], [], 0, []),
        (
            "a big black, white and brown dog",
            [["big", "black", "white", "brown", "dog"]],
            [],
            0,
            [],
        ),
        ("dogs and white cats", [["dogs"], ["white", "cats"]], [], 0, []),
        ("a man and a woman", [["man"], ["woman"]], [], 0, []),
        ("a t-shirt", [["t-shirt"]], [], 0, []),
        ("a child 's toy", [["child"], ["toy"]], [], 1, []),
        ("the child's red toy", [["child"], ["red", "toy"]], [], 1, []),
        ("man in red shirt on left", [["man"], ["red", "shirt"]], [], 0, [(0, "left", 1)]),
        ("the one behind the tall guy", [["one"], ["tall", "guy"]], [(0, "behind", 1)], 0, []),
        ("left one", [["one"]], [], 0, [(0, "left", 1)]),
        ("the one on the left", [["one"]], [], 0, [(0, "left", 1)]),
        ("second from right", [], [], -1, [(-1, "right", 2)]),
        ("far right", [], [], -1, [(-1, "right", 1)]),
        ("guy in front", [["guy"]], [], 0, [(0, "front", 1)]),
        ("guy in front of the car", [["guy"], ["car"]], [(0, "front", 1)], 0, []),
        ("the man in the middle", [["man"]], [], 0, [(0, "middle", 1)]),
        ("the ball on top of the table", [["ball"], ["table"]], [], 0, []),
        (
            "the man on the left next to the woman",
            [["man"], ["woman"]],
            [(0, "next", 1)],
            0,
            [(0, "left", 1)],
        ),
        (
            "a man in a red shirt next to a woman",
            [["man"], ["red", "shirt"], ["woman"]],
            [(0, "next", 2)],
            0,
            [],
        ),
        (
            "a dog or a cat near the tree",
            [["dog"], ["cat"], ["tree"]],
            [(1, "near", 2)],
            0,
            [],
        ),
        ("a dog runs .", [["dog"]], [], 0, []),
        ("a man stands left of a woman", [["man"], ["woman"]], [(0, "left", 1)], 0, []),
        ("a sports car", [["sports", "car"]], [], 0, []),
        ("a city bus", [["city", "bus"]], [], 0, []),
        ("the white dogs", [["white", "dogs"]], [], 0, []),
        ("circle on left", [["circle"]], [], 0, [(0, "left", 1)]),
        ("circle on right", [["circle"]], [], 0, [(0, "right", 1)]),
        ("the red ones", [["red", "ones"]], [], 0, []),
        ("one of the dogs", [["dogs"]], [], 0, []),
        ("the one circle", [["circle"]], [], 0, []),
    ],
)
def test_parse_real_phrases(text, phrases, relations, referent, locations):
    p = parse(text)
    assert [list(ph) for ph in p.phrases] == phrases
    assert [(r.target, r.word, r.landmark) for r in p.relations] == relations
    assert p.referent == referent
    assert [(loc.target, loc.side, loc.rank) for loc in p.locations] == locations


def test_hyphenated_words_and_possessives_are_tokens():
    assert tokenize("a child's t-shirt, a child 's toy") == [
        "a", "child", "'s", "t-shirt", ",", "a", "child", "'s", "toy",
    ]  # fmt: skip
    assert parse("the one on the left").location_of(0) == Location(0, "left", 1)


def test_reading_notes_count_what_the_model_cannot_follow():
    vocab = Vocabulary(["<unk>", "circle", "red"], [0, 1, 2])
    assert reading_notes("the red circle", vocab, 8) == frozenset()
    assert reading_notes("circle on left", vocab, 8) == {LOCATION_UNUSED}
    assert reading_notes("circle on right", vocab, 8) == {LOCATION_UNUSED}
    assert reading_notes("second from right", vocab, 8) == {NO_REFERENT, LOCATION_UNUSED}
    assert reading_notes("it", vocab, 8) == {NO_REFERENT}
    assert reading_notes("a zebra left of the circle", vocab, 8) == {NO_KNOWN_WORD}
    # the query keeps the phrase's last words: a known word cut off does not count
    assert reading_notes("red big tall zebra", vocab, 2) == {NO_KNOWN_WORD}


def _random_expressions(n: int, seed: int = 0) -> list[Expression]:
    s = Settings()
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):

        def desc():
            return Desc(
                str(rng.choice(s.shapes)),
                str(rng.choice(s.colours)) if rng.random() < 0.7 else None,
                str(rng.choice(["small", "large"])) if rng.random() < 0.5 else None,
            )

        rel = rng.choice(["left of", "right of", "above", "below", "next to", "between", "none"])
        out.append(
            Expression(
                desc(), None if rel == "none" else str(rel), None if rel == "none" else desc()
            )
        )
    return out


SYNONYMS = {"little": "small", "big": "large", "shape": None, "picture": None}


def _words(phrase) -> list[str]:
    return sorted(SYNONYMS.get(w, w) for w in phrase if SYNONYMS.get(w, w))


def test_every_paraphrase_parses_to_its_source_referent_and_landmark():
    vocab_free = 0
    for expr in _random_expressions(200):
        source = parse(realise(expr))
        want_ref = _words(source.phrases[source.referent])
        for text in paraphrases(expr):
            p = parse(text)
            assert _words(p.phrases[p.referent]) == want_ref, text
            if expr.relation is None:
                assert p.relation_of(p.referent) is None, text
            else:
                rel = p.relation_of(p.referent)
                assert rel is not None, text
                assert _words(p.phrases[rel.landmark]) == _words(
                    source.phrases[source.relation_of(source.referent).landmark]
                ), text
            vocab_free += 1
    assert vocab_free >= 600


def test_the_text_side_knows_no_generator_words():
    s = Settings()
    generator_words = set(s.colours) | set(s.shapes) | {"small", "large", "big", "little"}
    assert not generator_words & CLOSED_CLASS
    root = Path(model_pkg.__file__).parent
    for path in root.glob("*.py"):
        tree = ast.parse(path.read_text())
        modules = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
        modules |= {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        assert not any(m and m.startswith("groundbench.synthetic") for m in modules), path.name


def test_vocabulary_counts_open_class_words_only_and_reduces_plurals():
    vocab = Vocabulary.build(["the red ring left of a star"] * 5 + ["two rings"] * 2)
    assert vocab.words == ["<unk>", "red", "ring", "star"]
    assert vocab.id("rings") == vocab.id("ring") and vocab.id("zebra") == 0


def test_vocabulary_refuses_malformed_lists():
    with pytest.raises(ValueError, match="a vocabulary starts with '<unk>'"):
        Vocabulary(["red"], [0])
    with pytest.raises(ValueError, match="one non-negative type per word: 2 words, 1 types"):
        Vocabulary(["<unk>", "red"], [0])


def test_word_types_recover_slots_without_being_told():
    colours, shapes, sizes = (
        ["red", "blue", "green", "white"],
        ["ring", "star", "cross"],
        ["small", "large"],
    )
    held_out = {("red", "ring")}
    rng = np.random.default_rng(0)
    captions = []
    for _ in range(3000):
        c, s = str(rng.choice(colours)), str(rng.choice(shapes))
        if (c, s) in held_out:
            continue
        size = [str(rng.choice(sizes))] if rng.random() < 0.5 else []
        captions.append(" ".join(["a", *size, c, s]))
    vocab = Vocabulary.build(captions)
    groups = {}
    for w, t in zip(vocab.words[1:], vocab.types[1:], strict=True):
        groups.setdefault(t, set()).add(w)
    assert sorted(map(sorted, groups.values())) == sorted(
        [sorted(colours), sorted(shapes), sorted(sizes)]
    )
    assert vocab.types[vocab.id("red")] != vocab.types[vocab.id("ring")]  # never co-occur


def test_relation_lookup():
    p = parse("the ring left of the star")
    assert p.relation_of(0) == Relation(0, "left", 1) and p.relation_of(1) is None


def test_flickr30k_entities_phrases_recovered_on_the_fixtures():
    """The numbers docs/model.md gives: of the fixtures' annotated ``[/EN#…]`` phrases, how
    many the chunker returns exactly (same open-class words) and by their head noun."""
    from dataset_adapters.flickr30k_entities import parse_sentence
    from tests.fixtures.adapter_files import FLICKR_SENTENCES

    total = exact = head = 0
    for lines in FLICKR_SENTENCES.values():
        for line in lines:
            text, marked = parse_sentence(line, "fixture")
            chunks = parse(text).phrases
            for phrase in marked:
                words = tuple(w for w in tokenize(phrase.text) if is_content(w))
                total += 1
                exact += words in chunks
                head += bool(words) and any(c[-1] == words[-1] for c in chunks)
    assert (total, exact, head) == (17, 14, 15)
