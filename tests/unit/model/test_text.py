from __future__ import annotations

import pytest
import torch

from groundbench.model.text import (
    MASK_ID,
    TextEncoder,
    Vocabulary,
    phrase_groups,
    token_indices_in_span,
    tokenize,
    word_class,
)


def test_tokenize_keeps_spans_of_the_original_text():
    text = "The Red circle, left of it"
    words, spans = tokenize(text)
    assert words == ["the", "red", "circle", ",", "left", "of", "it"]
    assert [text[s:e].lower() for s, e in spans] == words


def test_span_to_tokens():
    text = "a small red circle above a square"
    _, spans = tokenize(text)
    start = text.index("small red circle")
    assert token_indices_in_span(spans, (start, start + len("small red circle"))) == [1, 2, 3]


def test_vocabulary_is_sorted_with_specials_first():
    vocab = Vocabulary.build(["b a", "c a"])
    assert vocab.words == ["<pad>", "<unk>", "<mask>", "a", "b", "c"]
    assert vocab.encode("a z c", max_words=2) == [3, 1]
    assert vocab.id("<mask>") == MASK_ID
    with pytest.raises(ValueError, match="must start with"):
        Vocabulary(["a", "b"])


def test_word_classes_and_groups():
    assert [word_class(w) for w in ("red", "left", "the", ",")] == [
        "content",
        "relation",
        "other",
        "other",
    ]
    words = "a blue square between a red circle and a green ring".split()
    assert phrase_groups(words) == [0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2]


def test_text_encoder_shapes():
    enc = TextEncoder(10, 16, 2, 1, 8, 2.0)
    ids = torch.tensor([[3, 4, 0]])
    assert enc(ids, ids == 0).shape == (1, 3, 16)
