"""``groundbench synth`` writes a dataset the native adapter reads, and refuses bad input."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from dataset_adapters import open_dataset
from groundbench.cli import main

ARGS = [
    "--no-progress", "--workers", "1", "--set", "height=48", "--set", "width=48",
    *[f"--set=scenes.{s}=2" for s in ("train", "val", "test", "compositional", "relational")],
    *[f"--set=scenes.{s}=1" for s in ("distractors", "paraphrase", "occlusion", "off_centre", "small")],
]  # fmt: skip


def test_synth_writes_a_readable_dataset_and_refuses_to_overwrite(tmp_path: Path) -> None:
    out = tmp_path / "d"
    res = CliRunner().invoke(main, ["synth", "--out", str(out), *ARGS])
    assert res.exit_code == 0, res.output
    assert res.output.strip() == str(out)
    samples = open_dataset("native", out).load_samples("test")
    assert samples and samples[0].width == 48
    again = CliRunner().invoke(main, ["synth", "--out", str(out), *ARGS])
    assert again.exit_code == 1
    assert "is not empty; nothing was written" in again.output
    assert (
        CliRunner().invoke(main, ["synth", "--out", str(out), "--overwrite", *ARGS]).exit_code == 0
    )


def test_synth_reports_bad_settings(tmp_path: Path) -> None:
    res = CliRunner().invoke(
        main, ["synth", "--out", str(tmp_path / "x"), "--set", "max_objects=40"]
    )
    assert res.exit_code == 1
    assert (
        "Error: max_objects=40 large objects (19 px) do not fit in 64×64 px; at most 9 fit"
        in res.output
    )
    res = CliRunner().invoke(main, ["synth", "--out", str(tmp_path / "x"), "--set", "noise"])
    assert res.exit_code == 2 and "'noise' is not KEY=VALUE" in res.output
    assert not (tmp_path / "x").exists()
