"""multiscale: machine-learned potentials in LAMMPS, OpenMM and ASE, coupled to continuum crack models.

The public surface: :func:`export` and :func:`load` for model files, :class:`ModelMetadata`,
:class:`MultiscaleCalculator` for ASE, and the reference potentials in :mod:`multiscale.potentials`.
"""

from .artifact import LoadedModel, export, load
from .contract import ModelContractError, ModelMetadata

__all__ = ["export", "load", "LoadedModel", "ModelMetadata", "ModelContractError",
           "MultiscaleCalculator"]
__version__ = "0.1.0"


def __getattr__(name):
    # ASE is imported only when the calculator is asked for
    if name == "MultiscaleCalculator":
        from .ase_calculator import MultiscaleCalculator
        return MultiscaleCalculator
    raise AttributeError(f"module 'multiscale' has no attribute {name!r}")
