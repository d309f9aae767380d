"""Speed of the heatmap post-processing pipeline: maps/s end to end and per step.

Workload: N attention maps of shape (P, L, H, h, w) = (2, 4, 4, 16, 16), as the reference
model returns them, post-processed to 480 × 640 images. Every timing is the median of
``--repeats`` runs after one warm-up; ratios in the output come from the same run.

Usage::

    nice -n 10 python benchmarks/postprocess_bench.py [--n 64] [--repeats 5] [--device cpu]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import numpy as np
import torch
from scipy import ndimage
from skimage.filters import threshold_otsu

from groundbench.postprocess import (
    Pipeline,
    aggregate_attention,
    average_passes,
    normalise_maps,
    select_regions,
    smooth_maps,
    threshold_maps,
    upsample_maps,
)
from groundbench.types import RawMaps

SIZE = (480, 640)
PIPELINES = {
    "default (bilinear, fraction_of_max 0.5, largest_component)": {},
    "bicubic + smooth 4 px + otsu + largest_component": {
        "upsample": {"mode": "bicubic"},
        "smooth": {"sigma_px": 4.0},
        "threshold": {"method": "otsu"},
    },
    "nearest + top_k_percent 10 + peak_cluster": {
        "upsample": {"mode": "nearest"},
        "threshold": {"method": "top_k_percent", "value": 10.0},
        "regions": "peak_cluster",
    },
    "bilinear + mean + union_box (no scipy)": {
        "threshold": {"method": "mean"},
        "regions": "union_box",
    },
    "heatmap only (no threshold)": {"threshold": None, "regions": None},
}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn: Callable[[], object], repeats: int, device: torch.device) -> float:
    """Median seconds of ``fn`` over ``repeats`` runs, after one warm-up."""
    fn()
    _sync(device)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        _sync(device)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=64, help="maps per batch")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    device = torch.device(args.device)
    gen = torch.Generator().manual_seed(0)
    maps = tuple(torch.rand(2, 4, 4, 16, 16, generator=gen).to(device) for _ in range(args.n))
    raw = RawMaps(ids=tuple(f"s{i}" for i in range(args.n)), maps=maps, kind="attention")
    sizes = [SIZE] * args.n
    n = args.n
    print(f"device: {device}, torch {torch.__version__}, threads {torch.get_num_threads()}")
    print(
        f"{n} attention maps (2, 4, 4, 16, 16) -> {SIZE[0]}x{SIZE[1]}, median of {args.repeats}\n"
    )

    print("| pipeline | maps/s | ms/batch |\n|---|---:|---:|")
    for label, cfg in PIPELINES.items():
        pipe = Pipeline.from_config(cfg)
        t = timed(lambda pipe=pipe: pipe.run(raw, sizes, device=device), args.repeats, device)
        print(f"| {label} | {n / t:,.0f} | {1e3 * t:.1f} |")

    pipe = Pipeline.from_config(None)
    batched = timed(lambda: pipe.run(raw, sizes, device=device), args.repeats, device)
    single = timed(
        lambda: [
            pipe.run(RawMaps((i,), (m,), "attention"), [SIZE])
            for i, m in zip(raw.ids, maps, strict=True)
        ],
        args.repeats,
        device,
    )
    print(f"\nbatched vs one sample per call (default pipeline): {single / batched:.2f}x faster\n")

    stacked = torch.stack(maps)
    grid = average_passes(stacked)
    grid = normalise_maps(aggregate_attention(grid))
    image = upsample_maps(grid, SIZE, mode="bilinear")
    mask = threshold_maps(image, method="fraction_of_max", value=0.5)
    steps = {
        "average (mean over P)": lambda: average_passes(stacked),
        "aggregate (mean L, H)": lambda: aggregate_attention(stacked[:, 0]),
        "normalise minmax (grid)": lambda: normalise_maps(grid),
        "upsample bilinear": lambda: upsample_maps(grid, SIZE, mode="bilinear"),
        "upsample bicubic": lambda: upsample_maps(grid, SIZE, mode="bicubic"),
        "upsample nearest": lambda: upsample_maps(grid, SIZE, mode="nearest"),
        "smooth sigma 4 px": lambda: smooth_maps(image, 4.0),
        "threshold fraction_of_max": lambda: threshold_maps(
            image, method="fraction_of_max", value=0.5
        ),
        "threshold otsu": lambda: threshold_maps(image, method="otsu"),
        "threshold top_k_percent": lambda: threshold_maps(
            image, method="top_k_percent", value=10.0
        ),
        "regions largest_component": lambda: select_regions(mask, "largest_component"),
        "regions peak_cluster": lambda: select_regions(mask, "peak_cluster", heatmap=image),
        "regions union_box": lambda: select_regions(mask, "union_box"),
    }
    image_np = image.cpu().numpy()
    # per-map CPU references of the same operations (what a user would otherwise write)
    references = {
        "smooth sigma 4 px": lambda: [
            ndimage.gaussian_filter(m, 4.0, mode="reflect") for m in image_np
        ],
        "threshold otsu": lambda: [m > threshold_otsu(m) for m in image_np],
        "threshold top_k_percent": lambda: [
            m >= np.partition(m.ravel(), -m.size // 10)[-m.size // 10] for m in image_np
        ],
    }
    print("| step | maps/s | ms/batch | per-map scipy/skimage/numpy reference, maps/s |")
    print("|---|---:|---:|---:|")
    for label, fn in steps.items():
        t = timed(fn, args.repeats, device)
        ref = ""
        if label in references:
            t_ref = timed(references[label], args.repeats, device)
            ref = f"{n / t_ref:,.0f} (ours {t_ref / t:.1f}x)"
        print(f"| {label} | {n / t:,.0f} | {1e3 * t:.1f} | {ref} |")


if __name__ == "__main__":
    main()
