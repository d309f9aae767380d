"""Peak memory and time to index a Visual-Genome-sized file, against ``json.load``.

Run (writes a markdown table to stdout, progress to stderr)::

    nice -n 10 python benchmarks/vg_index_bench.py --images 40000 --regions 50

It writes a seeded synthetic ``image_data.json`` and ``region_descriptions.json`` in VG's
exact layout (``--images`` images × ``--regions`` regions each; the real v1.2 file has
108,077 images and 5.4 M regions in 712 MB) to a temporary folder, then runs each stage
in a fresh Python process and reads that process's peak resident memory (``ru_maxrss``)
, CPU time and wall time from ``os.wait4`` (CPU time is the stable number on a shared
machine):

* **import**: ``import dataset_adapters`` alone (the floor every stage pays: torch etc.).
* **json.load**: parse ``region_descriptions.json`` at once, what a naive adapter does.
* **index**: :func:`dataset_adapters.index.build_vg_index` (streaming parse into SQLite).
* **load test**: :meth:`VisualGenomeAdapter.load_samples` for a 10% test split from the index.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

log = logging.getLogger("vg_index_bench")

_NOUNS = "man woman dog cat car tree sky cloud window door shirt hat table chair plate cup horse fence grass road".split()
_ATTRS = "red white black large small wooden tall green blue old".split()
_RELS = "on top of|next to|behind|under|holding|wearing|near|in front of".split("|")

_STAGES = {
    "import": "import dataset_adapters",
    "json_load": "import json, dataset_adapters; json.load(open({root!r} + '/region_descriptions.json'))",
    "index": (
        "from dataset_adapters.index import build_vg_index; "
        "build_vg_index({root!r}, {root!r} + '/groundbench_index/visual_genome.sqlite', progress=False)"
    ),
    "load_test": (
        "from dataset_adapters import open_dataset; "
        "n = len(open_dataset('visual_genome', {root!r}, test_image_ids={root!r} + '/test_ids.txt')"
        ".load_samples('test')); print(n)"
    ),
}


def generate(root: Path, images: int, regions: int, seed: int) -> None:
    """Write seeded VG-format image_data.json, region_descriptions.json and test_ids.txt."""
    rng = random.Random(seed)
    region_id = 0
    with (
        open(root / "image_data.json", "w") as imgs,
        open(root / "region_descriptions.json", "w") as regs,
    ):
        imgs.write("[")
        regs.write("[")
        for image_id in range(1, images + 1):
            w, h = rng.randint(300, 800), rng.randint(300, 800)
            sep = ", " if image_id > 1 else ""
            imgs.write(sep + json.dumps({
                "width": w, "url": f"https://cs.stanford.edu/people/rak248/VG_100K/{image_id}.jpg",
                "height": h, "image_id": image_id, "coco_id": None, "flickr_id": rng.randint(1, 10**9),
            }))  # fmt: skip
            rows = []
            for _ in range(regions):
                region_id += 1
                x, y = rng.randint(0, w - 2), rng.randint(0, h - 2)
                phrase = (
                    f"{rng.choice(_ATTRS)} {rng.choice(_NOUNS)} {rng.choice(_RELS)} "
                    f"the {rng.choice(_ATTRS)} {rng.choice(_NOUNS)}"
                )
                rows.append({
                    "region_id": region_id, "width": rng.randint(1, w - x), "height": rng.randint(1, h - y),
                    "image_id": image_id, "phrase": phrase, "y": y, "x": x,
                })  # fmt: skip
            regs.write(sep + json.dumps({"regions": rows, "id": image_id}))
        imgs.write("]")
        regs.write("]")
    (root / "test_ids.txt").write_text("\n".join(str(i) for i in range(1, images + 1, 10)) + "\n")


def run_stage(stage: str, root: Path) -> tuple[float, float, float, str]:
    """Run one stage in a fresh interpreter; return (wall s, CPU s, peak RSS MiB, stdout)."""
    start = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-c", _STAGES[stage].format(root=str(root))],
        stdout=subprocess.PIPE,
        text=True,
    )
    out = proc.stdout.read() if proc.stdout else ""
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise RuntimeError(f"stage {stage} failed with exit code {proc.returncode}")
    cpu = usage.ru_utime + usage.ru_stime
    return time.perf_counter() - start, cpu, usage.ru_maxrss / 1024, out.strip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=40000)
    parser.add_argument("--regions", type=int, default=50, help="regions per image")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(message)s")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        t0 = time.perf_counter()
        generate(root, args.images, args.regions, args.seed)
        size = (root / "region_descriptions.json").stat().st_size / 2**20
        log.info("generated %.0f MiB in %.0f s", size, time.perf_counter() - t0)
        results = {}
        for stage in _STAGES:
            results[stage] = run_stage(stage, root)
            log.info("%s: %.1f s wall, %.1f s CPU, peak %.0f MiB", stage, *results[stage][:3])
        index_mib = (root / "groundbench_index" / "visual_genome.sqlite").stat().st_size / 2**20
    base_cpu, base = results["import"][1:3]
    print(f"region_descriptions.json: {size:.0f} MiB, {args.images} images × {args.regions} regions "
          f"= {args.images * args.regions} regions; index file {index_mib:.0f} MiB\n")  # fmt: skip
    print("| stage | wall s | CPU s | CPU above import s | peak RSS MiB | peak above import MiB |")
    print("|---|---:|---:|---:|---:|---:|")
    for stage, (wall, cpu, rss, out) in results.items():
        note = f" ({out} samples)" if out else ""
        print(
            f"| {stage}{note} | {wall:.1f} | {cpu:.1f} | {cpu - base_cpu:.1f} | {rss:.0f} "
            f"| {rss - base:.0f} |"
        )
    ratio = (results["json_load"][2] - base) / max(results["index"][2] - base, 1.0)
    print(f"\njson.load needs {ratio:.1f}× the memory above import that the streaming index needs.")


if __name__ == "__main__":
    main()
