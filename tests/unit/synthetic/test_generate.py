"""Determinism, the dataset manifest, the output-root rules and ensure_default_dataset."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
import yaml

import groundbench.synthetic.writer as gen
from groundbench.synthetic import (
    PROBE_SPLITS,
    SPLITS,
    Settings,
    SynthesisError,
    ensure_default_dataset,
    generate,
)

SMALL = {"scenes": {s: 4 for s in SPLITS}}


@pytest.fixture(scope="module")
def tiny_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny dataset (seed 3) written once for this module."""
    scenes = {"train": 30, "val": 10, "test": 10} | {s: 8 for s in PROBE_SPLITS}
    return generate(
        tmp_path_factory.mktemp("synth") / "tiny", {"scenes": scenes}, seed=3, progress=False
    )


def _files(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


def test_same_seed_and_settings_give_byte_identical_files(tmp_path: Path) -> None:
    a = generate(tmp_path / "a", SMALL, seed=5, progress=False)
    b = generate(tmp_path / "b", SMALL, seed=5, progress=False, workers=2)
    fa, fb = _files(a), _files(b)
    assert fa.keys() == fb.keys()
    assert [k for k in fa if fa[k] != fb[k]] == []


def test_another_seed_changes_the_content_fingerprint(tmp_path: Path) -> None:
    a = yaml.safe_load(
        (generate(tmp_path / "a", SMALL, seed=1, progress=False) / "dataset.yaml").read_text()
    )
    b = yaml.safe_load(
        (generate(tmp_path / "b", SMALL, seed=2, progress=False) / "dataset.yaml").read_text()
    )
    assert a["fingerprint"] != b["fingerprint"]
    assert a["generator"]["settings"] == b["generator"]["settings"]


def test_manifest_lists_every_split_with_counts(tiny_root: Path) -> None:
    manifest = yaml.safe_load((tiny_root / "dataset.yaml").read_text())
    assert set(manifest["splits"]) == set(SPLITS)
    assert manifest["splits"]["train"]["kind"] == "captions"
    for split, info in manifest["splits"].items():
        lines = (tiny_root / f"{split}.jsonl").read_text().splitlines()
        assert info["records"] == len(lines)
        assert info["images"] == len(list((tiny_root / "images" / split).glob("*.png")))
    assert (
        Settings.from_mapping(manifest["generator"]["settings"]).to_dict()
        == manifest["generator"]["settings"]
    )
    assert manifest["generator"]["seed"] == 3


def test_fingerprint_hashes_the_content_files(tiny_root: Path) -> None:
    import hashlib

    digests = {
        str(p.relative_to(tiny_root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in tiny_root.rglob("*")
        if p.is_file() and p.name != "dataset.yaml"
    }
    manifest = yaml.safe_load((tiny_root / "dataset.yaml").read_text())
    assert gen.content_fingerprint(digests) == manifest["fingerprint"]


def test_non_empty_root_is_refused_and_left_untouched(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    with pytest.raises(SynthesisError) as err:
        generate(out, SMALL, progress=False)
    assert str(err.value) == (
        f"output folder {out} is not empty; nothing was written. Choose an empty or new "
        "folder, or pass --overwrite to replace an earlier dataset there"
    )
    with pytest.raises(SynthesisError, match="not a dataset this generator wrote"):
        generate(out, SMALL, progress=False, overwrite=True)
    assert [p.name for p in tmp_path.iterdir()] == ["out"]  # no temporary folder left behind
    assert [p.name for p in out.iterdir()] == ["keep.txt"]


def test_overwrite_replaces_an_earlier_dataset(tmp_path: Path) -> None:
    out = generate(tmp_path / "d", SMALL, seed=1, progress=False)
    before = (out / "dataset.yaml").read_text()
    generate(out, SMALL, seed=2, progress=False, overwrite=True)
    assert (out / "dataset.yaml").read_text() != before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d"]


def test_ensure_default_dataset_is_safe_when_raced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = []
    small = Settings.from_mapping(SMALL)

    def fake_settings() -> Settings:
        calls.append(1)
        return small

    monkeypatch.setattr(gen, "Settings", fake_settings)
    root = tmp_path / "synth"
    results: list[Path] = []
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            results.append(ensure_default_dataset(root))
        except BaseException as exc:  # noqa: BLE001 - surfaced by the assert below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert results == [root] * 3
    assert sorted(p.name for p in tmp_path.iterdir()) == ["synth"]
    before = (root / "dataset.yaml").stat()
    assert ensure_default_dataset(root) == root
    after = (root / "dataset.yaml").stat()  # present: not regenerated
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    assert calls  # the patched settings were used


def test_ensure_default_dataset_uses_the_data_environment_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GROUNDBENCH_DATA", str(tmp_path))
    assert gen.default_root() == tmp_path / "synth"
    (tmp_path / "synth").mkdir()
    (tmp_path / "synth" / "other").write_text("x")
    with pytest.raises(SynthesisError, match="holds no dataset.yaml"):
        ensure_default_dataset()


def test_ensure_default_dataset_warns_about_a_non_default_dataset(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    root = generate(tmp_path / "synth", SMALL, seed=0, progress=False)
    with caplog.at_level("WARNING", logger="groundbench.synthetic.writer"):
        assert ensure_default_dataset(root) == root
    assert [r.getMessage() for r in caplog.records] == [
        f"{root} holds a dataset made with other generator settings or seed than the current "
        "defaults; delete it to regenerate the default dataset"
    ]
