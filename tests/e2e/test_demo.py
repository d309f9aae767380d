"""The quick start's main job end to end, on a tiny synthetic set with the tiny preset."""

from __future__ import annotations

import pytest
import torch
from click.testing import CliRunner

from groundbench import demo
from groundbench.cli import main
from groundbench.leaderboard import load_entries
from groundbench.protocol import load_protocol
from groundbench.synthetic import PROBE_SPLITS, generate

PROTOCOLS = ("synth_test.albef", "synth_compositional.albef")


@pytest.mark.slow
def test_demo_trains_evaluates_and_builds_the_board_then_reuses_it(tmp_path, monkeypatch):
    torch.set_num_threads(1)
    scenes = {"train": 12, "val": 1, "test": 4} | {name: 2 for name in PROBE_SPLITS}
    data = generate(tmp_path / "synth", {"scenes": scenes}, seed=0, progress=False)
    out, board = tmp_path / "demo", tmp_path / "board"
    args = ["demo", "--out", str(out), "--board", str(board), "--preset", "tiny"]
    args += ["--data-root", str(data)]
    monkeypatch.setattr(demo, "synth_protocols", lambda: list(PROTOCOLS))
    first = CliRunner().invoke(main, args, catch_exceptions=False)
    assert first.exit_code == 0, first.output
    checkpoint = out / "model" / "model.safetensors"
    assert checkpoint.is_file()
    stamp = checkpoint.stat().st_mtime_ns
    second = CliRunner().invoke(main, args, catch_exceptions=False)
    assert second.exit_code == 0, second.output
    assert checkpoint.stat().st_mtime_ns == stamp  # the second run reused the checkpoint
    for name in PROTOCOLS:
        entries = load_entries(board, protocol_id=load_protocol(name).id)
        methods = sorted(e.method_name for e in entries)
        assert methods == ["centre_prior", "checkpoint", "oracle_box", "random", "uniform"]
    text = (board / "README.md").read_text()
    assert "synth_test.albef" in text and "| checkpoint | box-free |" in text
    assert "checkpoint:" in first.output and "board:" in first.output


def test_demo_reports_every_synthetic_protocol_but_val():
    names = demo.synth_protocols()
    assert "synth_test.albef" in names and "synth_relational.albef" in names
    assert all(n.startswith("synth_") for n in names)
    assert not any(n.startswith("synth_val.") for n in names)
