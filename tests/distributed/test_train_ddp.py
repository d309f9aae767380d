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


PHOTO_WORKER = Path(__file__).with_name("ddp_photo_worker.py")


@pytest.mark.distributed
@pytest.mark.slow
def test_two_gloo_ranks_share_one_token_cache(tmp_path):
    fixtures = str(Path(__file__).resolve().parents[1] / "fixtures")
    sys.path.insert(0, fixtures)
    import numpy as np
    import torch
    from adapter_files import write_flickr
    from tiny_backbones import tiny_vit

    from groundbench.model import load_config
    from groundbench.model.backbone import load_backbone
    from groundbench.model.data import image_to_uint8
    from groundbench.types import load_image

    flickr = write_flickr(tmp_path / "flickr")
    backbone = tiny_vit(tmp_path / "vit")
    path = os.pathsep.join(filter(None, [str(WORKER.parents[2]), os.environ.get("PYTHONPATH")]))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": path}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node",
           "2", str(PHOTO_WORKER), str(tmp_path), str(flickr), str(backbone)]  # fmt: skip
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    assert [json.loads((tmp_path / f"rank{r}.json").read_text())["steps"] for r in (0, 1)] == [3, 3]
    (folder,) = (tmp_path / "run" / "token_cache").iterdir()
    index = json.loads((folder / "index.json").read_text())
    tokens = np.load(folder / "tokens.npy")
    # each rank wrote its own rows (rank r: images r, r + 2, ...): every row is its image's
    cfg = load_config(overrides=[f"model.backbone=hf:{backbone}", "model.image_size=32",
                                 "model.token_stride=8"])  # fmt: skip
    model = load_backbone(cfg.model)
    images = [flickr / "flickr30k-images" / f"{i}.jpg" for i in ("1000", "4000")]  # test split
    pixels = torch.stack([image_to_uint8(load_image(str(p)), 32) for p in images]).float() / 255
    expected = model(pixels).half().numpy()
    assert index["shape"] == [2, 16, 16]
    np.testing.assert_allclose(tokens, expected, atol=1e-3)
    assert (tmp_path / "run" / "model.safetensors").is_file()
