"""The computation an ``openmm.PythonForce`` calls: the same scripted module as the TorchForce.

OpenMM pickles a PythonForce's computation to copy or serialize it, so the scripted
module travels as its TorchScript archive bytes.
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
        buffer = io.BytesIO()
        torch.jit.save(self.module, buffer)
        return (_from_archive, (buffer.getvalue(), self.periodic))


def _from_archive(archive: bytes, periodic: bool) -> ModelComputation:
    return ModelComputation(torch.jit.load(io.BytesIO(archive), map_location="cpu"), periodic)
