"""DDP training on CPU: two gloo processes under torchrun train the same model."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

WORKER = Path(__file__).with_name("ddp_train_worker.py")


@pytest.mark.distributed
@pytest.mark.slow
def test_two_gloo_ranks_train_in_lock_step(tmp_path):
    # the workers import this checkout's groundbench, not whichever copy is installed
    path = os.pathsep.join(filter(None, [str(WORKER.parents[2]), os.environ.get("PYTHONPATH")]))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": path}
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc-per-node",
        "2",
        str(WORKER),
        str(tmp_path),
    ]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "find_unused_parameters" not in done.stderr  # no DDP warning on every run
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    # 32 images / (2 ranks x 4 images) = 4 steps per epoch; 8 steps
    assert ranks[0]["steps"] == ranks[1]["steps"] == 8
    assert ranks[0]["world"] == ranks[1]["world"] == 2
    assert ranks[0]["log_rows"] == 8 and ranks[1]["log_rows"] is None  # only rank 0 logs
    assert (tmp_path / "run" / "model.safetensors").is_file()
    assert (tmp_path / "run" / "log.csv").is_file()
