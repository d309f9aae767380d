"""Check a ``--device`` value before any work starts, so a bad one ends in one clear line."""

from __future__ import annotations

import torch

from groundbench.errors import GroundbenchError, did_you_mean

#: Device types groundbench runs on.
DEVICE_TYPES: tuple[str, ...] = ("cpu", "cuda", "mps")
# names people type for a device type torch spells otherwise
_ALIASES = {"gpu": "cuda", "nvidia": "cuda", "metal": "mps"}


class DeviceError(GroundbenchError):
    """A ``--device`` value names no torch device, or one this machine does not have."""


def resolve_device(name: str | torch.device) -> torch.device:
    """Return ``torch.device(name)`` once it is known to be usable here.

    Args:
        name: ``cpu``, ``cuda``, ``cuda:N`` or ``mps`` (``--device`` of the CLI).

    Raises:
        DeviceError: not a device string, a type groundbench does not run on, CUDA or MPS
            missing from this torch build or machine, or a CUDA index past the last GPU.

    Example:
        >>> resolve_device("cpu")
        device(type='cpu')
        >>> resolve_device("gpu")
        Traceback (most recent call last):
        ...
        groundbench.device.DeviceError: --device 'gpu' is not a torch device; use cpu, cuda (or cuda:N) or mps; did you mean 'cuda'?
    """
    if isinstance(name, torch.device):
        device = name
    else:
        text = str(name).strip().lower()
        hint = f"; did you mean {_ALIASES[text]!r}?" if text in _ALIASES else ""
        try:
            device = torch.device(text)
        except (RuntimeError, ValueError):
            device = None
        if device is None or device.type not in DEVICE_TYPES:
            hint = hint or did_you_mean(text.split(":")[0], DEVICE_TYPES)
            raise DeviceError(
                f"--device {name!r} is not a torch device; use cpu, cuda (or cuda:N) or mps{hint}"
            )
    if device.type == "cuda":
        _check_cuda(device)
    elif device.type == "mps" and not torch.backends.mps.is_available():
        raise DeviceError(
            f"--device {name!s}: this machine or torch build has no MPS (Apple GPU) support; "
            "use --device cpu"
        )
    return device


def _check_cuda(device: torch.device) -> None:
    if not torch.backends.cuda.is_built():
        raise DeviceError(
            f"--device {device}: this torch ({torch.__version__}) is built without CUDA; "
            "install a CUDA build of torch (pytorch.org) or use --device cpu"
        )
    count = torch.cuda.device_count()
    if count == 0:
        raise DeviceError(
            f"--device {device}: torch sees no CUDA GPU here (check the driver and "
            "CUDA_VISIBLE_DEVICES); use --device cpu"
        )
    if device.index is not None and device.index >= count:
        raise DeviceError(
            f"--device {device}: only {count} CUDA GPU(s) are visible (cuda:0 to cuda:{count - 1})"
        )
