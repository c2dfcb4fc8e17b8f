"""The computation an ``openmm.PythonForce`` calls: the same scripted module as the TorchForce,
or, for a compiled ``.pt2`` model, the same OpenMMModel in Python around the compiled package.

OpenMM pickles a PythonForce's computation to copy or serialize it, so the scripted
module travels as its TorchScript archive bytes, a compiled one as its package's path
and the OpenMMModel's settings.
"""

from __future__ import annotations

import io

import torch


class ModelComputation:
    """state -> (energy kJ/mol, forces (n, 3) kJ/mol/nm) for the atoms the force holds.

    module: a module from ``create_module(..., gather=False)``, frozen as openmm-torch
    freezes the TorchForce's (``torch.jit.freeze(module.eval())``): positions (n, 3) nm and
    box (3, 3) nm in, energy in kJ/mol out; periodic: whether to pass it the box.
    """

    def __init__(self, module: torch.jit.ScriptModule, periodic: bool):
        self.module = module
        self.periodic = bool(periodic)

    def __call__(self, state):
        from openmm import unit

        positions = torch.tensor(state.getPositions(asNumpy=True).value_in_unit(unit.nanometer),
                                 dtype=torch.float64, requires_grad=True)
        box = None
        if self.periodic:
            box = torch.tensor(state.getPeriodicBoxVectors(asNumpy=True).value_in_unit(unit.nanometer),
                               dtype=torch.float64)
        energy = self.module(positions, box)
        (gradient,) = torch.autograd.grad(energy, positions)
        return float(energy.detach()), -gradient.numpy()

    def __reduce__(self):
        if not isinstance(self.module, torch.jit.ScriptModule):   # OpenMMModel around a .pt2
            m = self.module
            return (_from_package, (str(m.model.path), m.species, m.cutoff, m.dtype, m.periodic,
                                    m.charge, m.spin))
        buffer = io.BytesIO()
        torch.jit.save(self.module, buffer)
        return (_from_archive, (buffer.getvalue(), self.periodic))


def _from_archive(archive: bytes, periodic: bool) -> ModelComputation:
    return ModelComputation(torch.jit.load(io.BytesIO(archive), map_location="cpu"), periodic)


def _from_package(path: str, species, cutoff: float, dtype, periodic: bool, charge: float,
                  spin: int) -> ModelComputation:
    from ...model.artifact import load
    from .module import OpenMMModel
    module = OpenMMModel(load(path).module, species, None, cutoff, dtype, periodic, charge, spin)
    return ModelComputation(module, periodic)
