"""``--out``: only a report directory is ever replaced; one run at a time; no litter."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from groundbench.errors import MethodError
from groundbench.evaluate import evaluate
from groundbench.evaluation.workdir import OutputDirError, RunLock


def _run(protocol, root, out, method="oracle_box"):
    return evaluate(str(protocol), method, out_dir=out, data_root=root, progress=False)


@pytest.mark.parametrize("slash", ["", "/"])
def test_a_folder_that_is_not_a_report_is_refused_and_kept(tiny, tmp_path, slash):
    # It used to be moved into OUT.partial/previous and deleted with it.
    protocol, root = tiny
    out = tmp_path / "thesis"
    out.mkdir()
    (out / "chapter1.tex").write_text("years of work", encoding="utf-8")
    with pytest.raises(OutputDirError) as exc:
        _run(protocol, root, str(out) + slash)
    assert str(exc.value) == (
        f"--out {out}{slash}: exists and is not a report directory written by groundbench "
        "evaluate, so it is left untouched; choose a new --out (or an empty folder)"
    )
    assert (out / "chapter1.tex").read_text(encoding="utf-8") == "years of work"
    assert not (tmp_path / "thesis.partial").exists()


def test_an_existing_report_or_empty_folder_is_replaced(tiny, tmp_path):
    protocol, root = tiny
    out = tmp_path / "run"
    out.mkdir()
    _run(protocol, root, out)
    _run(protocol, root, out, method="uniform")
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    assert report["method"]["name"] == "uniform"
    assert sorted(os.listdir(out)) == ["figures", "report.json", "report.md", "samples.csv"]
    assert not (tmp_path / "run.partial").exists()


def test_out_dot_and_a_file_are_refused(tiny, tmp_path, monkeypatch):
    protocol, root = tiny
    monkeypatch.chdir(tmp_path)
    with pytest.raises(OutputDirError) as exc:
        _run(protocol, root, ".")
    assert str(exc.value) == (
        "--out .: is the working directory or one of its parents; name a new report "
        "directory, e.g. --out runs/my-method"
    )
    (tmp_path / "afile").write_text("x", encoding="utf-8")
    with pytest.raises(OutputDirError) as exc:
        _run(protocol, root, "afile")
    assert str(exc.value) == (
        "--out afile: exists and is not a directory; remove it or choose another --out"
    )


def test_a_second_run_into_the_same_out_is_refused_naming_the_holder(tiny, tmp_path):
    protocol, root = tiny
    out = tmp_path / "run"
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLD, str(out)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(OutputDirError) as exc:
            _run(protocol, root, out)
        message = str(exc.value)
        assert message.startswith(
            f"--out {out}: another groundbench evaluate is writing it (pid {holder.pid} on "
        )
        assert message.endswith("); wait for it to finish or choose another --out")
    finally:
        holder.kill()
        holder.wait()
    _run(protocol, root, out)  # the lock died with its holder
    assert (out / "report.json").is_file()


_HOLD = """
import sys, time
from pathlib import Path
from groundbench.evaluation.workdir import RunLock
RunLock(Path(sys.argv[1])).acquire()
print("locked", flush=True)
time.sleep(60)
"""


def test_a_failed_run_leaves_no_partial_folder_without_records(tiny, tmp_path, monkeypatch):
    # A plugin that raises used to end in a traceback and leave OUT.partial/ behind.
    protocol, root = tiny
    (tmp_path / "plugins").mkdir()
    (tmp_path / "plugins" / "broken_maps.py").write_text(_BROKEN, encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path / "plugins"))
    out = tmp_path / "run"
    with pytest.raises(MethodError) as exc:
        _run(protocol, root, out, method="plugin:broken_maps:maps")
    assert str(exc.value) == (
        "plugin:broken_maps:maps raised ZeroDivisionError: division by zero on a batch of "
        "6 samples (first: 'tiny/000'); fix the plugin or run it on that sample to debug"
    )
    assert not out.exists() and not (tmp_path / "run.partial").exists()


_BROKEN = """
def maps(samples, images):
    return 1 / 0


maps.supervision = "training-free"
maps.needs_images = False
"""


def test_the_lock_is_reentrant_for_nobody(tmp_path):
    lock = RunLock(tmp_path / "out").acquire()
    with pytest.raises(OutputDirError):
        RunLock(tmp_path / "out").acquire()
    lock.release()
    RunLock(tmp_path / "out").acquire().release()
