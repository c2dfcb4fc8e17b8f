"""openmm-ml integration: ``MLPotential("multiscale", modelFile="model.pt")``.

Registered through the ``openmmml.potentials`` entry point, so ``createSystem`` and
``createMixedSystem`` (mechanical embedding, ``interpolate=True``) work as for ANI or MACE.
"""

from __future__ import annotations

from openmmml.mlpotential import MLPotentialImpl, MLPotentialImplFactory


class MultiscalePotentialImplFactory(MLPotentialImplFactory):
    def createImpl(self, name: str, modelFile: str | None = None, **args) -> MLPotentialImpl:
        if modelFile is None:
            raise ValueError("MLPotential('multiscale') needs modelFile='path/to/model.pt' "
                             "(a file written by multiscale.export)")
        return MultiscalePotentialImpl(modelFile)


class MultiscalePotentialImpl(MLPotentialImpl):
    def __init__(self, model_file: str):
        import multiscale
        self.model = multiscale.load(model_file)  # fail early on a bad file

    def getMLLongRange(self) -> bool:
        """False: a multiscale model sees only atoms within hops x cutoff (the model contract
        has no long-range term), so mechanical embedding of a periodic system needs no
        ``mlLongRange`` argument and keeps the MM charges' interactions between images."""
        return False

    def addForces(self, topology, system, atoms, forceGroup, charge: float = 0.0,
                  multiplicity: int = 1, **args):
        from .force import create_force
        periodic = topology.getPeriodicBoxVectors() is not None or system.usesPeriodicBoundaryConditions()
        system.addForce(create_force(self.model, topology, atoms, charge=charge, spin=multiplicity,
                                     periodic=periodic, force_group=forceGroup))
