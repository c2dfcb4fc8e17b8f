"""``multiscale compile``: a TorchScript model file compiled to a ``.pt2`` (multiscale.model.compiled).

The file's Python classes are rebuilt around its weights (multiscale.model.unscript), given
the native operators where they have them (native_ops.fuse), traced and compiled, and the
package is checked against the TorchScript module itself.
"""

from __future__ import annotations

import copy
import dataclasses
import os
from pathlib import Path


from . import native_ops
from .artifact import kind_of, load as load_any
from .compiled import DTYPES, SUFFIX, energy_and_gradient, refusal, sample_system, write
from .contract import ModelContractError
from .unscript import unscript


def compile_file(source, path: str | os.PathLike, dtype: str | None = None, log=None,
                 device: str | None = None) -> Path:
    """The TorchScript model file (or shipped model's name) ``source`` written as the ``.pt2`` ``path``.

    dtype: "float32" or "float64" to compute in another dtype than the file's (as
    ``pair_style ... dtype`` casts); log: a callable for progress lines; device: "cpu" (default)
    or "cuda[:N]", which needs a GPU here.
    """
    loaded = load_any(source)
    if loaded.compiled:
        raise ModelContractError(f"{loaded.path} is already compiled; compile the .pt it came from")
    if kind_of(loaded.metadata) != "potential":   # a crack-field predictor: its forward, no backward
        module = unscript(loaded.module)
        return write(module, path, loaded.metadata, reference=loaded.module, log=log, device=device)
    why = refusal(loaded.metadata)
    if why:
        raise ModelContractError(f"{loaded.path} cannot be compiled to {SUFFIX}: {why}")
    metadata, reference = loaded.metadata, loaded.module
    if dtype is not None and dtype != metadata.dtype:
        metadata = dataclasses.replace(metadata, dtype=dtype)
        reference = copy.deepcopy(reference).to(DTYPES[dtype])
    module = native_ops.fuse(unscript(loaded.module), scripted=False)
    try:
        energy_and_gradient(module, loaded.metadata)(*sample_system(loaded.metadata, 3, 2, 0, loaded.dtype))
    except AttributeError as exc:
        raise ModelContractError(
            f"{loaded.path} was written by an older version of its classes ({exc}): re-export it from "
            "Python with this multiscale, or compile the Python model: multiscale.export(model, 'x.pt2')") from None
    return write(module, path, metadata, reference=reference, log=log, device=device)
