"""The quick start's main job end to end, on a tiny synthetic set with the tiny preset."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from groundbench import demo
from groundbench.cli import main
from groundbench.leaderboard import load_entries
from groundbench.protocol import load_protocol
from groundbench.synthetic import PROBE_SPLITS, generate

PROTOCOLS = ("synth_test.albef", "synth_compositional.albef")
METHODS = ["centre_prior", "checkpoint", "oracle_box", "random", "uniform"]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    scenes = {"train": 12, "val": 1, "test": 4} | {name: 2 for name in PROBE_SPLITS}
    return generate(tmp_path_factory.mktemp("synth") / "synth", {"scenes": scenes}, progress=False)


@pytest.fixture
def run(data, monkeypatch):
    """Invoke ``groundbench demo --preset tiny`` on the tiny set; returns the click result."""
    torch.set_num_threads(1)
    monkeypatch.setattr(demo, "synth_protocols", lambda: list(PROTOCOLS))

    def invoke(out, *extra):
        args = ["demo", "--out", str(out), "--preset", "tiny", "--data-root", str(data), *extra]
        return CliRunner().invoke(main, args, catch_exceptions=False)

    return invoke


def _report_stamps(out):
    return {p: p.stat().st_mtime_ns for p in sorted((out / "reports").glob("*/*/report.json"))}


@pytest.mark.slow
def test_demo_builds_its_own_board_then_reuses_everything(run, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # a committed ./leaderboard would be here: it must stay absent
    out = Path("demo")
    first = run(out)
    assert first.exit_code == 0, first.output
    assert not (tmp_path / "leaderboard").exists()
    board = out / "board"
    for name in PROTOCOLS:
        entries = load_entries(board, protocol_id=load_protocol(name).id)
        assert sorted(e.method_name for e in entries) == METHODS
    assert "| checkpoint | box-free |" in (board / "README.md").read_text()
    # stages on stderr, each evaluation named and counted
    assert "groundbench demo: data: synthetic set at" in first.stderr
    assert "groundbench demo: training: preset tiny, 20 steps" in first.stderr
    assert "evaluation 1 of 10: synth_test.albef × uniform →" in first.stderr
    assert "evaluation 10 of 10: synth_compositional.albef × checkpoint →" in first.stderr
    assert "evaluate synth_compositional.albef × checkpoint: 100%" in first.stderr  # bars named
    assert f"groundbench demo: board: adding 10 reports to {board}" in first.stderr
    # stdout: the compact summary, no Markdown, and where the files are
    assert "Leaderboard: 10 entries, 2 protocols." in first.stdout
    assert "Robustness (synth, pointing[albef])" in first.stdout
    assert all(len(line) <= 120 for line in first.stdout.splitlines())
    assert "|" not in first.stdout and "![" not in first.stdout and "###" not in first.stdout
    assert f"board:      {board / 'leaderboard.html'}" in first.stdout

    checkpoint = out / "model" / "model.safetensors"
    stamp, reports = checkpoint.stat().st_mtime_ns, _report_stamps(out)
    assert len(reports) == 10
    second = run(out)
    assert second.exit_code == 0, second.output
    assert checkpoint.stat().st_mtime_ns == stamp
    assert _report_stamps(out) == reports  # nothing re-evaluated
    assert f"training: reusing {checkpoint}" in second.stderr
    assert second.stderr.count(": up to date in ") == 10
    assert " → " not in second.stderr
    assert len(load_entries(board)) == 10


@pytest.mark.slow
def test_demo_reevaluates_a_report_whose_fingerprint_differs(run, tmp_path):
    out = tmp_path / "demo"
    assert run(out).exit_code == 0
    stale = out / "reports" / "synth_test.albef" / "uniform" / "report.json"
    report = json.loads(stale.read_text())
    report["dataset"]["fingerprint"] = "0" * 64
    stale.write_text(json.dumps(report))
    before = _report_stamps(out)
    second = run(out)
    assert second.exit_code == 0, second.output
    changed = [p for p, t in _report_stamps(out).items() if before[p] != t]
    assert changed == [stale]
    assert "evaluation 1 of 10: synth_test.albef × uniform →" in second.stderr


@pytest.mark.slow
def test_demo_retrains_when_the_requested_config_differs(run, tmp_path):
    out = tmp_path / "demo"
    assert run(out).exit_code == 0
    checkpoint = out / "model" / "model.safetensors"
    stamp = checkpoint.stat().st_mtime_ns
    second = run(out, "--set", "train.steps=3")
    assert second.exit_code == 0, second.output
    assert (
        "train.steps 20 → 3" in second.stderr and "retraining it with preset tiny" in second.stderr
    )
    assert checkpoint.stat().st_mtime_ns != stamp
    from groundbench.model.checkpoint import read_metadata

    assert read_metadata(checkpoint)["config"]["train"]["steps"] == 3
    # every checkpoint report was recomputed: the method fingerprint changed
    assert second.stderr.count("× checkpoint →") == 2
    assert second.stderr.count("× uniform: up to date") == 2


def test_demo_refuses_an_unknown_preset_even_with_a_checkpoint(run, tmp_path):
    out = tmp_path / "demo"
    (out / "model").mkdir(parents=True)
    (out / "model" / "model.safetensors").write_bytes(b"not consulted")
    result = run(out, "--preset", "nosuchpreset")
    assert result.exit_code == 1
    assert "unknown model preset 'nosuchpreset'" in result.output
    assert not (out / "reports").exists()


@pytest.mark.slow
def test_demo_files_follow_the_umask(run, tmp_path):
    old = os.umask(0o022)
    try:
        out = tmp_path / "demo"
        assert run(out).exit_code == 0
    finally:
        os.umask(old)
    private = [
        str(p.relative_to(out))
        for p in [out, *out.rglob("*")]
        if not p.stat().st_mode & stat.S_IROTH
    ]
    assert private == []
    assert stat.S_IMODE((out / "model" / "model.safetensors").stat().st_mode) == 0o644
    assert stat.S_IMODE((out / "board" / "leaderboard.html").stat().st_mode) == 0o644


def test_synthetic_set_follows_the_umask(tmp_path):
    old = os.umask(0o022)
    try:
        root = generate(tmp_path / "synth", {"scenes": {"train": 1}}, progress=False)
    finally:
        os.umask(old)
    assert stat.S_IMODE(root.stat().st_mode) == 0o755
    assert all(p.stat().st_mode & stat.S_IROTH for p in root.rglob("*"))


def test_demo_reports_every_synthetic_protocol_but_val():
    names = demo.synth_protocols()
    assert "synth_test.albef" in names and "synth_relational.albef" in names
    assert all(n.startswith("synth_") for n in names)
    assert not any(n.startswith("synth_val.") for n in names)


def test_demo_board_defaults_to_the_run_folder():
    from groundbench.cli.demo import demo_command

    board = next(p for p in demo_command.params if p.name == "board")
    assert board.default is None
    assert "OUT/board" in board.help and "leaderboard/" in board.help


@pytest.mark.parametrize(("tty", "interval"), [(True, 0.5), (False, 30.0)])
def test_evaluate_bar_is_named_and_rare_off_a_terminal(data, tmp_path, monkeypatch, tty, interval):
    import groundbench.evaluate as evaluate_module
    import groundbench.progress as progress_module

    bars = []

    class Bar(progress_module.tqdm):
        def __init__(self, *args, **kwargs):
            bars.append(kwargs)
            super().__init__(*args, **{**kwargs, "disable": True})

    monkeypatch.setattr(progress_module, "tqdm", Bar)
    monkeypatch.setattr(progress_module.sys.stderr, "isatty", lambda: tty, raising=False)
    evaluate_module.evaluate(
        "synth_test.albef", "uniform", out_dir=tmp_path / "r", data_root=data, progress=True
    )
    (bar,) = bars
    assert bar["desc"] == "evaluate synth_test.albef × uniform"
    assert bar["mininterval"] == interval
