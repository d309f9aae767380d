"""Speed of the synthetic generator at the default 64×64 size, and where the time goes.

Run (a markdown table on stdout, progress on stderr)::

    nice -n 10 python benchmarks/synth_bench.py --scenes 2000 --workers 1 2

* **stages**: per-scene CPU time of sampling, painting, PNG encoding and language, over the
  first ``--stage-scenes`` scenes of ``train`` and ``test`` (best of ``--repeats``).
* **end to end**: :func:`groundbench.synthetic.generate` writing ``--scenes`` scenes (split in
  the default proportions) to a temporary folder, wall clock and scenes/s per worker count.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

from groundbench.synthetic import SPLITS, Settings, generate
from groundbench.synthetic.render import paint, png_bytes
from groundbench.synthetic.scene import sample_scene
from groundbench.synthetic.splits import captions_for, grounding_records
from groundbench.synthetic.writer import scene_rng


def _best(fn, n: int, repeats: int) -> float:
    """Best per-call CPU seconds of ``fn(i)`` over ``i < n``."""
    best = float("inf")
    for _ in range(repeats):
        start = time.process_time()
        for i in range(n):
            fn(i)
        best = min(best, (time.process_time() - start) / n)
    return best


def stages(n: int, repeats: int) -> list[tuple[str, float]]:
    """Per-scene CPU milliseconds of each generator stage."""
    s = Settings()
    scenes = {
        sp: [sample_scene(scene_rng(0, sp, i), s, sp) for i in range(n)] for sp in ("train", "test")
    }
    imgs = [
        paint(sc.label, sc.objects, scene_rng(1, "train", i), noise_std=s.noise_std, clutter=s.clutter)
        for i, sc in enumerate(scenes["train"])
    ]  # fmt: skip
    rows = [
        ("seed a scene generator", lambda i: scene_rng(0, "train", i)),
        ("sample a train scene", lambda i: sample_scene(scene_rng(0, "train", i), s, "train")),
        ("paint (background, clutter, textures, noise)", lambda i: paint(
            scenes["train"][i].label, scenes["train"][i].objects, scene_rng(1, "train", i),
            noise_std=s.noise_std, clutter=s.clutter)),
        ("PNG encode (zlib level 1)", lambda i: png_bytes(imgs[i])),
        ("train captions", lambda i: captions_for(scenes["train"][i], scene_rng(2, "train", i), s)),
        ("test expressions + masks (RLE)", lambda i: grounding_records(
            scenes["test"][i], scene_rng(2, "test", i), s, "test", f"x/{i}", "img.png")),
    ]  # fmt: skip
    return [(name, 1e3 * _best(fn, n, repeats)) for name, fn in rows]


def _cpu_seconds() -> float:
    own, kids = (
        resource.getrusage(resource.RUSAGE_SELF),
        resource.getrusage(resource.RUSAGE_CHILDREN),
    )
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def end_to_end(total: int, workers: int) -> tuple[float, float, float]:
    """Wall seconds, scenes/s and CPU ms per scene (all processes) of generate()."""
    default = Settings().scenes
    scale = total / sum(default.values())
    scenes = {sp: max(1, round(default[sp] * scale)) for sp in SPLITS}
    n = sum(scenes.values())
    with tempfile.TemporaryDirectory() as tmp:
        start, cpu = time.perf_counter(), _cpu_seconds()
        generate(Path(tmp) / "d", {"scenes": scenes}, seed=0, progress=True, workers=workers)
        wall = time.perf_counter() - start
        cpu = _cpu_seconds() - cpu
    return wall, n / wall, 1e3 * cpu / n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenes", type=int, default=2000, help="scenes for the end-to-end runs")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--stage-scenes", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    print("| stage | CPU ms / scene |\n|---|---|")
    for name, ms in stages(args.stage_scenes, args.repeats):
        print(f"| {name} | {ms:.3f} |")
    print(
        "\n| workers | scenes | wall s | scenes/s | CPU ms / scene, all processes |\n|---|---|---|---|---|"
    )
    for w in args.workers:
        wall, rate, cpu_ms = end_to_end(args.scenes, w)
        print(f"| {w} | {args.scenes} | {wall:.2f} | {rate:.0f} | {cpu_ms:.2f} |")
    print(f"\nload average at the end: {os.getloadavg()[0]:.1f} ({os.cpu_count()} CPUs)")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
