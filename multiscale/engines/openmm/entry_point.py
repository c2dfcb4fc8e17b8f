"""The ``openmmml.potentials`` entry point: ``MLPotential("multiscale", modelFile=...)``.

openmm-ml loads every entry point while ``openmmml`` itself is being imported, so this module
must not import openmmml: the factory is duck-typed (openmm-ml only calls ``createImpl``) and
imports the implementation, :mod:`multiscale.engines.openmm.openmmml`, when called.
"""

from __future__ import annotations


class MultiscalePotentialImplFactory:
    """Creates the openmm-ml implementation of a multiscale model file."""

    def createImpl(self, name: str, modelFile: str | None = None, **args):
        if modelFile is None:
            raise ValueError("MLPotential('multiscale') needs modelFile='path/to/model.pt' "
                             "(a file written by multiscale.export)")
        from .openmmml import MultiscalePotentialImpl
        return MultiscalePotentialImpl(modelFile)
