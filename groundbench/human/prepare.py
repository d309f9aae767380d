"""``groundbench human prepare``: from a study file to a self-contained study folder.

The folder holds ``study.yaml`` (a copy, where exclusions are later written), ``manifest.json``
(items, blinded slot orders per annotator, automatic metrics), ``img/<sha256>.png``,
``study.lock.json`` (the hashes of all of them) and ``tokens.json`` (mode 0600, one secret per
annotator). Gold items show the oracle-box map against another phrase's map of the same image
(or the centre prior when the image has no other phrase), so the right answer is known; a
click study's gold items are further bare images, answered right by a click in the box.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import secrets
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from groundbench.evaluation.data import dataset_fingerprint, load_split
from groundbench.evaluation.scoring import Scorer
from groundbench.human.render import overlay, plain, write_png
from groundbench.human.study import Study, StudyError, canonical_json, load_study
from groundbench.leaderboard.validate import validate_report_dir
from groundbench.methods import Method, resolve_method
from groundbench.metrics.suite import MetricSuite
from groundbench.protocol import Protocol, protocol_from_mapping
from groundbench.types import GroundingSample

MANIFEST, LOCK, TOKENS, STUDY_COPY = "manifest.json", "study.lock.json", "tokens.json", "study.yaml"
GOLD_ORACLE, GOLD_DECOY = "gold:oracle_box", "gold:other_phrase"


def hash_key(*parts: str) -> bytes:
    """blake2b of the NUL-joined parts: the seeded order of every draw and shuffle."""
    return hashlib.blake2b("\0".join(parts).encode("utf-8"), digest_size=16).digest()


def item_id(study_id: str, *parts: str) -> str:
    """A 16-hex opaque id; it reveals neither the sample nor the methods."""
    return hashlib.sha256("\0".join((study_id, *parts)).encode("utf-8")).hexdigest()[:16]


def slot_order(study_id: str, annotator: str, item: str, k: int) -> list[int]:
    """The screen order of an item's ``k`` slots for one annotator (slot indices, left first)."""
    return sorted(range(k), key=lambda s: hash_key(study_id, annotator, item, str(s)))


def stratified(samples: Sequence[GroundingSample], n: int, stratify: str, seed: int) -> list[str]:
    """Draw ``n`` sample ids, proportionally over tag sets (largest remainder), seeded."""
    groups: dict[str, list[str]] = defaultdict(list)
    for s in samples:
        groups[";".join(sorted(s.tags)) if stratify == "tags" else ""].append(s.id)
    total = len(samples)
    if n >= total:
        return sorted(s.id for s in samples)
    quota = {g: n * len(v) / total for g, v in groups.items()}
    take = {g: int(q) for g, q in quota.items()}
    rest = sorted(groups, key=lambda g: (-(quota[g] - take[g]), g))
    for g in rest[: n - sum(take.values())]:
        take[g] += 1
    chosen = []
    for g, ids in groups.items():
        chosen += sorted(ids, key=lambda i: hash_key(str(seed), i))[: take[g]]
    return sorted(chosen)


def prepare(study_path: str | Path, out: str | Path) -> Path:
    """Write the study folder ``out`` (refused if it exists and is not empty); return it."""
    study = load_study(study_path)
    out = Path(out)
    if out.exists() and any(out.iterdir()):
        raise StudyError(f"{out}: exists and is not empty; pass a new folder to --out")
    protocol = protocol_from_mapping(study.methods[0].protocol_canonical, name="study")
    if protocol.hash != study.methods[0].protocol_hash:
        raise StudyError(
            f"{study.methods[0].report_dir}: report.json's protocol hash does not match"
        )
    samples = load_split(protocol, study.data_root).samples
    if (
        dataset_fingerprint(samples)
        != _report(study.methods[0].report_dir)["dataset"]["fingerprint"]
    ):
        raise StudyError(
            f"{study.path}: the dataset differs from the one the reports scored; pass its folder "
            "as data_root"
        )
    by_id = {s.id: s for s in samples}
    others = other_phrases(samples)
    eligible = [s for s in samples if study.type == "pairwise" or len(others[s.id]) >= study.k - 1]
    if not eligible:
        raise StudyError(
            f"{study.path}: no image has {study.k} phrases with different boxes; lower k"
        )
    chosen = stratified(eligible, study.sample_n, study.stratify, study.design["sample"]["seed"])
    shown = {sid: [sid] + [o.id for o in others[sid][: study.k - 1]] for sid in chosen}
    if study.type != "choose":
        shown = {sid: [sid] for sid in chosen}
    need = sorted({x for v in shown.values() for x in v})
    (out / "img").mkdir(parents=True, exist_ok=True)
    images = {x: by_id[x].load_image() for x in need}
    maps = {}
    for ref in study.methods:
        method = resolve_method(ref.spec)
        if method.fingerprint() != ref.fingerprint:
            raise StudyError(
                f"{ref.report_dir}: method {ref.spec} now has another fingerprint than when it was "
                "evaluated; re-evaluate it"
            )
        if study.type != "click":
            maps[ref.name] = _render(protocol, method, [by_id[x] for x in need], images, study, out)
    names = [m.name for m in study.methods]
    if study.type == "pairwise":
        items = [
            {"id": item_id(study.study_id, sid, a, b), "sample": sid, "phrase": by_id[sid].phrase,
             "gold": None, "slots": [{"source": a, "img": maps[a][sid]}, {"source": b, "img": maps[b][sid]}]}
            for sid in chosen
            for a, b in itertools.combinations(names, 2)
        ]  # fmt: skip
    elif study.type == "click":  # the bare image; boxes (fractions of the image) score clicks
        items = [
            {"id": item_id(study.study_id, sid, "click"), "sample": sid, "phrase": by_id[sid].phrase,
             "gold": None, "boxes": fraction_boxes(by_id[sid]),
             "slots": [{"source": "image", "img": write_png(out / "img", plain(images[sid], study.rendering))}]}
            for sid in chosen
        ]  # fmt: skip
    else:  # choose: slot 0 is the map of this phrase, the others are other phrases' maps
        items = [
            {"id": item_id(study.study_id, sid, m, "choose"), "sample": sid, "phrase": by_id[sid].phrase,
             "gold": None, "target": 0,
             "slots": [{"source": m, "phrase_of": x, "img": maps[m][x]} for x in shown[sid]]}
            for sid in chosen
            for m in names
        ]  # fmt: skip
    gold = _gold_items(study, protocol, eligible, others, chosen, len(items), out)
    manifest = {
        "study_id": study.study_id,
        "type": study.type,
        "design": study.design,
        "methods": [m.name for m in study.methods],
        "metrics": _metrics(study, protocol, chosen),
        "items": sorted(items + gold, key=lambda it: it["id"]),
        "queues": _queues(study, [it["id"] for it in items], [it["id"] for it in gold]),
    }
    manifest_text = canonical_json(manifest) + "\n"
    (out / MANIFEST).write_text(manifest_text, encoding="utf-8")
    (out / STUDY_COPY).write_bytes(study.path.read_bytes())
    _write_tokens(out / TOKENS, study.annotators)
    lock = {
        "study_id": study.study_id,
        "manifest_sha256": hashlib.sha256(manifest_text.encode("utf-8")).hexdigest(),
        "images": sorted(p.stem for p in (out / "img").glob("*.png")),
    }
    (out / LOCK).write_text(canonical_json(lock) + "\n", encoding="utf-8")
    return out


def _report(folder: Path) -> dict[str, Any]:
    return json.loads((folder / "report.json").read_text(encoding="utf-8"))


def _render(protocol: Protocol, method: Method, samples, images, study: Study, out: Path) -> dict:
    """Run ``method`` and the protocol's pipeline; render each map; sample id → image id."""
    scorer = Scorer(protocol, method, torch.device("cpu"))
    ids = {}
    for start in range(0, len(samples), 16):
        chunk = samples[start : start + 16]
        got = scorer.maps(chunk, [images[s.id] for s in chunk])
        for row, s in enumerate(chunk):
            h, w = scorer.size_of(s)
            heat = got.heatmap[row, :h, :w].cpu().numpy()
            ids[s.id] = write_png(out / "img", overlay(images[s.id], heat, study.rendering))
    return ids


def fraction_boxes(sample: GroundingSample) -> list[list[float]]:
    """The sample's boxes as ``[x0, y0, x1, y1]`` fractions of the image width and height."""
    scale = np.array([sample.width, sample.height] * 2, dtype=np.float64)
    return [[float(v) for v in box / scale] for box in np.asarray(sample.boxes, dtype=np.float64)]


def other_phrases(samples: Sequence[GroundingSample]) -> dict[str, list[GroundingSample]]:
    """Per sample id, the other phrases of the same image whose boxes differ, by id."""
    by_image = defaultdict(list)
    for s in samples:
        by_image[s.image_path].append(s)
    return {
        s.id: sorted(
            (
                o
                for o in by_image[s.image_path]
                if o.id != s.id and not np.array_equal(o.boxes, s.boxes)
            ),
            key=lambda o: o.id,
        )
        for s in samples
    }


def _gold_items(
    study: Study, protocol, eligible, others, chosen, n_items: int, out: Path
) -> list[dict]:
    """``round(gold_rate × items per annotator)`` gold items, from samples not in the study.

    Pairwise: the oracle-box map against the oracle-box map of another phrase of the image
    (the centre prior when there is none). Choose: the oracle-box maps of the phrases.
    Click: the bare image, like a study item; a click inside one of its boxes is right.
    """
    per_annotator = n_items * study.per_item / len(study.annotators)
    n = int(round(study.gold_rate * per_annotator)) if study.gold_rate > 0 else 0
    if n == 0:
        return []
    taken = set(chosen)
    pool = [s for s in eligible if s.id not in taken] or list(eligible)
    pool = sorted(pool, key=lambda s: hash_key(str(study.seed), "gold", s.id))[:n]
    if study.type == "click":
        return [
            {"id": item_id(study.study_id, s.id, "gold"), "sample": s.id, "phrase": s.phrase,
             "gold": 0, "boxes": fraction_boxes(s),
             "slots": [{"source": "image", "img": write_png(out / "img", plain(s.load_image(), study.rendering))}]}
            for s in pool
        ]  # fmt: skip
    shown = {s.id: [s] + others[s.id][: study.k - 1] for s in pool}
    todo = {x.id: x for v in shown.values() for x in v}
    images = {x: todo[x].load_image() for x in sorted(todo)}
    oracle = _render(
        protocol, resolve_method("oracle_box"), [todo[x] for x in sorted(todo)], images, study, out
    )
    lone = [s for s in pool if len(shown[s.id]) < 2]
    centre = (
        _render(protocol, resolve_method("centre_prior"), lone, images, study, out) if lone else {}
    )
    items = []
    for s in pool:
        slots = [{"source": GOLD_ORACLE, "img": oracle[s.id]}]
        slots += [{"source": GOLD_DECOY, "img": oracle[o.id]} for o in shown[s.id][1:]]
        if len(slots) < 2:
            slots.append({"source": GOLD_DECOY, "img": centre[s.id]})
        item = {
            "id": item_id(study.study_id, s.id, "gold"),
            "sample": s.id,
            "phrase": s.phrase,
            "gold": 0,
            "slots": slots,
        }
        items.append(item | ({"target": 0} if study.type == "choose" else {}))
    return items


def _queues(study: Study, items: list[str], gold: list[str]) -> dict[str, list[dict]]:
    """Seeded round-robin: item ``i`` (in hash order) goes to annotators ``i … i+per_item-1``;
    every gold item goes to everyone; each queue is in its own hash order."""
    order = sorted(items, key=lambda i: hash_key(str(study.seed), "assign", i))
    names = study.annotators
    assigned: dict[str, list[str]] = {a: list(gold) for a in names}
    for i, it in enumerate(order):
        for j in range(study.per_item):
            assigned[names[(i + j) % len(names)]].append(it)
    sid = study.study_id
    return {
        a: [
            {"item": it, "order": slot_order(sid, a, it, study.k)}
            for it in sorted(assigned[a], key=lambda it: hash_key(sid, a, it))
        ]
        for a in names
    }


def _metrics(study: Study, protocol: Protocol, chosen: list[str]) -> dict[str, Any]:
    """Each method's automatic metrics: the report's mean over all samples, and the values of
    the chosen samples (None where undefined), with each metric's direction."""
    suite = MetricSuite(protocol.metrics)
    out: dict[str, Any] = {
        "keys": {s.key: {"higher_is_better": s.higher_is_better} for s in suite.specs}
    }
    for ref in study.methods:
        sub = validate_report_dir(ref.report_dir)
        rows = {sid: i for i, sid in enumerate(sub.table.ids)}
        per = {}
        for key in out["keys"]:
            values, codes = sub.table.column(key)
            per[key] = {
                "mean": sub.report["metrics"][key]["all"]["mean"],
                "samples": {
                    sid: (float(values[rows[sid]]) if codes[rows[sid]] == 0 else None)
                    for sid in chosen
                    if sid in rows
                },
            }
        out[ref.name] = per
    return out


def _write_tokens(path: Path, annotators: Sequence[str]) -> None:
    """One random token per annotator, in a file only its owner can read (0600)."""
    tokens = {a: secrets.token_urlsafe(24) for a in annotators}
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(json.dumps(tokens, sort_keys=True, indent=1) + "\n")
    os.chmod(path, 0o600)
