"""README's heatmap-dump example, run exactly as written, from an empty folder.

The two fenced blocks after the ``heatmap-dump example`` marker are taken from README.md:
the Python block is saved as ``make_maps.py`` and the shell block runs line by line through
bash, with ``groundbench`` on PATH meaning this checkout. The default synthetic set is a
small one generated for the test (``GROUNDBENCH_DATA``).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from groundbench.synthetic import PROBE_SPLITS, generate

ROOT = Path(__file__).resolve().parents[2]


def readme_example() -> tuple[str, str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    start = text.index("<!-- heatmap-dump example")
    end = text.index("<!-- end of the heatmap-dump example -->")
    blocks = re.findall(r"```(\w+)\n(.*?)```", text[start:end], flags=re.S)
    assert [lang for lang, _ in blocks] == ["python", "bash"]
    return blocks[0][1], blocks[1][1]


@pytest.mark.slow
def test_readme_heatmap_dump_example_runs_end_to_end(tmp_path):
    python_block, shell_block = readme_example()
    scenes = {"train": 2, "val": 1, "test": 3} | {name: 1 for name in PROBE_SPLITS}
    generate(tmp_path / "data" / "synth", {"scenes": scenes}, progress=False)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    shim = bin_dir / "groundbench"
    shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m groundbench "$@"\n')
    shim.chmod(0o755)
    work = tmp_path / "clone"
    (work / "runs").mkdir(parents=True)
    (work / "make_maps.py").write_text(python_block)
    env = {
        **os.environ,
        "PATH": f"{bin_dir}{os.pathsep}{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "PYTHONPATH": str(ROOT),
        "GROUNDBENCH_DATA": str(tmp_path / "data"),
        "GROUNDBENCH_CACHE": str(tmp_path / "cache"),
    }
    done = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", shell_block],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    tasks = [json.loads(line) for line in (work / "runs" / "tasks.jsonl").open()]
    assert tasks and all(
        list(t) == ["id", "image", "width", "height", "text", "phrase", "span"] for t in tasks
    )
    assert all(Path(t["image"]).is_absolute() and Path(t["image"]).is_file() for t in tasks)
    report = json.loads((work / "runs" / "mine" / "report.json").read_text())
    assert report["dataset"]["n_samples"] == len(tasks)
    assert report["method"]["supervision"] == "training-free"
    assert report["model_card"]["source"] == "declared"
    board = (work / "runs" / "board" / "README.md").read_text()
    assert "| 1 | heatmaps:maps.npz | training-free |" in board
