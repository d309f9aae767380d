"""MaxBoxAccV2 of methods on the synthetic set: threshold sweep on val, applied to test.

Run::

    python benchmarks/maxboxacc_synth.py --method checkpoint:PATH --method centre_prior

For each method, the synthetic val and test splits go through the method and the shipped
``synth_*.albef`` pipeline (min-max, bicubic upsampling); every connected component's box
is judged at every threshold of the sweep (:mod:`groundbench.metrics.maxboxacc`). Prints,
per method: MaxBoxAccV2 on test (its own best thresholds), the calibrated accuracy (the
thresholds chosen on val, applied to test) and the chosen thresholds, and the fixed
``box_acc@0.5`` rule (threshold 0.5 of the maximum, largest component) for comparison.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from groundbench.evaluation.data import batches, load_split
from groundbench.evaluation.scoring import Scorer
from groundbench.methods import resolve_method
from groundbench.metrics import box_acc
from groundbench.metrics.maxboxacc import DELTAS, box_hits, calibrated_box_acc, max_box_acc
from groundbench.protocol import load_protocol


def split_hits(protocol_name: str, spec: str, limit: int | None) -> tuple[np.ndarray, float]:
    """``(N, T, D)`` hits and the fixed-threshold box_acc@0.5 of one split."""
    protocol = load_protocol(protocol_name)
    method = resolve_method(spec)
    scorer = Scorer(protocol, method, torch.device("cpu"))
    samples = load_split(protocol, None, limit).samples
    hits, fixed = [], []
    for group, images, _ in batches(
        samples, with_images=method.needs_images, batch_size=64, num_workers=0
    ):
        out = scorer.maps(group, images)
        Y, X = out.heatmap.shape[1:]
        boxes, count, _ = scorer.ground_truth(group, Y, X)
        hits.append(box_hits(out.heatmap, out.valid, boxes, count))
        fixed.append(
            box_acc(out.heatmap, boxes=boxes, box_count=count, pred_box=out.pred_box).values
        )
    return np.concatenate(hits), float(torch.cat(fixed).nanmean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--method", action="append", required=True)
    parser.add_argument("--limit", type=int, default=None, help="samples per split")
    args = parser.parse_args()
    print(
        "| method | MaxBoxAccV2 (test) | δ 0.3 / 0.5 / 0.7 | best τ on test | calibrated on val | "
        "τ chosen on val | box_acc@0.5 (fixed rule, test) | n val / test |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for spec in args.method:
        val, _ = split_hits("synth_val.albef", spec, args.limit)
        test, fixed = split_hits("synth_test.albef", spec, args.limit)
        own, cal = max_box_acc(test), calibrated_box_acc(val, test)
        per = " / ".join(f"{own.per_delta[d]:.3f}" for d in DELTAS)
        taus = " / ".join(f"{own.best_threshold[d]:.2f}" for d in DELTAS)
        chosen = " / ".join(f"{cal.best_threshold[d]:.2f}" for d in DELTAS)
        print(
            f"| {spec} | {own.value:.3f} | {per} | {taus} | {cal.value:.3f} | {chosen} | "
            f"{fixed:.3f} | {len(val)} / {len(test)} |"
        )


if __name__ == "__main__":
    main()
