"""Where a model runs: ``"cpu"`` (the default), ``"cuda"`` or ``"cuda:N"``.

One check for every Python engine (ASE, compiling, the benchmarks), in the words of the
LAMMPS plugin's ``device`` keyword: a GPU that is not there is a clear error, never a silent
fall-back to the CPU.
"""

from __future__ import annotations

import torch


class DeviceError(ValueError):
    """A device that does not exist here, or a spelling that is not a device."""


def resolve(device: "str | torch.device | None") -> torch.device:
    """The torch.device ``device`` names, checked: None and "cpu" are the CPU; "cuda" is the
    current GPU (cuda:0 unless torch.cuda.set_device chose another), "cuda:N" the N-th."""
    if device is None:
        return torch.device("cpu")
    try:
        chosen = torch.device(device)
    except (RuntimeError, TypeError):
        chosen = None
    if chosen is None or chosen.type not in ("cpu", "cuda"):
        raise DeviceError(f"device must be 'cpu', 'cuda' or 'cuda:N' (N = 0, 1, ...), got {device!r}")
    if chosen.type == "cpu":
        return torch.device("cpu")
    if not torch.backends.cuda.is_built():
        raise DeviceError(f"device {str(device)!r} asked for, but this torch ({torch.__version__}) is a "
                          f"CPU-only build: install the CUDA build of torch=={torch.__version__.split('+')[0]} "
                          "(the default wheel on Linux x86_64), or use device 'cpu' (the default)")
    count = torch.cuda.device_count()
    if count == 0:
        raise DeviceError(f"device {str(device)!r} asked for, but torch sees no CUDA GPU on this machine "
                          "(no NVIDIA driver or GPU, or CUDA_VISIBLE_DEVICES hides them): use device "
                          "'cpu' (the default)")
    index = torch.cuda.current_device() if chosen.index is None else chosen.index
    if index >= count:
        raise DeviceError(f"device {str(device)!r} asked for, but torch sees {count} GPU(s), "
                          f"cuda:0 to cuda:{count - 1}")
    return torch.device("cuda", index)
