"""The openmm-ml classes under their old module name (see :mod:`multiscale.engines.openmm`)."""

from multiscale.engines.openmm.entry_point import MultiscalePotentialImplFactory
from multiscale.engines.openmm.openmmml import MultiscalePotentialImpl

__all__ = ["MultiscalePotentialImpl", "MultiscalePotentialImplFactory"]
