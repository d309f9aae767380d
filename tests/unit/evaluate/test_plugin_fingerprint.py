"""A plugin's fingerprint covers what it declares it loads; undeclared runs never resume."""

from __future__ import annotations

import json
import sys
import textwrap

import pytest

from groundbench.errors import MethodError
from groundbench.evaluate import evaluate
from groundbench.methods import resolve_method

# A wrapper that loads "weights" (a number) from WEIGHTS and points where they say: weight 1
# points at each sample's box, anything else at the top-left corner. It raises on the batch
# that starts at sample CRASH_AT (simulating an interrupted run).
PLUGIN = """
import os
from pathlib import Path

import torch

from groundbench.types import RawMaps

WEIGHTS = Path(os.environ["GB_TEST_WEIGHTS"])


def _maps(samples):
    good = WEIGHTS.read_text().strip() == "1"
    if samples[0].id == os.environ.get("GB_TEST_CRASH_AT"):
        raise RuntimeError("interrupted")
    maps = []
    for s in samples:
        m = torch.zeros(s.height, s.width)
        x0, y0, x1, y1 = (int(v) for v in s.boxes[0])
        if good:
            m[(y0 + y1) // 2, (x0 + x1) // 2] = 1.0
        else:
            m[0, 0] = 1.0
        maps.append(m)
    return RawMaps(tuple(s.id for s in samples), tuple(maps))


def undeclared(samples, images):
    return _maps(samples)


def by_file(samples, images):
    return _maps(samples)


def by_function(samples, images):
    return _maps(samples)


def nothing(samples, images):
    return _maps(samples)


for fn in (undeclared, by_file, by_function, nothing):
    fn.supervision = "training-free"
    fn.needs_images = False
by_file.depends_on = [WEIGHTS]
by_function.fingerprint = lambda: "weights=" + WEIGHTS.read_text().strip()
nothing.depends_on = []
"""


@pytest.fixture
def weights(tmp_path, monkeypatch):
    (tmp_path / "plugins").mkdir()
    (tmp_path / "plugins" / "gb_weights_plug.py").write_text(PLUGIN, encoding="utf-8")
    path = tmp_path / "weights.txt"
    path.write_text("0", encoding="utf-8")
    monkeypatch.setenv("GB_TEST_WEIGHTS", str(path))
    monkeypatch.syspath_prepend(str(tmp_path / "plugins"))
    yield path
    sys.modules.pop("gb_weights_plug", None)


def test_the_fingerprint_follows_declared_files_and_functions(weights):
    fps = {}
    for name in ("undeclared", "by_file", "by_function", "nothing"):
        m = resolve_method(f"plugin:gb_weights_plug:{name}")
        before = m.fingerprint()
        weights.write_text("1", encoding="utf-8")
        fps[name] = (before, m.fingerprint(), m.fingerprint_complete)
        weights.write_text("0", encoding="utf-8")
    assert fps["undeclared"][0] == fps["undeclared"][1] and not fps["undeclared"][2]
    assert fps["nothing"][0] == fps["nothing"][1] and fps["nothing"][2]
    for name in ("by_file", "by_function"):
        assert fps[name][0] != fps[name][1] and fps[name][2]


def test_a_folder_is_hashed_file_by_file(tmp_path, monkeypatch):
    ckpt = tmp_path / "ckpt"
    (ckpt / "sub").mkdir(parents=True)
    (ckpt / "sub" / "model.bin").write_bytes(b"\0\1")
    (tmp_path / "gb_dir_plug.py").write_text(
        textwrap.dedent(f"""
        def fn(samples, images):
            return None
        fn.supervision = "box-free"
        fn.depends_on = [{str(ckpt)!r}]
        """),
        encoding="utf-8",
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    m = resolve_method("plugin:gb_dir_plug:fn")
    before = m.fingerprint()
    (ckpt / "sub" / "model.bin").write_bytes(b"\0\2")
    assert m.fingerprint() != before
    (ckpt / "sub" / "model.bin").unlink()
    (ckpt / "sub").rmdir()
    ckpt.rmdir()
    with pytest.raises(MethodError, match=r"depends_on names '.*ckpt', which does not exist"):
        m.fingerprint()
    sys.modules.pop("gb_dir_plug", None)


def test_bad_declarations_are_clear_errors(tmp_path, monkeypatch):
    (tmp_path / "gb_bad_plug.py").write_text(
        textwrap.dedent("""
        def one_path(samples, images):
            return None
        one_path.supervision = "box-free"
        one_path.depends_on = "weights.pt"
        def empty(samples, images):
            return None
        empty.supervision = "box-free"
        empty.fingerprint = lambda: ""
        """),
        encoding="utf-8",
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(MethodError) as exc:
        resolve_method("plugin:gb_bad_plug:one_path")
    assert str(exc.value) == (
        "plugin:gb_bad_plug:one_path: depends_on must be a list of file or folder paths, "
        "got 'weights.pt'"
    )
    with pytest.raises(MethodError) as exc:
        resolve_method("plugin:gb_bad_plug:empty").fingerprint()
    assert str(exc.value) == (
        "plugin:gb_bad_plug:empty: empty.fingerprint() must return a non-empty string, got ''"
    )
    sys.modules.pop("gb_bad_plug", None)


def _run(protocol, root, out, method, **kw):
    return evaluate(str(protocol), method, out_dir=out, data_root=root, progress=False,
                    batch_size=2, **kw)  # fmt: skip


def test_an_undeclared_plugin_never_resumes_records(tiny, tmp_path, weights, monkeypatch):
    # Interrupted with old weights, resumed with new ones: the old records were reused.
    protocol, root = tiny
    out, method = tmp_path / "run", "plugin:gb_weights_plug:undeclared"
    monkeypatch.setenv("GB_TEST_CRASH_AT", "tiny/002")
    with pytest.raises(MethodError, match="interrupted"):
        _run(protocol, root, out, method)
    monkeypatch.delenv("GB_TEST_CRASH_AT")
    weights.write_text("1", encoding="utf-8")
    with pytest.raises(MethodError) as exc:
        _run(protocol, root, out, method)
    assert str(exc.value) == (
        f"{tmp_path / 'run.partial'} holds 2 records of undeclared, whose fingerprint covers "
        "its code only, so they may come from other weights and are not resumed; rerun with "
        "--no-resume, or declare what its maps depend on beyond its code: "
        "undeclared.depends_on = ['path/to/weights', ...] (files or folders, hashed by their "
        "bytes; [] if nothing) and/or undeclared.fingerprint = a function returning a string "
        "that changes with the weights (docs/plugins.md)"
    )
    result = _run(protocol, root, out, method, resume=False)
    assert result.report["metrics"]["pointing[albef]"]["all"]["mean"] == 1.0
    assert result.report["method"]["fingerprint_complete"] is False
    assert "it covers the plugin's code only, not its weights" in (out / "report.md").read_text()


@pytest.mark.parametrize("name", ["by_file", "by_function"])
def test_a_declared_plugin_resumes_only_records_of_the_same_weights(
    tiny, tmp_path, weights, monkeypatch, name
):
    protocol, root = tiny
    out, method = tmp_path / "run", f"plugin:gb_weights_plug:{name}"
    monkeypatch.setenv("GB_TEST_CRASH_AT", "tiny/002")
    with pytest.raises(MethodError, match="interrupted"):
        _run(protocol, root, out, method)
    monkeypatch.delenv("GB_TEST_CRASH_AT")
    weights.write_text("1", encoding="utf-8")
    result = _run(protocol, root, out, method)
    assert result.report["metrics"]["pointing[albef]"]["all"]["mean"] == 1.0
    assert result.report["method"]["fingerprint_complete"] is True
    assert "not its weights" not in (out / "report.md").read_text()
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    assert report["method"]["fingerprint"] == resolve_method(method).fingerprint()
