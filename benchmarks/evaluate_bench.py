"""End-to-end speed of ``groundbench evaluate`` and where the time goes.

Run (a markdown table on stdout, progress on stderr)::

    nice -n 10 python benchmarks/evaluate_bench.py --samples 10000

* **end to end**: :func:`groundbench.evaluate.evaluate` of ``--method`` under ``--protocol``
  on the first ``--samples`` samples (by id) of a synthetic test split generated with the
  generator's default settings (seed 0) into ``--data`` (reused when it already holds enough
  samples), written to a temporary report directory: wall clock and samples/s.
* **stages**: the same samples scored again batch by batch, each stage timed on its own (CPU seconds):
  reading the split index, decoding the PNGs (what a method that reads images pays; the
  baselines skip it), the method, the post-processing pipeline, ground truth + metrics. The
  share of each stage is of their sum; the end-to-end rest (bootstrap, report files,
  figures) is reported separately.
"""

from __future__ import annotations

import argparse
import logging
import math
import sys
import tempfile
import time
from pathlib import Path

import torch

from dataset_adapters import open_dataset
from groundbench.evaluate import evaluate
from groundbench.evaluation.data import batches, load_samples
from groundbench.evaluation.scoring import Scorer
from groundbench.methods import resolve_method
from groundbench.metrics import compute_metric
from groundbench.protocol import load_protocol
from groundbench.synthetic import SPLITS, generate
from groundbench.types import HeatmapBatch

SAMPLES_PER_SCENE_LOW = 2.0  # the test split writes 2–3 expressions per scene


def ensure_data(root: Path, samples: int) -> Path:
    """A synthetic dataset at ``root`` whose test split holds at least ``samples`` samples."""
    if (root / "dataset.yaml").is_file():
        if len(open_dataset("native", root).load_samples("test")) >= samples:
            return root
    scenes = {s: 0 for s in SPLITS} | {"test": math.ceil(samples / SAMPLES_PER_SCENE_LOW)}
    return generate(root, {"scenes": scenes}, seed=0, overwrite=True)


def end_to_end(
    protocol: str, method: str, data: Path, n: int, batch_size: int
) -> tuple[float, float]:
    """(wall-clock, CPU) seconds of one full evaluation (report directory included)."""
    with tempfile.TemporaryDirectory() as tmp:
        wall, start = time.perf_counter(), _clock()
        evaluate(
            protocol,
            method,
            out_dir=Path(tmp) / "report",
            data_root=data,
            limit=n,
            batch_size=batch_size,
            resume=False,
            progress=False,
        )
        return time.perf_counter() - wall, _clock() - start


def stages(protocol: str, method: str, data: Path, n: int, batch_size: int) -> dict[str, float]:
    """CPU seconds per stage of scoring ``n`` samples, each stage timed on its own."""
    proto, meth = load_protocol(protocol), resolve_method(method)
    scorer = Scorer(proto, meth, torch.device("cpu"))
    t = dict.fromkeys(["index", "decode", "method", "pipeline", "metrics"], 0.0)
    start = _clock()
    samples = load_samples(proto, data, n)
    t["index"] = _clock() - start
    for batch, images, _ in _timed(batches(samples, with_images=True, batch_size=batch_size,
                                           num_workers=0), t, "decode"):  # fmt: skip
        start = _clock()
        raw = meth.predict(batch, images if meth.needs_images else None, device=scorer.device)
        t["method"] += _clock() - start
        start = _clock()
        out = scorer.pipeline.run(raw, [scorer.size_of(s) for s in batch], device=scorer.device)
        t["pipeline"] += _clock() - start
        start = _clock()
        Y, X = out.heatmap.shape[1:]
        boxes, count, region = scorer.ground_truth(batch, Y, X)
        hb = HeatmapBatch(ids=out.ids, heatmap=out.heatmap, valid=out.valid,
                          region=region & out.valid, boxes=boxes, box_count=count,
                          pred_mask=out.pred_mask, pred_box=out.pred_box)  # fmt: skip
        for _, name, params in scorer.specs:
            compute_metric(name, hb, **params)
        t["metrics"] += _clock() - start
    return t


def _clock() -> float:
    """CPU seconds of this process (all threads): steadier than wall time on a busy machine."""
    return time.process_time()


def _timed(iterator, t: dict[str, float], key: str):
    """Yield from ``iterator``, adding the time spent producing each item to ``t[key]``."""
    while True:
        start = _clock()
        try:
            item = next(iterator)
        except StopIteration:
            return
        t[key] += _clock() - start
        yield item


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=10_000)
    parser.add_argument("--data", type=Path, default=Path(tempfile.gettempdir()) / "gb-eval-bench")
    parser.add_argument("--protocol", default="synth_test.albef")
    parser.add_argument("--method", default="centre_prior")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2, help="torch intra-op threads")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    torch.set_num_threads(args.threads)

    data = ensure_data(args.data, args.samples)
    wall, total = end_to_end(args.protocol, args.method, data, args.samples, args.batch_size)
    t = stages(args.protocol, args.method, data, args.samples, args.batch_size)
    scored = sum(v for k, v in t.items() if k != "decode")
    print(f"`{args.method}` under `{args.protocol}`, {args.samples} samples, batch "
          f"{args.batch_size}, {args.threads} torch threads\n")  # fmt: skip
    print("| what | CPU seconds | share |")
    print("|---|---:|---:|")
    print(f"| end to end (evaluate(), report included) | {total:.2f} | {args.samples / total:.0f} samples per CPU second; wall {wall:.1f} s = {args.samples / wall:.0f} samples/s |")  # fmt: skip
    for key, label in [
        ("index", "read the split index + select"),
        ("method", "method"),
        ("pipeline", "post-processing"),
        ("metrics", "ground truth + metrics"),
    ]:
        print(f"| {label} | {t[key]:.2f} | {t[key] / scored:.0%} |")
    rest = total - scored
    print(f"| rest of end to end (bootstrap, files, figures) | {rest:.2f} | {rest / total:.0%} of end to end |")  # fmt: skip
    decode = t["decode"]
    print(f"| PNG decoding (methods that read images; not in the baseline's run) | {decode:.2f} | "
          f"{decode / (scored + decode):.0%} of stages with decoding |")  # fmt: skip


if __name__ == "__main__":
    main()
