"""Write a synthetic dataset in the native format, deterministically and (optionally) in parallel.

Scene ``i`` of split ``s`` draws all its randomness from
``SeedSequence(seed, spawn_key=(SPLITS.index(s), i))``, so scenes can be made in any order
or process and the files stay byte-identical for a seed and settings. Files are written to a
temporary sibling folder and renamed into place at the end: a crash never leaves a
half-written dataset at ``out``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Mapping
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from groundbench.progress import progress_bar
from groundbench.synthetic.render import paint, png_bytes
from groundbench.synthetic.scene import sample_scene
from groundbench.synthetic.settings import SPLITS, Settings, SynthesisError
from groundbench.synthetic.splits import captions_for, grounding_records

log = logging.getLogger(__name__)

DATASET_NAME = "synth"
#: Version of the native format written into ``dataset.yaml``.
FORMAT_VERSION = 1
_CHUNK = 64


def scene_rng(seed: int, split: str, index: int) -> np.random.Generator:
    """Return the generator of scene ``index`` of ``split`` for ``seed``."""
    return np.random.default_rng(
        np.random.SeedSequence(seed, spawn_key=(SPLITS.index(split), index))
    )


def make_scene(
    settings: Settings, seed: int, split: str, index: int
) -> tuple[bytes, list[dict[str, Any]]]:
    """Render one scene and its records.

    Returns:
        ``(png_bytes, records)``: the PNG file contents and the JSON-ready records (captions
        for ``train``, grounding records otherwise) with root-relative image paths.
    """
    rng = scene_rng(seed, split, index)
    scene = sample_scene(rng, settings, split)
    img = paint(
        scene.label, scene.objects, rng, noise_std=settings.noise_std, clutter=settings.clutter
    )
    image = f"images/{split}/{index:05d}.png"
    scene_id = f"{DATASET_NAME}/{split}/{index:05d}"
    if split == "train":
        base = {"image": image, "width": settings.width, "height": settings.height, "tags": []}
        records = [
            {"id": f"{scene_id}/c{k}", "text": text, **base}
            for k, text in enumerate(captions_for(scene, rng, settings))
        ]
    else:
        records = grounding_records(scene, rng, settings, split, scene_id, image)
    return png_bytes(img), records


def _make_chunk(
    args: tuple[Path, Settings, int, str, int, int],
) -> list[tuple[str, list[dict[str, Any]]]]:
    """Render scenes ``start:stop`` of a split, write their PNGs under ``root``.

    Returns ``(sha256 hex of the PNG, records)`` per scene; writing in the worker spreads
    the file-system cost over the processes.
    """
    root, settings, seed, split, start, stop = args
    out = []
    for i in range(start, stop):
        png, records = make_scene(settings, seed, split, i)
        (root / f"images/{split}/{i:05d}.png").write_bytes(png)
        out.append((hashlib.sha256(png).hexdigest(), records))
    return out


def generate(
    out: str | os.PathLike[str],
    settings: Settings | Mapping[str, Any] | None = None,
    *,
    seed: int = 0,
    overwrite: bool = False,
    progress: bool = True,
    workers: int = 1,
) -> Path:
    """Generate the synthetic dataset into ``out`` and return its root.

    Args:
        out: dataset root to create. It must not exist, be empty, or (with ``overwrite``)
            hold an earlier dataset (a folder with ``dataset.yaml``).
        settings: a :class:`Settings`, a mapping of settings (defaults filled in), or None.
        seed: the dataset seed; the same seed and settings give byte-identical files.
        overwrite: replace an existing dataset at ``out``.
        progress: show a tqdm progress bar on stderr.
        workers: processes rendering scenes (1 = in this process); does not change output.

    Returns:
        The dataset root (``out`` as a ``Path``).

    Raises:
        SynthesisError: bad settings, or ``out`` holds something that may not be replaced.
    """
    if not isinstance(settings, Settings):
        settings = Settings.from_mapping(settings)
    else:
        settings.check()
    out = Path(out).absolute()  # "." or "data/" still have a name and a parent
    _check_target(out, overwrite)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = _make_temp_dir(out)
    try:
        _write(tmp, settings, seed, progress, workers)
        if out.exists() and any(out.iterdir()):
            shutil.rmtree(out)  # _check_target allowed it: an earlier dataset, with overwrite
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    log.info("wrote synthetic dataset to %s", out)
    return out


def _check_target(out: Path, overwrite: bool) -> None:
    if out.exists() and not out.is_dir():
        raise SynthesisError(f"output {out} exists and is not a folder; choose another --out")
    if not out.exists() or not any(out.iterdir()):
        return
    if not overwrite:
        raise SynthesisError(
            f"output folder {out} is not empty; nothing was written. Choose an empty or new "
            "folder, or pass --overwrite to replace an earlier dataset there"
        )
    if not (out / "dataset.yaml").is_file():
        raise SynthesisError(
            f"refusing to overwrite {out}: it is not empty and holds no dataset.yaml, so it is "
            "not a dataset this generator wrote; choose another folder"
        )


def _write(root: Path, settings: Settings, seed: int, progress: bool, workers: int) -> None:
    total = sum(settings.scenes.values())
    digests: dict[str, str] = {}
    counts: dict[str, dict[str, Any]] = {}
    bar = progress_bar(
        total=total,
        desc="synth scenes",
        unit="scene",
        disable=not progress,
    )
    pool = ProcessPoolExecutor(workers) if workers > 1 else None
    try:
        for split in SPLITS:
            n = settings.scenes[split]
            (root / "images" / split).mkdir(parents=True, exist_ok=True)
            jobs = [
                (root, settings, seed, split, s, min(s + _CHUNK, n)) for s in range(0, n, _CHUNK)
            ]
            results = pool.map(_make_chunk, jobs) if pool else map(_make_chunk, jobs)
            n_records = 0
            with open(root / f"{split}.jsonl", "w", encoding="utf-8", newline="\n") as jf:
                index = 0
                for chunk in results:
                    for digest, records in chunk:
                        digests[f"images/{split}/{index:05d}.png"] = digest
                        for rec in records:
                            jf.write(
                                json.dumps(
                                    rec, sort_keys=True, ensure_ascii=False, separators=(",", ":")
                                )
                            )
                            jf.write("\n")
                        n_records += len(records)
                        index += 1
                    bar.update(len(chunk))
            digests[f"{split}.jsonl"] = _sha256_file(root / f"{split}.jsonl")
            kind = "captions" if split == "train" else "grounding"
            counts[split] = {"kind": kind, "images": n, "records": n_records}
    finally:
        bar.close()
        if pool:
            pool.shutdown()
    manifest = {
        "name": DATASET_NAME,
        "format_version": FORMAT_VERSION,
        "splits": counts,
        "generator": {"seed": seed, "settings": settings.to_dict()},
        "fingerprint": content_fingerprint(digests),
    }
    with open(root / "dataset.yaml", "w", encoding="utf-8", newline="\n") as f:
        yaml.safe_dump(
            manifest, f, sort_keys=True, allow_unicode=True, default_flow_style=None, width=100
        )


def _sha256_file(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def content_fingerprint(digests: Mapping[str, str]) -> str:
    """Return the sha256 hex over ``"path sha256\\n"`` lines of every content file, sorted.

    ``digests`` maps root-relative paths (``/``-separated) to their sha256 hex; everything but
    ``dataset.yaml`` is content.
    """
    h = hashlib.sha256()
    for rel in sorted(digests):
        h.update(f"{rel} {digests[rel]}\n".encode())
    return h.hexdigest()


def _make_temp_dir(target: Path) -> Path:
    """A fresh folder beside ``target`` to write into, then rename; it follows the umask."""
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    mask = os.umask(0)
    os.umask(mask)
    os.chmod(tmp, 0o777 & ~mask)  # mkdtemp makes 0700; the dataset is meant to be shared
    return tmp


def default_root() -> Path:
    """``$GROUNDBENCH_DATA/synth`` if that variable is set, else ``~/.cache/groundbench/synth``."""
    base = os.environ.get("GROUNDBENCH_DATA")
    return (
        Path(base) / DATASET_NAME if base else Path.home() / ".cache" / "groundbench" / DATASET_NAME
    )


def ensure_default_dataset(root: str | os.PathLike[str] | None = None) -> Path:
    """Generate the default dataset (default settings, seed 0) once and return its root.

    Safe when several processes call it at once: each generates into its own temporary
    folder and renames it into place; a process that loses the race discards its copy and
    uses the winner's.

    Args:
        root: where the dataset lives; None means :func:`default_root`.

    Raises:
        SynthesisError: ``root`` exists, is not empty and holds no dataset.
    """
    root = (Path(root) if root is not None else default_root()).absolute()
    if (root / "dataset.yaml").is_file():
        _warn_if_not_default(root)
        return root
    if root.exists() and root.is_dir() and any(root.iterdir()):
        raise SynthesisError(
            f"{root} is not empty and holds no dataset.yaml; remove it or pass another root"
        )
    root.parent.mkdir(parents=True, exist_ok=True)
    tmp = _make_temp_dir(root)
    try:
        _write(tmp, Settings(), 0, progress=True, workers=min(2, os.cpu_count() or 1))
        try:
            os.replace(tmp, root)  # atomic; fails if another process already put one there
        except OSError:
            if not (root / "dataset.yaml").is_file():
                raise
            log.info("another process generated %s first; using it", root)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return root


def _warn_if_not_default(root: Path) -> None:
    """Log a warning when the dataset at ``root`` was not made with today's defaults."""
    with open(root / "dataset.yaml", encoding="utf-8") as f:
        generator = (yaml.safe_load(f) or {}).get("generator") or {}
    if generator.get("seed") != 0 or generator.get("settings") != Settings().to_dict():
        log.warning(
            "%s holds a dataset made with other generator settings or seed than the current "
            "defaults; delete it to regenerate the default dataset",
            root,
        )
