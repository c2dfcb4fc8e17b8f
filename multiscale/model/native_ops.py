"""The native operators (``torch.ops.multiscale.*``, ``ops/*.cpp``) and the swap to them.

They live in one shared library, ``multiscale/lib/libmultiscale_ops.so``, built with the
LAMMPS plugin (``make install``, ``pip install .``), which links it: a process holds them
once whether Python or LAMMPS loaded them first.  A model file that uses them needs
:func:`load` before it is read (``multiscale.load`` does it).

``fuse(model)`` swaps every module that has a native or inference version (its ``native()``
method: the ANI AEV's terms, an ANI model's stacked networks) in a copy of the model: what
``multiscale.export`` writes.
The native kernels have no second derivative, so training keeps the torch modules.
"""

from __future__ import annotations

import copy
from pathlib import Path

import torch

LIBRARY = Path(__file__).resolve().parent.parent / "lib" / "libmultiscale_ops.so"
_loaded = False


def load() -> bool:
    """Registers the native operators with torch, once; False where they are not built."""
    global _loaded
    if not _loaded and LIBRARY.is_file():
        torch.ops.load_library(str(LIBRARY))
        _loaded = True
    return _loaded


def missing(path, error: Exception) -> str | None:
    """Why the model file ``path`` failed to load with ``error``, when the cause is that it uses
    the native operators and they are not built; None otherwise."""
    if "multiscale::" in str(error) and not load():
        return (f"model file {path} uses multiscale's native operators, which are not built "
                f"({LIBRARY} is missing): run `make install` in the multiscale checkout (or "
                "`pip install .`)")
    return None


def fuse(model: torch.nn.Module, scripted: bool = True) -> torch.nn.Module:
    """A copy of ``model`` in which every submodule with a ``native(scripted)`` method (a torch
    module that has a native or inference version: the AEV's terms, an ANI model's stacked
    networks) is replaced by what that returns; ``model`` itself when there is none or the
    operators are not built.  ``scripted``: the copy is for TorchScript (True) or for
    torch.export (False), which some inference forms do not suit."""
    if not any(hasattr(m, "native") for m in model.modules()) or not load():
        return model
    fused = model.native(scripted) if hasattr(model, "native") else model
    fused = copy.deepcopy(fused)
    for module in list(fused.modules()):
        for name, child in list(module.named_children()):
            # a native module's own torch ``fallback`` (for other devices) stays as it is
            if hasattr(child, "native") and name != "fallback":
                setattr(module, name, child.native(scripted))
    return fused
