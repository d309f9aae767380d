"""Word types: words that fill the same slot of a noun phrase, learned from co-occurrence.

Two words are one type when they share a phrase far less often than chance predicts and sit
at the same distance from the phrase end (:func:`learn_word_types`). The computation is
sparse: only pairs whose expected co-occurrence can reach the threshold are scored, in
bounded blocks, so memory grows with the phrases and the candidate pairs, not with V².
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


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
    ).tocsc()
    count = np.asarray(incidence.sum(0)).ravel()  # phrases holding each word
    hist = np.zeros((vocab_size, positions))
    np.add.at(hist, (np.asarray(cols), np.asarray(pos)), 1.0)
    hist /= np.maximum(hist.sum(1, keepdims=True), 1.0)
    u, v = _candidate_links(
        incidence, count, hist, exclusion, min_expected, max_position_l1, max(len(phrases), 1)
    )
    link = coo_matrix((np.ones(len(u)), (u, v)), shape=(vocab_size, vocab_size))
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


def _candidate_links(
    incidence, count, hist, exclusion, min_expected, max_position_l1, n_phrases, block=1 << 16
) -> tuple[np.ndarray, np.ndarray]:
    """Return the linked word pairs ``(u, v)``, ``u < v``, of :func:`learn_word_types`.

    Only pairs whose expected co-occurrence ``n_u n_v / n_phrases`` reaches ``min_expected``
    can link; with words sorted by count, those of a word are a prefix of the list. Pairs are
    scored in blocks of about ``block`` (rows × columns), so memory does not grow as V².
    """
    words = np.flatnonzero(count)
    words = words[words > 0]
    order = words[np.argsort(-count[words], kind="stable")]
    c = count[order]
    need = min_expected * n_phrases * (1 - 1e-9)  # n_u n_v must reach it (a rounding margin)
    reach = np.searchsorted(-c, -need / c, side="right")  # per row: its prefix of columns
    us, vs = [], []
    start = 0
    while start < len(order) and reach[start] > 0:
        width = int(reach[start])
        stop = start + 1
        while stop < len(order) and reach[stop] > 0 and (stop + 1 - start) * width <= block:
            stop += 1
        rows, columns = order[start:stop], order[:width]
        shared = (incidence[:, rows].T @ incidence[:, columns]).toarray()
        expected = np.outer(count[rows], count[columns]) / n_phrases
        l1 = np.abs(hist[rows][:, None, :] - hist[columns][None, :, :]).sum(-1)
        ok = (expected >= min_expected) & (shared < exclusion * expected) & (l1 < max_position_l1)
        r, k = np.nonzero(ok)
        a, b = rows[r], columns[k]
        keep = a < b  # each pair once (the test is symmetric), never a word with itself
        us.append(a[keep])
        vs.append(b[keep])
        start = stop
    empty = np.zeros(0, np.int64)
    return (np.concatenate(us), np.concatenate(vs)) if us else (empty, empty)
