"""Speed of ``groundbench compare`` statistics and of building a board.

Run (writes markdown tables to stdout, progress to stderr)::

    python benchmarks/leaderboard_bench.py

* **paired tests**: :func:`compare_tables` (bootstrap interval + sign-flip p-value, one
  metric) against the loop a user would write (one numpy draw per resample/permutation)
  and against ``scipy.stats.permutation_test`` + ``scipy.stats.bootstrap`` (vectorised,
  paired), at several sample counts. Same resample and permutation counts for all three;
  the p-values must agree within Monte-Carlo error.
* **board**: ``add_entry`` per report and ``build_board`` over protocols × methods entries
  (each re-validated on read) of 500 samples.

Every time is the best of ``--repeats`` runs in this one process, so ratios are comparable.
"""

from __future__ import annotations

import argparse
import importlib.util
import logging
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import numpy as np
from scipy import stats

from groundbench.leaderboard import add_entry, build_board
from groundbench.leaderboard.compare import compare_tables
from groundbench.leaderboard.samples import SampleTable

log = logging.getLogger("leaderboard_bench")
# scipy resamples per batch: unbatched, its arrays reach (resamples × samples) floats, several GB
_BATCH = 200
HELPERS = (
    Path(__file__).resolve().parents[1]
    / "tests"
    / "unit"
    / "leaderboard"
    / "leaderboard_reports.py"
)


def best_of(fn: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def naive(a: np.ndarray, b: np.ndarray, resamples: int, permutations: int, seed: int) -> float:
    """Loop per resample and per permutation; returns the p-value."""
    rng = np.random.default_rng(seed)
    d = a - b
    means = [d[rng.integers(0, len(d), len(d))].mean() for _ in range(resamples)]
    np.quantile(means, [0.025, 0.975])
    observed = abs(d.mean())
    hits = sum(
        abs((d * rng.choice([-1.0, 1.0], len(d))).mean()) >= observed for _ in range(permutations)
    )
    return (1 + hits) / (1 + permutations)


def scipy_peer(a: np.ndarray, b: np.ndarray, resamples: int, permutations: int, seed: int) -> float:
    def statistic(x, y, axis):
        return np.mean(x - y, axis=axis)

    stats.bootstrap(
        (a - b,),
        np.mean,
        n_resamples=resamples,
        method="percentile",
        random_state=seed,
        batch=_BATCH,
    )
    res = stats.permutation_test(
        (a, b),
        statistic,
        permutation_type="samples",
        n_resamples=permutations,
        vectorized=True,
        batch=_BATCH,
        random_state=seed,
    )
    return float(res.pvalue)


def bench_paired(sizes: list[int], resamples: int, permutations: int, repeats: int) -> list[str]:
    rows = [
        "| samples | ours (s) | naive loop (s) | scipy (s) | naive/ours | scipy/ours | p ours | p scipy |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    rng = np.random.default_rng(0)
    for n in sizes:
        b = rng.random(n)
        a = b + rng.normal(0.0, 0.5, n) + 0.5 / np.sqrt(n)  # a small effect: p is not at its floor
        ids = tuple(f"s{i:07d}" for i in range(n))
        ta = SampleTable(ids, (frozenset(),) * n, {"m": a}, {"m": ("",) * n})
        tb = SampleTable(ids, (frozenset(),) * n, {"m": b}, {"m": ("",) * n})
        log.info("paired tests, n=%d", n)
        ours = best_of(
            partial(compare_tables, ta, tb, resamples=resamples, permutations=permutations), repeats
        )
        p_ours = compare_tables(ta, tb, resamples=resamples, permutations=permutations)[0].p_value
        loop = best_of(partial(naive, a, b, resamples, permutations, 0), 1)
        peer = best_of(partial(scipy_peer, a, b, resamples, permutations, 0), repeats)
        p_peer = scipy_peer(a, b, resamples, permutations, 0)
        rows.append(
            f"| {n} | {ours:.3f} | {loop:.3f} | {peer:.3f} | {loop / ours:.1f}× | {peer / ours:.1f}× "
            f"| {p_ours:.4f} | {p_peer:.4f} |"
        )
    return rows


def bench_board(protocols: int, methods: int, n: int, repeats: int) -> list[str]:
    spec = importlib.util.spec_from_file_location("leaderboard_reports", HELPERS)
    helpers = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(helpers)
    splits = [
        "test",
        "compositional",
        "relational",
        "distractors",
        "paraphrase",
        "occlusion",
        "off_centre",
        "small",
    ]
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        runs = []
        for split in splits[:protocols]:
            for m in range(methods):
                hits = (rng.random(n) < 0.3 + 0.05 * m).astype(np.float64)
                runs.append(
                    helpers.write_report(
                        root / "runs" / f"{split}-{m}",
                        {
                            "pointing": hits,
                            "box_acc": hits * (rng.random(n) < 0.5),
                            "soft_iou": rng.random(n),
                        },
                        method=f"method_{m:02d}",
                        canonical=helpers.canonical_protocol(split),
                        name=f"synth_{split}.albef",
                    )
                )
        log.info("adding %d entries", len(runs))
        start = time.perf_counter()
        for run in runs:
            add_entry(run, root / "board")
        add_s = (time.perf_counter() - start) / len(runs)
        log.info("building")
        build_s = best_of(lambda: build_board(root / "board"), repeats)
    return [
        "| entries | samples each | add_entry per report (s) | build_board (s) |",
        "|---:|---:|---:|---:|",
        f"| {len(runs)} | {n} | {add_s:.3f} | {build_s:.2f} |",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[500, 5000, 20000])
    parser.add_argument("--resamples", type=int, default=2000)
    parser.add_argument("--permutations", type=int, default=10000)
    parser.add_argument("--protocols", type=int, default=8)
    parser.add_argument("--methods", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(message)s")
    out = [
        f"Paired tests, one metric: {args.resamples} bootstrap resamples + {args.permutations} sign flips",
        "",
        *bench_paired(args.sizes, args.resamples, args.permutations, args.repeats),
        "",
        *bench_board(args.protocols, args.methods, 500, args.repeats),
    ]
    sys.stdout.write("\n".join(out) + "\n")


if __name__ == "__main__":
    main()
