"""Study files and prepared folders: validation, hashing, blinding, rendering, gold items."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from human_study import write_study

from groundbench.human.prepare import prepare, slot_order, stratified
from groundbench.human.render import overlay
from groundbench.human.study import StudyError, load_study, read_analysis_settings


@pytest.fixture(scope="module")
def spec(prepared: Path) -> dict:
    return json.loads((prepared / "study.yaml").read_text())


def _load(tmp_path: Path, spec: dict, **change):
    data = {**spec, **change}
    path = tmp_path / "study.yaml"
    path.write_text(json.dumps(data))
    return load_study(path)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"typ": "pairwise"}, "unknown key 'typ'"),
        ({"type": "rating"}, "type must be one of"),
        ({"per_item": 4}, "per_item is 4"),
        ({"gold_rate": 1.5}, "gold_rate"),
        ({"annotators": ["a b"]}, "annotators"),
        ({"annotators": ["x", "x"]}, "twice"),
        ({"rendering": {"colormap": "rainbow"}}, "colormap"),
        ({"rendering": {"alpha": "half"}}, "alpha"),
        ({"sample": {"n": 0}}, "sample.n"),
        ({"exclude": {"items": ["../x"]}}, "exclude.items"),
        ({"schema": 2}, "schema"),
    ],
)
def test_invalid_studies_are_refused_with_the_key(tmp_path, spec, change, message) -> None:
    with pytest.raises(StudyError, match=message):
        _load(tmp_path, spec, **change)


def test_methods_must_be_evaluated_reports_of_one_protocol(tmp_path, spec) -> None:
    with pytest.raises(StudyError, match="at least 2"):
        _load(tmp_path, spec, methods=spec["methods"][:1])
    with pytest.raises(StudyError, match="does not exist"):
        _load(tmp_path, spec, methods=[spec["methods"][0], str(tmp_path / "nothing")])
    with pytest.raises(StudyError, match="listed twice"):
        _load(tmp_path, spec, methods=[spec["methods"][0]] * 2)


def test_duplicate_yaml_keys_are_refused(tmp_path) -> None:
    path = tmp_path / "study.yaml"
    path.write_text("schema: 1\nschema: 1\n")
    with pytest.raises(StudyError, match="duplicate key"):
        load_study(path)


def test_design_and_analysis_hash_separately(tmp_path, spec) -> None:
    base = _load(tmp_path, spec)
    assert _load(tmp_path, spec, about="other words").study_id == base.study_id
    assert _load(tmp_path, spec, data_root="elsewhere").study_id == base.study_id
    excluded = _load(tmp_path, spec, exclude={"annotators": ["ann2"]}, min_response_ms=900)
    assert excluded.study_id == base.study_id
    assert excluded.analysis_hash != base.analysis_hash
    assert _load(tmp_path, spec, seed=1).study_id != base.study_id
    assert _load(tmp_path, spec, rendering={"alpha": 0.4}).study_id != base.study_id


def test_prepared_folder(prepared: Path, spec) -> None:
    manifest = json.loads((prepared / "manifest.json").read_text())
    lock = json.loads((prepared / "study.lock.json").read_text())
    text = (prepared / "manifest.json").read_bytes()
    assert lock["manifest_sha256"] == hashlib.sha256(text).hexdigest()
    names = sorted(p.stem for p in (prepared / "img").glob("*.png"))
    assert lock["images"] == names
    for name in names:  # named by content
        assert hashlib.sha256((prepared / "img" / f"{name}.png").read_bytes()).hexdigest() == name
    study_items = [it for it in manifest["items"] if it["gold"] is None]
    gold = [it for it in manifest["items"] if it["gold"] is not None]
    assert len(study_items) == spec["sample"]["n"] and gold
    for annotator, queue in manifest["queues"].items():
        ids = [q["item"] for q in queue]
        assert {g["id"] for g in gold} <= set(ids) and len(set(ids)) == len(ids)
        for q in queue:
            assert q["order"] == slot_order(manifest["study_id"], annotator, q["item"], 2)
    per_item = {it["id"]: 0 for it in study_items}
    for queue in manifest["queues"].values():
        for q in queue:
            if q["item"] in per_item:
                per_item[q["item"]] += 1
    assert set(per_item.values()) == {spec["per_item"]}
    orders = {tuple(q["order"]) for queue in manifest["queues"].values() for q in queue}
    assert orders == {(0, 1), (1, 0)}
    assert manifest["metrics"]["centre_prior"]["soft_iou"]["mean"] is not None


def test_prepare_is_reproducible_and_refuses_a_used_folder(prepared: Path, tmp_path) -> None:
    spec_path = prepared.parent / "spec" / "study.yaml"
    again = prepare(spec_path, tmp_path / "S2")
    assert (again / "manifest.json").read_bytes() == (prepared / "manifest.json").read_bytes()
    assert (again / "study.lock.json").read_bytes() == (prepared / "study.lock.json").read_bytes()
    assert (again / "tokens.json").read_bytes() != (prepared / "tokens.json").read_bytes()
    with pytest.raises(StudyError, match="not empty"):
        prepare(spec_path, again)


def test_exclusions_are_read_from_the_folder_copy(study: Path) -> None:
    data = json.loads((study / "study.yaml").read_text())
    data["exclude"] = {"annotators": ["ann3"], "items": []}
    (study / "study.yaml").write_text(json.dumps(data))
    assert read_analysis_settings(study / "study.yaml")["exclude"]["annotators"] == ["ann3"]


def test_rendering_scales_each_map_on_its_own() -> None:
    image = np.random.default_rng(0).integers(0, 255, (20, 30, 3), dtype=np.uint8)
    heat = np.random.default_rng(1).random((5, 6)).astype(np.float32)
    rendering = {"colormap": "inferno", "alpha": 0.5, "width": 60}
    a = overlay(image, heat, rendering)
    assert a.shape == (40, 60, 3) and a.dtype == np.uint8
    np.testing.assert_array_equal(a, overlay(image, heat * 7.0 + 3.0, rendering))
    flat = overlay(image, np.zeros((5, 6)), rendering)
    assert not np.array_equal(a, flat)


def test_stratified_draw_is_seeded_and_proportional() -> None:
    class S:
        def __init__(self, i: int, tag: str) -> None:
            self.id, self.tags = f"s{i:03d}", frozenset({tag})

    samples = [S(i, "x" if i < 30 else "y") for i in range(40)]
    got = stratified(samples, 8, "tags", seed=0)
    assert got == stratified(samples, 8, "tags", seed=0) != stratified(samples, 8, "tags", seed=1)
    assert sum(s < "s030" for s in got) == 6 and len(got) == 8


def test_study_id_does_not_depend_on_where_the_file_lies(tmp_path, prepared) -> None:
    spec = json.loads((prepared / "study.yaml").read_text())
    path = write_study(tmp_path / "w", Path(spec["data_root"]), [Path(m) for m in spec["methods"]])
    assert load_study(path).study_id == load_study(prepared / "study.yaml").study_id
