"""``torchrun --nproc_per_node=2 -m groundbench evaluate`` equals one process, byte for byte."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from dataset_adapters import open_dataset
from groundbench.synthetic import PROBE_SPLITS, generate

PROTOCOL = """\
schema: 1
dataset: {adapter: native, name: synth-tiny, split: test}
region: boxes
pipeline: {normalise: minmax, threshold: {method: fraction_of_max, value: 0.5}}
metrics: [{name: pointing, variant: albef}, {name: box_acc, iou: 0.5}, {name: miou}]
bootstrap: {resamples: 100, seed: 0}
"""


@pytest.mark.distributed
@pytest.mark.slow
def test_two_gloo_ranks_write_the_single_process_report(tmp_path):
    scenes = {"train": 1, "val": 1, "test": 5} | {name: 1 for name in PROBE_SPLITS}
    data = generate(tmp_path / "synth", {"scenes": scenes}, seed=0, progress=False)
    protocol = tmp_path / "tiny.yaml"
    protocol.write_text(PROTOCOL, encoding="utf-8")
    args = ["evaluate", "--protocol", str(protocol), "--method", "random:7"]
    args += ["--data-root", str(data), "--batch-size", "3"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}

    single = [sys.executable, "-m", "groundbench", *args, "--out", str(tmp_path / "one")]
    done = subprocess.run(single, env=env, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]

    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
    launcher += ["--nproc-per-node", "2", "-m", "groundbench"]
    done = subprocess.run(
        [*launcher, *args, "--out", str(tmp_path / "two")],
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count("tag=all") == 3  # only rank 0 prints the headline table

    one, two = tmp_path / "one", tmp_path / "two"
    assert (one / "samples.csv").read_bytes() == (two / "samples.csv").read_bytes()
    reports = [json.loads((d / "report.json").read_text(encoding="utf-8")) for d in (one, two)]
    assert [r["environment"]["world_size"] for r in reports] == [1, 2]
    for r in reports:
        r.pop("environment")
    assert reports[0] == reports[1]
    n = len(open_dataset("native", data).load_samples("test"))
    assert reports[0]["dataset"]["n_samples"] == n > 2
    assert not (tmp_path / "two.partial").exists()


@pytest.mark.distributed
@pytest.mark.slow
def test_a_rank_that_reads_the_cache_late_still_gets_its_share(tmp_path):
    # Rank 0 used to append its first records before rank 1 had read the cache; rank 1
    # then partitioned a shorter pending list, a sample got no rank and rank 0 failed.
    scenes = {"train": 1, "val": 1, "test": 4} | {name: 1 for name in PROBE_SPLITS}
    data = generate(tmp_path / "synth", {"scenes": scenes}, seed=0, progress=False)
    protocol = tmp_path / "tiny.yaml"
    protocol.write_text(PROTOCOL, encoding="utf-8")
    worker = Path(__file__).with_name("ddp_evaluate_worker.py")
    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
    launcher += ["--nproc-per-node", "2", str(worker), "evaluate", "--protocol", str(protocol)]
    launcher += ["--method", "random:7", "--data-root", str(data), "--batch-size", "1"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "LATE_READ_S": "4"}
    done = subprocess.run(
        [*launcher, "--out", str(tmp_path / "two")],
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    n = len(open_dataset("native", data).load_samples("test"))
    rows = (tmp_path / "two" / "samples.csv").read_text(encoding="utf-8").splitlines()
    assert len(rows) == n + 1
