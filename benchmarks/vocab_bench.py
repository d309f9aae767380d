"""Peak memory and time of learning word types (:func:`groundbench.model.word_types.learn_word_types`).

Run (a markdown table on stdout)::

    nice -n 10 python benchmarks/vocab_bench.py --words 4000 10000 20000 --dense 4000

For each vocabulary size V it draws seeded random noun phrases (``--phrases-per-word`` × V
phrases of one to three slot words plus, one time in ten, a random word; Zipf-distributed
within each of three slots, so some words link into types and most are rare, as in captions)
and learns the word types with the sparse implementation, and, for the sizes given to
``--dense``, with the dense V × V reference it replaced (kept here as the baseline). Peak
memory is :mod:`tracemalloc`'s peak of the call above its start (numpy and scipy buffers
included; scipy's modules are imported before the first measurement); both give the same
types, which the script checks.
"""

from __future__ import annotations

import argparse
import time
import tracemalloc

import numpy as np

from groundbench.model.word_types import learn_word_types


def random_phrases(words: int, n: int, seed: int = 0) -> list[list[int]]:
    """Seeded phrases over word ids ``1..words-1`` (see the module docstring)."""
    rng = np.random.default_rng(seed)
    slots = np.array_split(rng.permutation(np.arange(1, words)), 3)
    out = []
    for _ in range(n):
        phrase = [
            int(slot[min(int(rng.zipf(1.3)) - 1, len(slot) - 1)])
            for slot in slots
            if rng.random() < 0.7
        ]
        out.append(phrase + [int(rng.integers(1, words))] * (rng.random() < 0.1))
    return out


def dense_word_types(phrases, vocab_size, exclusion=0.05, min_expected=5.0, max_l1=0.5, P=4):
    """The dense V × V (and V × V × P) computation that ``learn_word_types`` replaced."""
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
    types, seen_types = [0] * vocab_size, {}
    for w in range(1, vocab_size):
        if sizes[component[w]] >= 2:
            types[w] = seen_types.setdefault(component[w], len(seen_types) + 1)
    return types


def measure(fn, phrases, words) -> tuple[list[int], float, float]:
    """``(types, peak MiB above the start, wall seconds)`` of one call."""
    tracemalloc.start()
    start = time.perf_counter()
    types = fn(phrases, words)
    seconds = time.perf_counter() - start
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return types, peak / 2**20, seconds


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--words", type=int, nargs="+", default=[4000, 10000, 20000])
    ap.add_argument("--dense", type=int, nargs="*", default=[4000])
    ap.add_argument("--phrases-per-word", type=int, default=25)
    args = ap.parse_args()
    learn_word_types([[1, 2]] * 10, 3)  # imports scipy's modules before anything is measured
    print("| V | phrases | implementation | peak MiB | wall s | types | linked words |")
    print("|---:|---:|---|---:|---:|---:|---:|")
    for words in args.words:
        phrases = random_phrases(words, args.phrases_per_word * words)
        runs = [("sparse", learn_word_types)]
        runs += [("dense (before)", dense_word_types)] if words in args.dense else []
        got = []
        for name, fn in runs:
            types, peak, seconds = measure(fn, phrases, words)
            got.append(types)
            linked = sum(1 for t in types if t)
            print(
                f"| {words} | {len(phrases)} | {name} | {peak:.1f} | {seconds:.1f} | "
                f"{len(set(types)) - 1} | {linked} |",
                flush=True,
            )
        if len(got) == 2 and got[0] != got[1]:
            raise SystemExit(f"V = {words}: the sparse and dense word types differ")


if __name__ == "__main__":
    main()
