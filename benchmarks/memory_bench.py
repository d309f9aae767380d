"""Peak memory of ``groundbench evaluate`` on photo-sized images, by batch size and resolution cap.

Run (a markdown table on stdout)::

    nice -n 10 python benchmarks/memory_bench.py --images 8 --phrases 16 --batch-sizes 1 8

Writes a native dataset of ``--images`` JPEG images of ``--width`` × ``--height`` pixels with
``--phrases`` phrases each (seeded boxes) into a temporary folder, then runs ``python -m
groundbench evaluate`` once per (batch size, protocol resolution) in a fresh process and reads
that process's peak resident memory (``ru_maxrss`` of :func:`os.wait4`) and wall time. The
protocol is ``synth_test.albef``'s pipeline and metrics on that dataset, with ``resolution:
image`` and, for each ``--max-side``, ``resolution: {max_side: N}``. ``--method grid`` (the
default) is a stand-in for a ViT read-out: a 24 × 32 map per sample (a Gaussian bump at a
place drawn from the sample id), no image decoding; any other ``--method`` spec is passed
to ``evaluate`` as it is (``centre_prior`` makes full-resolution maps).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[1]

PROTOCOL = """\
schema: 1
dataset: {{adapter: native, name: photos, split: test}}
resolution: {resolution}
pipeline:
  normalise: minmax
  upsample: {{mode: bicubic, align: patch}}
  threshold: {{method: fraction_of_max, value: 0.5}}
  regions: largest_component
metrics:
  - {{name: pointing, variant: albef}}
  - {{name: pointing, tolerance_px: 15}}
  - {{name: box_acc, iou: 0.5}}
  - {{name: miou}}
  - {{name: soft_iou}}
  - {{name: auc}}
  - {{name: nss}}
  - {{name: spearman}}
bootstrap: {{resamples: 1000, seed: 0}}
"""


GRID_PLUGIN = """\
import zlib

import torch

from groundbench.types import RawMaps


def grid(samples, images):
    maps = []
    ys = (torch.arange(24) + 0.5)[:, None] / 24
    xs = (torch.arange(32) + 0.5)[None, :] / 32
    for s in samples:
        c = zlib.crc32(s.id.encode())
        y0, x0 = (c % 97) / 97, (c // 97 % 97) / 97
        maps.append(torch.exp(-((ys - y0) ** 2 + (xs - x0) ** 2) / 0.02))
    return RawMaps(tuple(s.id for s in samples), tuple(maps))


grid.supervision = "training-free"
grid.needs_images = False
grid.depends_on = []
"""


def write_dataset(root: Path, images: int, phrases: int, width: int, height: int) -> Path:
    """A native grounding split ``test`` of ``images`` × ``phrases`` samples (seed 0)."""
    rng = np.random.default_rng(0)
    (root / "images").mkdir(parents=True)
    ys, xs = np.mgrid[0:height, 0:width]
    lines = []
    for i in range(images):
        pixels = np.stack([(xs * 255 // width), (ys * 255 // height), np.full_like(xs, 40 * i)], -1)
        Image.fromarray(pixels.astype(np.uint8)).save(root / "images" / f"{i}.jpg", quality=85)
        for k in range(phrases):
            w, h = rng.uniform(0.05, 0.4) * width, rng.uniform(0.05, 0.4) * height
            x0, y0 = rng.uniform(0, width - w), rng.uniform(0, height - h)
            rec = {"id": f"photos/{i}/{k:02d}", "image": f"images/{i}.jpg", "width": width,
                   "height": height, "text": "a thing", "phrase": "thing", "span": [2, 7],
                   "boxes": [[x0, y0, x0 + w, y0 + h]]}  # fmt: skip
            lines.append(json.dumps(rec) + "\n")
    (root / "test.jsonl").write_text("".join(lines), encoding="utf-8")
    (root / "dataset.yaml").write_text(
        "name: photos\nformat_version: 1\nsplits:\n  test: {kind: grounding}\n", encoding="utf-8"
    )
    return root


def run(
    tmp: Path, data: Path, method: str, batch_size: int, resolution: str
) -> tuple[float, float]:
    """Peak RSS (GB) and wall seconds of one evaluation in a fresh process."""
    protocol = tmp / f"photos_{abs(hash(resolution))}.yaml"
    protocol.write_text(PROTOCOL.format(resolution=resolution), encoding="utf-8")
    cmd = [sys.executable, "-m", "groundbench", "evaluate", "--protocol", str(protocol),
           "--method", method, "--data-root", str(data), "--batch-size", str(batch_size),
           "--out", str(tmp / "out"), "--no-resume"]  # fmt: skip
    log = tmp / "stderr.log"
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(tmp), os.environ.get("PYTHONPATH", "")]),
    }
    start = time.perf_counter()
    with log.open("wb") as err:
        proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    if status != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{log.read_text()[-3000:]}")
    return usage.ru_maxrss / 2**20, wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=8)
    parser.add_argument("--phrases", type=int, default=16)
    parser.add_argument("--width", type=int, default=4000)
    parser.add_argument("--height", type=int, default=3000)
    parser.add_argument("--method", default="grid")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--max-side", type=int, nargs="*", default=[])
    parser.add_argument("--write-only", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.write_only:
        write_dataset(args.write_only, args.images, args.phrases, args.width, args.height)
        return
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        (tmp / "gb_bench_grid.py").write_text(GRID_PLUGIN, encoding="utf-8")
        method = "plugin:gb_bench_grid:grid" if args.method == "grid" else args.method
        # written by a child process: a child forked from a parent that held the images'
        # arrays would count them in its peak
        data = tmp / "photos"
        size = ["--images", str(args.images), "--phrases", str(args.phrases)]
        size += ["--width", str(args.width), "--height", str(args.height)]
        subprocess.run([sys.executable, __file__, *size, "--write-only", str(data)], check=True)
        n = args.images * args.phrases
        mp = args.width * args.height / 1e6
        print(f"{n} samples on {args.images} images of {args.width}×{args.height} ({mp:.0f} MP), "
              f"method {args.method}\n")  # fmt: skip
        print("| resolution | batch size | peak RSS (GB) | wall (s) | s/sample |")
        print("|---|---:|---:|---:|---:|")
        resolutions = ["image"] + [f"{{max_side: {m}}}" for m in args.max_side]
        for resolution in resolutions:
            for bs in args.batch_sizes:
                peak, wall = run(tmp, data, method, bs, resolution)
                print(f"| `{resolution}` | {bs} | {peak:.2f} | {wall:.0f} | {wall / n:.2f} |",
                      flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
