"""The engine side of the contract in Python: call a model and turn edge gradients
into forces and virials.  ASE uses it directly; the LAMMPS plugin does the same in C++.

Three visible steps: marshal (the caller gives species and edges), call, scatter.
"""

from __future__ import annotations

import dataclasses

import torch

from .artifact import LoadedModel, check_outputs


@dataclasses.dataclass
class Results:
    """Results of one evaluation, float64, for atoms 0..n_all-1.

    energy: eV; energies: (n_all,) eV; forces: (n_all, 3) eV/Å;
    virial: (3, 3) eV, W[a, b] = sum r_a F_b; virials: (n_all, 3, 3) eV.
    """

    energy: float
    energies: torch.Tensor
    forces: torch.Tensor
    virial: torch.Tensor
    virials: torch.Tensor


def evaluate(model: LoadedModel, species: torch.Tensor, edge_index: torch.Tensor,
             edge_vectors: torch.Tensor, n_local: int, charge: float = 0.0, spin: int = 1) -> Results:
    """Energy, forces and virials from the model on one set of edges.

    species: (n_all,) int64; edge_index: (2, E) int64; edge_vectors: (E, 3) Å, any float dtype.
    """
    n_all = species.shape[0]
    vectors = edge_vectors.detach().to(model.dtype).requires_grad_(True)
    out = model.module(species, edge_index, vectors, n_local, float(charge), int(spin))
    check_outputs(out, n_all, n_local, model.dtype, where=str(model.path))
    energies = out["energies"]
    total = energies.sum()
    if vectors.shape[0] > 0 and total.requires_grad:
        (grad,) = torch.autograd.grad(total, vectors)
    else:
        grad = torch.zeros_like(vectors)
    grad = grad.double()
    vec = vectors.detach().double()
    i, j = edge_index[0], edge_index[1]
    forces = torch.zeros((n_all, 3), dtype=torch.float64)
    forces.index_add_(0, i, grad).index_add_(0, j, -grad)
    edge_virial = -vec.unsqueeze(2) * grad.unsqueeze(1)
    if "virials" in out:
        virials = out["virials"].detach().double()
    else:
        virials = torch.zeros((n_all, 3, 3), dtype=torch.float64)
        virials.index_add_(0, i, 0.5 * edge_virial).index_add_(0, j, 0.5 * edge_virial)
    per_atom = torch.zeros(n_all, dtype=torch.float64)
    per_atom[: energies.shape[0]] = energies.detach().double()
    return Results(energy=float(total.detach()), energies=per_atom, forces=forces,
                   virial=edge_virial.sum(0), virials=virials)
