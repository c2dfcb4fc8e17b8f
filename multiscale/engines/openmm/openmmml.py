"""openmm-ml integration: ``MLPotential("multiscale", modelFile="model.pt")``.

Registered through the ``openmmml.potentials`` entry point (:mod:`.entry_point`), so ``createSystem`` and
``createMixedSystem`` (mechanical embedding, ``interpolate=True``) work as for ANI or MACE;
``createMixedSystem(..., embedding="electrostatic")`` embeds a model whose charges respond to
an external potential (AIMNet2) in the MM point charges (:func:`.force.create_embedded_force`).
The model runs in an openmm-torch TorchForce, except under ``interpolate=True``: openmm-ml
then copies the ML force through XmlSerializer, which crashes on a TorchForce under
OpenMM 8.6 (see ``create_python_force``), so there it runs in a PythonForce.
"""

from __future__ import annotations

from openmmml.mlpotential import MLPotentialImpl


class MultiscalePotentialImpl(MLPotentialImpl):
    def __init__(self, model_file: str):
        from ...model.artifact import load_potential
        self.model = load_potential(model_file, "openmm-ml")  # fail early on a bad file
        self._copyable = False  # True while openmm-ml builds an interpolating system
        self._embedding = "mechanical"

    def getMLLongRange(self) -> bool:
        """False: a multiscale model sees only atoms within hops x cutoff (the model contract
        has no long-range term), so mechanical embedding of a periodic system needs no
        ``mlLongRange`` argument and keeps the MM charges' interactions between images."""
        return False

    def getSupportedEmbeddings(self) -> list[str]:
        return ["mechanical", "electrostatic"]

    def createMixedSystem(self, topology, system, atoms, forceGroup, interpolate, embedding,
                          returnInfo=False, **args):
        """openmm-ml's own mechanical embedding (the ML-ML terms of the MM force field removed);
        with ``interpolate`` the ML force is a PythonForce, which openmm-ml's interpolation can
        copy.  ``electrostatic``: the same, and the ML atoms' MM charges replaced by the model's
        own, which respond to the MM charges' potential."""
        from openmmml.embeddings import utilities
        from openmmml.embeddings.mechanicalembedding import MechanicalEmbedding

        if embedding == "electrostatic":
            if interpolate:
                raise ValueError("electrostatic embedding with interpolate=True is not supported; "
                                 "use embedding='mechanical' to interpolate")
            links = utilities.findLinkBonds(topology, list(atoms))
            if links:
                raise ValueError(f"electrostatic embedding needs an ML region without covalent bonds to "
                                 f"MM atoms; bonds {links[:5]} cross the boundary")
        self._copyable = bool(interpolate)
        self._embedding = embedding
        try:
            return MechanicalEmbedding().createMixedSystem(self, topology, system, atoms, forceGroup,
                                                           interpolate, returnInfo=returnInfo, **args)
        finally:
            self._copyable = False
            self._embedding = "mechanical"

    def addForces(self, topology, system, atoms, forceGroup, charge: float = 0.0,
                  multiplicity: int = 1, **args):
        from .force import create_embedded_force, create_force, create_python_force
        if self._embedding == "electrostatic":
            system.addForce(create_embedded_force(self.model, topology, system, atoms, charge=charge,
                                                  spin=multiplicity, force_group=forceGroup))
            return
        make = create_python_force if self._copyable else create_force
        periodic = topology.getPeriodicBoxVectors() is not None or system.usesPeriodicBoundaryConditions()
        system.addForce(make(self.model, topology, atoms, charge=charge, spin=multiplicity,
                             periodic=periodic, force_group=forceGroup))
