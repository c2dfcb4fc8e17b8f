"""multiscale: machine-learned potentials in LAMMPS, OpenMM and ASE, coupled to continuum crack models.

The public surface: :func:`export` and :func:`load` for model files, :class:`ModelMetadata`,
:class:`MultiscaleCalculator` for ASE, and the reference potentials in :mod:`multiscale.potentials`.
Names are imported on first use, so ``multiscale lmp`` starts LAMMPS without loading torch twice.
"""

import importlib

__version__ = "0.1.0"

_PUBLIC = {
    "export": "model.artifact", "load": "model.artifact", "LoadedModel": "model.artifact",
    "ModelMetadata": "model.contract", "FieldMetadata": "model.contract",
    "ModelContractError": "model.contract", "MultiscaleCalculator": "engines.ase_calculator",
}
__all__ = sorted(_PUBLIC)


def __getattr__(name):
    if name in _PUBLIC:
        return getattr(importlib.import_module(f".{_PUBLIC[name]}", __name__), name)
    raise AttributeError(f"module 'multiscale' has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + __all__)
