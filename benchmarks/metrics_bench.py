"""Speed of the metric battery at 480×640 against a naive reference, peers and the read floor.

Run (writes a markdown table to stdout, progress to stderr)::

    python benchmarks/metrics_bench.py --maps 200 --device cpu

Maps are seeded sums of Gaussian blobs plus noise (distinct float32 values); each has 1–3
ground-truth boxes covering about 10% of the image. Every time is the best of ``--repeats``
runs over the same maps, measured in this one process, so ratios are comparable.

* **ours**: each :mod:`groundbench.metrics` function on the whole batch.
* **reference**: a plain per-sample loop on numpy, ``sklearn.metrics.roc_auc_score`` and
  ``scipy.stats.spearmanr``: the code a user would write, timed on every map when it covers
  them within ``FAST_REFERENCE_S`` (else on ``--reference-maps``). The pointing games take
  ``argmax`` (one read of the map; exact here, where every map has one maximum). Our values
  must match it to 1e-6.
* **peers**: TorchRay's ``PointingGame``, pysaliency's ``NSS``/``AUC``-style functions and
  Quantus' ``PointingGame``/``AUC``, where importable (``--no-deps`` installs, optional).
* **read floor**: one reduction over the same maps (``sum``), the cost of reading them once.

Where the reference is timed on every map, ours and the reference run in turns (best of
``--repeats`` each), so their ratio comes from the same minutes of the machine's memory
bandwidth, which swings by 1.5× on a shared host. The floor runs on its own: right after a
threaded torch op, torch's OpenMP workers spin for a while and hold the cores our threads
would use (measured: pointing 9.7 ms right after a ``sum`` over the maps, 7.9 ms otherwise).
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import sys
import time
from collections.abc import Callable

import numpy as np
import torch

from groundbench.metrics import (
    auc,
    cc,
    kl,
    miou,
    nss,
    pointing,
    shared_ranks,
    sim,
    soft_iou,
    spearman,
)
from groundbench.types import rasterise_boxes

log = logging.getLogger("metrics_bench")
HEIGHT, WIDTH = 480, 640


def make_maps(n: int, seed: int) -> dict[str, torch.Tensor]:
    """Seeded heatmaps, boxes, regions and thresholded masks."""
    rng = np.random.default_rng(seed)
    counts = rng.integers(1, 4, size=n)
    boxes = np.zeros((n, 3, 4))
    for i, k in enumerate(counts):
        side = math.sqrt(0.10 * HEIGHT * WIDTH / k)  # k boxes, ~10% of the image together
        for j in range(k):
            w, h = side * rng.uniform(0.7, 1.3), side * rng.uniform(0.7, 1.3)
            x0, y0 = rng.uniform(0, WIDTH - w), rng.uniform(0, HEIGHT - h)
            boxes[i, j] = [x0, y0, x0 + w, y0 + h]
    yy, xx = np.mgrid[0:HEIGHT, 0:WIDTH].astype(np.float32)
    maps = np.empty((n, HEIGHT, WIDTH), dtype=np.float32)
    for i in range(n):
        m = rng.random((HEIGHT, WIDTH), dtype=np.float32) * 0.05
        for _ in range(3):
            cx, cy, s = rng.uniform(0, WIDTH), rng.uniform(0, HEIGHT), rng.uniform(20, 80)
            m += np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * s * s)).astype(np.float32)
        maps[i] = m
    flat = maps.reshape(n, -1)
    assert ((flat == flat.max(axis=1, keepdims=True)).sum(axis=1) == 1).all(), "a tied maximum"
    box_t = torch.from_numpy(boxes)
    count_t = torch.from_numpy(counts)
    heat = torch.from_numpy(maps)
    region = rasterise_boxes(box_t, count_t, HEIGHT, WIDTH)
    pred_mask = heat >= 0.5 * heat.flatten(1).amax(dim=1)[:, None, None]
    return {
        "heatmap": heat,
        "region": region,
        "boxes": box_t,
        "box_count": count_t,
        "pred_mask": pred_mask,
    }


# a reference loop that covers all the maps within this many seconds is timed on all of them
# (streaming them from memory as ours does), a slower one on --reference-maps maps
FAST_REFERENCE_S = 2.0


def keep_freed_memory() -> str:
    """Tell glibc to keep freed memory (Linux); returns a note for the output.

    By default glibc hands large freed blocks back to the system, so every float64 temporary
    of a per-map reference loop page-faults afresh, and how often depends on what the process
    allocated before: one reference loop measured 182 or 1,460 maps/s in two runs.
    """
    import ctypes

    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return "allocator left as is (no glibc)"
    m_trim_threshold, m_mmap_threshold = -1, -3
    libc.mallopt(m_trim_threshold, 1 << 30)
    libc.mallopt(m_mmap_threshold, 1 << 30)
    return "glibc keeps freed memory (mallopt M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = 1 GiB)"


def best_time(fn: Callable[[], object], repeats: int) -> float:
    """Best wall-clock seconds of ``repeats`` runs of ``fn`` after one warm-up run."""
    return best_times(fn, repeats)[0]


def best_times(fn: Callable[[], object], repeats: int) -> tuple[float, float]:
    """Best ``(wall, cpu)`` seconds of ``repeats`` runs; cpu is this process's CPU time.

    On a shared machine the wall time depends on the other jobs; the CPU time much less.
    """
    fn()  # warm-up
    wall = cpu = math.inf
    for _ in range(repeats):
        w0, c0 = time.perf_counter(), time.process_time()
        fn()
        wall = min(wall, time.perf_counter() - w0)
        cpu = min(cpu, time.process_time() - c0)
    return wall, cpu


def interleaved(
    fns: list[Callable[[], object]], repeats: int, sync: Callable[[], None]
) -> list[tuple[float, float]]:
    """Best ``(wall, cpu)`` seconds of each of ``fns``, run in turns ``repeats`` times."""
    for fn in fns:
        fn()  # warm-up
    best = [(math.inf, math.inf)] * len(fns)
    for _ in range(repeats):
        for k, fn in enumerate(fns):
            w0, c0 = time.perf_counter(), time.process_time()
            fn()
            sync()
            wall, cpu = time.perf_counter() - w0, time.process_time() - c0
            best[k] = (min(best[k][0], wall), min(best[k][1], cpu))
    return best


def _times(ratio: float) -> str:
    """A speed ratio, with two decimals below 10."""
    return f"{ratio:.2f}×" if ratio < 10 else f"{ratio:,.0f}×"


# ----------------------------------------------------------------------------- ours

OURS: dict[str, Callable[[dict], torch.Tensor]] = {
    "pointing": lambda d: pointing(d["heatmap"], region=d["region"]).values,
    "pointing@15px": lambda d: pointing(d["heatmap"], region=d["region"], tolerance_px=15).values,
    "miou": lambda d: miou(d["heatmap"], region=d["region"], pred_mask=d["pred_mask"]).values,
    "soft_iou": lambda d: soft_iou(d["heatmap"], region=d["region"]).values,
    "auc": lambda d: auc(d["heatmap"], region=d["region"]).values,
    "nss": lambda d: nss(d["heatmap"], region=d["region"]).values,
    "spearman": lambda d: spearman(d["heatmap"], region=d["region"]).values,
    "pointing[albef]": lambda d: (
        pointing(d["heatmap"], boxes=d["boxes"], box_count=d["box_count"], variant="albef").values
    ),
    "spearman@sigma10px": lambda d: spearman(d["heatmap"], region=d["region"], sigma_px=10).values,
    "cc": lambda d: cc(d["heatmap"], region=d["region"]).values,
    "kl": lambda d: kl(d["heatmap"], region=d["region"]).values,
    "sim": lambda d: sim(d["heatmap"], region=d["region"]).values,
}
# the battery MetricSuite runs in the rows below: the first seven metrics
BATTERY = ("pointing", "pointing@15px", "miou", "soft_iou", "auc", "nss", "spearman")


# ------------------------------------------------------------------------ reference


def _ref_pointing(h: np.ndarray, r: np.ndarray, tol: float) -> float:
    y, x = divmod(int(h.argmax()), h.shape[1])
    if tol == 0:
        return float(r[y, x])
    dy, dx = np.mgrid[-int(tol) : int(tol) + 1, -int(tol) : int(tol) + 1]
    disc = dy * dy + dx * dx <= tol * tol
    ny, nx = y + dy[disc], x + dx[disc]
    inside = (ny >= 0) & (ny < h.shape[0]) & (nx >= 0) & (nx < h.shape[1])
    return float(r[ny[inside], nx[inside]].any())


def _ref_albef(h: np.ndarray, boxes: np.ndarray, k: int) -> float:
    y, x = divmod(int(h.argmax()), h.shape[1])  # the first maximum, its integer index
    b = boxes[:k]
    return float(np.any((b[:, 0] < x) & (x < b[:, 2]) & (b[:, 1] < y) & (y < b[:, 3])))


def _ref_spearman_blurred(h: np.ndarray, r: np.ndarray, sigma_px: float) -> float:
    from scipy.ndimage import gaussian_filter
    from scipy.stats import spearmanr

    target = gaussian_filter(r.astype(np.float64), sigma_px, mode="constant")
    return float(spearmanr(h.ravel(), target.ravel()).statistic)


def _ref_soft_iou(h: np.ndarray, r: np.ndarray) -> float:
    h = h.astype(np.float64)
    hn = (h - h.min()) / (h.max() - h.min())
    g = r.astype(np.float64)
    return float(np.minimum(hn, g).sum() / np.maximum(hn, g).sum())


def _ref_nss(h: np.ndarray, r: np.ndarray) -> float:
    h = h.astype(np.float64)
    return float((h[r].mean() - h.mean()) / h.std())


def _ref_density(x: np.ndarray) -> np.ndarray:
    x = x.astype(np.float64)
    x = x - min(x.min(), 0.0)  # pysaliency shifts only a negative minimum
    return x / x.sum() if x.sum() else np.full(x.shape, 1.0 / x.size)


def _ref_cc(h: np.ndarray, r: np.ndarray) -> float:
    return float(np.corrcoef(h.ravel().astype(np.float64), r.ravel().astype(np.float64))[0, 1])


def _ref_kl(h: np.ndarray, r: np.ndarray, eps: float = 2.2204e-16) -> float:
    p, q = _ref_density(r), _ref_density(h)
    return float(np.sum(p * np.log(eps + p / (q + eps))))


def _ref_sim(h: np.ndarray, r: np.ndarray) -> float:
    return float(np.minimum(_ref_density(r), _ref_density(h)).sum())


def _ref_miou(m: np.ndarray, r: np.ndarray) -> float:
    return float((m & r).sum() / (m | r).sum())


def reference() -> dict[str, Callable[[dict], np.ndarray]]:
    from scipy.stats import spearmanr
    from sklearn.metrics import roc_auc_score

    def loop(fn):
        def run(d):
            h, r = d["heatmap"].numpy(), d["region"].numpy()
            return np.array([fn(h[i], r[i], d, i) for i in range(len(h))])

        return run

    return {
        "pointing": loop(lambda h, r, d, i: _ref_pointing(h, r, 0)),
        "pointing@15px": loop(lambda h, r, d, i: _ref_pointing(h, r, 15)),
        "miou": loop(lambda h, r, d, i: _ref_miou(d["pred_mask"][i].numpy(), r)),
        "soft_iou": loop(lambda h, r, d, i: _ref_soft_iou(h, r)),
        "auc": loop(lambda h, r, d, i: roc_auc_score(r.ravel(), h.ravel())),
        "nss": loop(lambda h, r, d, i: _ref_nss(h, r)),
        "spearman": loop(lambda h, r, d, i: spearmanr(h.ravel(), r.ravel()).statistic),
        "pointing[albef]": loop(
            lambda h, r, d, i: _ref_albef(h, d["boxes"][i].numpy(), int(d["box_count"][i]))
        ),
        "spearman@sigma10px": loop(lambda h, r, d, i: _ref_spearman_blurred(h, r, 10.0)),
        "cc": loop(lambda h, r, d, i: _ref_cc(h, r)),
        "kl": loop(lambda h, r, d, i: _ref_kl(h, r)),
        "sim": loop(lambda h, r, d, i: _ref_sim(h, r)),
    }


# ---------------------------------------------------------------------------- peers


def _load_file(name: str, path: str):
    """Import one module file by path, without running its package's ``__init__``."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _find(relative: str) -> str | None:
    """First ``sys.path`` entry holding ``relative`` (a file path), or None."""
    import glob
    import os

    for root in sys.path:
        hits = glob.glob(os.path.join(root or ".", relative))
        if hits:
            return hits[0]
    return None


def peers() -> tuple[dict[str, dict[str, Callable[[dict], object]]], list[str]]:
    """Peer implementations that load here: ``{metric: {peer: fn}}`` and notes on the rest.

    Peers are installed with ``pip install --no-deps --target DIR`` and found through
    ``--peers DIR``. Their packages' ``__init__`` files import heavy optional dependencies
    (torchvision, boltons, ...), so the one module that holds the metric is loaded by path:
    ``torchray/benchmark/pointing_game.py`` (its top-level ``torchvision`` import, used only
    by dataset helpers, is satisfied by an empty stand-in module), ``pysaliency/metrics.py``
    and the compiled ``pysaliency/roc_cython`` (given ``np.trapz = np.trapezoid`` on numpy
    releases that dropped ``np.trapz``).
    """
    import types

    found: dict[str, dict[str, Callable[[dict], object]]] = {}
    notes = []
    path = _find("torchray/benchmark/pointing_game.py")
    if path is None:
        notes.append("torchray: not installed (pip install --no-deps --target DIR torchray)")
    else:
        for name in ("torchvision", "torchvision.datasets"):
            sys.modules.setdefault(name, types.ModuleType(name))
        sys.modules["torchvision"].datasets = sys.modules["torchvision.datasets"]
        pkg = types.ModuleType("torchray_pg")
        pkg.__path__ = []
        sys.modules["torchray_pg"] = pkg
        sys.modules["torchray_pg.datasets"] = types.ModuleType("torchray_pg.datasets")
        game_cls = _load_file("torchray_pg.pointing_game", path).PointingGame

        def torchray_pointing(d):
            # TorchRay's protocol: argmax point, then PointingGame.evaluate (strict d < 15)
            game = game_cls(num_classes=1, tolerance=15)
            h, r = d["heatmap"], d["region"]
            out = []
            for i in range(len(h)):
                row, col = divmod(int(h[i].argmax()), h.shape[2])
                out.append(game.evaluate(r[i], (col, row)) == 1)
            return out

        found.setdefault("pointing@15px", {})["torchray"] = torchray_pointing
    path = _find("pysaliency/metrics.py")
    if path is None:
        notes.append("pysaliency: not installed (pip install --no-deps --target DIR pysaliency)")
    else:
        psm = _load_file("pysaliency_metrics", path)

        def ps_nss(d):
            h, r = d["heatmap"].numpy(), d["region"].numpy()
            return [np.mean(psm.NSS(h[i], *np.nonzero(r[i])[::-1])) for i in range(len(h))]

        found.setdefault("nss", {})["pysaliency"] = ps_nss

        def ps_pair(fn):
            def run(d):
                h, r = d["heatmap"].numpy().astype(np.float64), d["region"].numpy()
                return [fn(h[i], r[i].astype(np.float64)) for i in range(len(h))]

            return run

        found.setdefault("cc", {})["pysaliency"] = ps_pair(psm.CC)
        found.setdefault("kl", {})["pysaliency"] = ps_pair(psm.MIT_KLDiv)
        found.setdefault("sim", {})["pysaliency"] = ps_pair(psm.SIM)
        roc_path = _find("pysaliency/roc_cython*.so")
        if roc_path:
            if not hasattr(np, "trapz"):  # removed in numpy 2.4; roc_cython still calls it
                np.trapz = np.trapezoid
            roc = _load_file("roc_cython", roc_path)

            def ps_auc(d):
                # pysaliency's AUC: region values against all pixels (region included)
                h, r = d["heatmap"].numpy().astype(np.float64), d["region"].numpy()
                return [roc.general_roc(h[i][r[i]], h[i].ravel())[0] for i in range(len(h))]

            found.setdefault("auc", {})["pysaliency"] = ps_auc
    try:
        import quantus

        def q_metric(cls, d):
            h = d["heatmap"].numpy()[:, None]
            r = d["region"].numpy()[:, None]
            metric = cls(disable_warnings=True, display_progressbar=False)
            x = np.zeros((len(h), 1, HEIGHT, WIDTH), dtype=np.float32)
            return metric(
                model=None, x_batch=x, y_batch=np.zeros(len(h), int), a_batch=h, s_batch=r
            )

        found.setdefault("pointing", {})["quantus"] = lambda d: q_metric(quantus.PointingGame, d)
        found.setdefault("auc", {})["quantus"] = lambda d: q_metric(quantus.AUC, d)
    except Exception as exc:  # optional peer with a long dependency list
        notes.append(f"quantus: not importable ({type(exc).__name__}: {exc})")
    return found, notes


# ----------------------------------------------------------------------------- main


def _rss_gib(field: str) -> float:
    """``VmRSS`` / ``VmHWM`` (peak) of this process in GiB, from /proc (Linux)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 2**20
    raise RuntimeError(f"{field} not in /proc/self/status")


def measure_memory(n: int, distinct: int, seed: int) -> None:
    """Print the peak resident memory of the battery on ``n`` maps, beyond the inputs."""
    base = make_maps(min(n, distinct), seed)
    reps = -(-n // len(base["heatmap"]))
    data = {k: v.repeat(reps, *([1] * (v.ndim - 1)))[:n].contiguous() for k, v in base.items()}
    del base
    inputs_gib = sum(v.numel() * v.element_size() for v in data.values()) / 2**30
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # reset the peak (VmHWM) to the current RSS
    before = _rss_gib("VmRSS")
    for name in BATTERY:
        OURS[name](data)
    peak = _rss_gib("VmHWM")
    print(
        f"battery on {n} maps of {HEIGHT}×{WIDTH}: inputs {inputs_gib:.2f} GiB; RSS {before:.2f} GiB "
        f"before, peak {peak:.2f} GiB during (+{peak - before:.2f} GiB for the metrics)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--maps", type=int, default=200)
    parser.add_argument("--reference-maps", type=int, default=20, help="maps for the slow loops")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--peers", help="directory of --no-deps peer installs, added to sys.path")
    parser.add_argument("--metrics", help="comma-separated rows to time (default: all)")
    parser.add_argument(
        "--memory",
        type=int,
        metavar="N",
        help="instead of timing, run the battery once on N maps and report the peak memory",
    )
    args = parser.parse_args()
    if args.peers:
        sys.path.append(args.peers)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(message)s")

    if args.memory:
        measure_memory(args.memory, args.maps, args.seed)
        return
    allocator = keep_freed_memory()
    load_before = os.getloadavg()
    data = make_maps(args.maps, args.seed)
    dev = {k: v.to(args.device) for k, v in data.items()}
    small = {k: v[: args.reference_maps] for k, v in data.items()}
    sync = torch.cuda.synchronize if args.device.startswith("cuda") else (lambda: None)

    def timed(fn, d):
        def run():
            out = fn(d)
            sync()
            return out

        return best_times(run, args.repeats)

    floor, floor_cpu = timed(lambda d: d["heatmap"].sum(dim=(1, 2)), dev)
    log.info("read floor: %.0f maps/s", args.maps / floor)
    refs = reference()
    peer_fns, notes = peers()
    rows = []
    total_ours = total_ref = total_cpu = 0.0
    names = args.metrics.split(",") if args.metrics else list(OURS)
    for name in names:
        fn = OURS[name]
        t_ref = best_time(lambda fn=refs[name]: fn(small), 1)
        ref_rate = args.reference_maps / t_ref
        if ref_rate * FAST_REFERENCE_S > args.maps:
            # fast enough to time on every map: ours and the reference take turns, so a change
            # in the machine's memory bandwidth hits both alike
            (t_ours, cpu_ours), (t_ref, _) = interleaved(
                [lambda fn=fn: fn(dev), lambda fn=refs[name]: fn(data)], args.repeats, sync
            )
            ref_rate = args.maps / t_ref
        else:
            t_ours, cpu_ours = timed(fn, dev)
        ours_small = OURS[name]({k: v.to(args.device) for k, v in small.items()}).cpu().numpy()
        err = float(np.max(np.abs(ours_small - refs[name](small))))
        rate = args.maps / t_ours
        if name in BATTERY:
            total_ours += 1 / rate
            total_ref += 1 / ref_rate
        peer_cells = []
        for peer, pfn in peer_fns.get(name, {}).items():
            t_peer = best_time(lambda pfn=pfn: pfn(small), 1)
            diff = np.max(np.abs(ours_small - np.asarray(pfn(small), dtype=np.float64)))
            peer_cells.append(
                f"{peer} {args.reference_maps / t_peer:,.0f}/s "
                f"({_times(rate * t_peer / args.reference_maps)}, max diff {diff:.1e})"
            )
        if name in BATTERY:
            total_cpu += cpu_ours / args.maps
        rows.append(
            f"| {name} | {rate:,.0f} | {1e3 * cpu_ours / args.maps:.2f} | {ref_rate:,.1f} | {_times(rate / ref_rate)} | "
            f"{(args.maps / floor) / rate:.1f}× | {err:.1e} | {'; '.join(peer_cells) or '—'} |"
        )
        log.info(rows[-1])

    def battery(d):
        with shared_ranks():  # as MetricSuite runs a batch: AUC and Spearman rank once
            return [OURS[name](d) for name in BATTERY]

    t_shared, cpu_shared = timed(battery, dev)
    print(
        f"device: {args.device}; maps: {args.maps} at {HEIGHT}×{WIDTH}; torch threads: {torch.get_num_threads()}"
    )
    print(
        "load average (1, 5, 15 min): before "
        + ", ".join(f"{x:.2f}" for x in load_before)
        + "; after "
        + ", ".join(f"{x:.2f}" for x in os.getloadavg())
    )
    print(f"allocator: {allocator}")
    print(
        f"reference loops at over {args.maps / FAST_REFERENCE_S:,.0f} maps/s are timed on all "
        f"{args.maps} maps, slower ones on {args.reference_maps}"
    )
    print(
        f"read floor: {args.maps / floor:,.0f} maps/s ({1e3 * floor_cpu / args.maps:.3f} CPU ms/map)\n"
    )
    print(
        "| metric | ours maps/s | ours CPU ms/map | reference maps/s | speed-up | floor / ours "
        "| max abs diff | peers maps/s (ours ×) |"
    )
    print("|---|---|---|---|---|---|---|---|")
    print("\n".join(rows))
    print(
        f"| **battery, separate calls** | {1 / total_ours:,.0f} | {1e3 * total_cpu:.2f} | {1 / total_ref:,.1f} | {total_ref / total_ours:,.0f}× | "
        f"{(args.maps / floor) * total_ours:.1f}× | | |"
    )
    print(
        f"| **battery, shared ranks** | {args.maps / t_shared:,.0f} | {1e3 * cpu_shared / args.maps:.2f} "
        f"| {1 / total_ref:,.1f} | {total_ref * args.maps / t_shared:,.0f}× "
        f"| {t_shared / floor:.1f}× | | |"
    )
    for note in notes:
        print(f"\n- {note}")


if __name__ == "__main__":
    main()
