"""Word types computed sparsely equal the dense V × V computation they replaced."""

from __future__ import annotations

import numpy as np
import pytest

from groundbench.model.language import Vocabulary, parse
from groundbench.model.word_types import learn_word_types


def _dense_word_types(phrases, vocab_size, exclusion=0.05, min_expected=5.0, max_l1=0.5, P=4):
    """The V × V reference of learn_word_types, as first written (dense co-occurrence)."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    rows, cols, pos = [], [], []
    for r, phrase in enumerate(phrases):
        seen = set()
        for k, w in enumerate(phrase):
            if w and w not in seen:
                seen.add(w)
                rows.append(r)
                cols.append(w)
                pos.append(min(len(phrase) - 1 - k, P - 1))
    types = [0] * vocab_size
    if not rows:
        return types
    incidence = coo_matrix(
        (np.ones(len(rows)), (rows, cols)), shape=(len(phrases), vocab_size)
    ).tocsr()
    together = (incidence.T @ incidence).toarray()
    count = np.diag(together).copy()
    hist = np.zeros((vocab_size, P))
    np.add.at(hist, (np.asarray(cols), np.asarray(pos)), 1.0)
    hist /= np.maximum(hist.sum(1, keepdims=True), 1.0)
    expected = np.outer(count, count) / max(len(phrases), 1)
    l1 = np.abs(hist[:, None, :] - hist[None, :, :]).sum(-1)
    link = (expected >= min_expected) & (together < exclusion * expected) & (l1 < max_l1)
    np.fill_diagonal(link, False)
    link[0, :] = link[:, 0] = False
    _, component = connected_components(link, directed=False)
    sizes = np.bincount(component)
    seen_types = {}
    for w in range(1, vocab_size):
        if sizes[component[w]] >= 2:
            types[w] = seen_types.setdefault(component[w], len(seen_types) + 1)
    return types


def _slot_phrases(words: int, n: int, seed: int) -> list[list[int]]:
    """Seeded random phrases of up to three slots (Zipf-like word frequencies per slot)."""
    rng = np.random.default_rng(seed)
    slots = np.array_split(rng.permutation(np.arange(1, words)), 3)
    out = []
    for _ in range(n):
        phrase = [
            int(slot[min(int(rng.zipf(1.3)) - 1, len(slot) - 1)])
            for slot in slots
            if rng.random() < 0.7
        ]
        out.append(phrase + [int(rng.integers(words))] * (rng.random() < 0.1))
    return out


@pytest.mark.parametrize(("words", "n", "seed"), [(12, 3000, 0), (60, 5000, 1), (300, 20000, 2)])
def test_sparse_word_types_equal_the_dense_reference(words, n, seed):
    phrases = _slot_phrases(words, n, seed)
    got = learn_word_types(phrases, words)
    assert got == _dense_word_types(phrases, words)
    assert len(set(got)) >= 2  # the case links words, so the comparison says something


def test_sparse_word_types_equal_the_dense_reference_on_synthetic_captions():
    from tests.unit.model.test_synthetic_parses import synthetic_texts

    parses = [parse(t) for t in synthetic_texts()]
    vocab = Vocabulary.build(synthetic_texts(), min_count=2)
    phrases = [vocab.ids(ph) for p in parses for ph in p.phrases]
    assert vocab.types == _dense_word_types(phrases, len(vocab))
    assert len(set(vocab.types)) >= 3


def test_unlinked_words_share_the_open_type():
    assert learn_word_types([[1, 2], [1, 2]], 3) == [0, 0, 0]


def test_the_block_size_changes_nothing(monkeypatch):
    import groundbench.model.word_types as wt

    phrases = _slot_phrases(60, 5000, 1)
    want = learn_word_types(phrases, 60)
    real = wt._candidate_links
    monkeypatch.setattr(wt, "_candidate_links", lambda *a: real(*a, block=7))  # many blocks
    assert learn_word_types(phrases, 60) == want
