"""``--device`` is checked before any work: one clear error for a bad or missing device."""

from __future__ import annotations

import pytest
import torch

from groundbench.device import DeviceError, resolve_device
from groundbench.model.config import load_config
from groundbench.model.train import train


def test_cpu_is_accepted():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device(" CPU ") == torch.device("cpu")


@pytest.mark.parametrize(
    ("name", "hint"),
    [("gpu", "; did you mean 'cuda'?"), ("cdua", "; did you mean 'cuda'?"), ("xla", "")],
)
def test_not_a_device_names_the_valid_ones(name, hint):
    with pytest.raises(DeviceError) as err:
        resolve_device(name)
    assert str(err.value) == (
        f"--device {name!r} is not a torch device; use cpu, cuda (or cuda:N) or mps{hint}"
    )


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a CUDA GPU")
def test_cuda_without_a_gpu_is_refused():
    with pytest.raises(DeviceError, match=r"^--device cuda:1: .*use --device cpu$"):
        resolve_device("cuda:1")


def test_train_checks_the_device_before_reading_data(tmp_path):
    with pytest.raises(DeviceError, match="'gpu' is not a torch device"):
        train(load_config("tiny"), [], tmp_path / "run", device="gpu")
    assert not (tmp_path / "run").exists()
