"""The engine side of the contract in Python: call a model and turn edge gradients
into forces and virials.  ASE uses it directly, training uses the same scatter
(:func:`edge_forces`, :func:`edge_virials`); the LAMMPS plugin does the same in C++.

Three visible steps: marshal (the caller gives species and edges), call, scatter.  The
energy is the sum of the *local* atoms' energies (atoms [0, n_local)): what a model returns
for ghost atoms is not counted, unless its metadata says ``ghost_energies = "tally"`` (ghost
entries are shares of local terms; see multiscale.model.contract).
"""

from __future__ import annotations

import dataclasses

import torch

from ..model.artifact import LoadedModel, check_outputs
from ..model.reductions import grouped_forward, supports_groups


@dataclasses.dataclass
class Results:
    """Results of one evaluation, float64, for atoms 0..n_all-1.

    energy: eV; energies: (n_all,) eV; forces: (n_all, 3) eV/Å;
    virial: (3, 3) eV, W[a, b] = sum r_a F_b; virials: (n_all, 3, 3) eV, or None where
    evaluate() was asked not to compute them.
    """

    energy: float
    energies: torch.Tensor
    forces: torch.Tensor
    virial: torch.Tensor
    virials: torch.Tensor | None
    charges: torch.Tensor | None = None   # (n,) e, if the model outputs them
    spin_charges: torch.Tensor | None = None   # (n,) e, alpha - beta, if the model outputs them
    potential_grad: torch.Tensor | None = None   # (n_all,) dE/dphi_i e, with an external potential
    attention: torch.Tensor | None = None   # (E, layers, heads), per edge, if the model outputs it
    orbital_energies: torch.Tensor | None = None   # (m,) eV ascending, if the model has a Hamiltonian


def edge_forces(grad: torch.Tensor, edge_index: torch.Tensor, n_atoms: int) -> torch.Tensor:
    """Forces (n_atoms, 3) from dE/d(edge vector) ``grad`` (E, 3), edge vector = r_j - r_i:
    F_i += dE/dr_ij, F_j -= dE/dr_ij.  Differentiable (training builds on it)."""
    forces = torch.zeros((n_atoms, 3), dtype=grad.dtype, device=grad.device)
    return forces.index_add(0, edge_index[0], grad).index_add(0, edge_index[1], -grad)


def edge_virials(vectors: torch.Tensor, grad: torch.Tensor) -> torch.Tensor:
    """Per-edge virials (E, 3, 3) eV, W[a, b] = -r_a dE/dr_b; their sum is the virial."""
    return -vectors.unsqueeze(2) * grad.unsqueeze(1)


def evaluate(model: LoadedModel, species: torch.Tensor, edge_index: torch.Tensor,
             edge_vectors: torch.Tensor, n_local: int, charge: float = 0.0, spin: int = 1,
             potential: torch.Tensor | None = None, per_atom_virials: bool = True) -> Results:
    """Energy, forces and virials from the model on one set of edges.

    species: (n_all,) int64; edge_index: (2, E) int64; edge_vectors: (E, 3) Å, any float dtype;
    potential: (n_all,) V, an external electrostatic potential at the atoms, for models that
    take one (GroupReduced); the forces then hold only the edge part, and ``potential_grad``
    dE/dphi, from which the caller adds -dE/dphi_i dphi_i/dr.  The model runs on its device
    (``model.device``); inputs may be anywhere, results are on the CPU.  ``per_atom_virials``
    False leaves ``virials`` None (a model's own "virials" output is still returned).
    """
    n_all = species.shape[0]
    device = model.device
    if model.metadata.reductions and n_local != n_all:
        raise ValueError(f"{model.path} needs sums over the whole system (reductions); this engine path "
                         f"holds {n_local} of {n_all} atoms locally and cannot supply them: give every "
                         "atom as local (n_local = n_all) or run it in LAMMPS, which reduces over ranks")
    vectors = edge_vectors.detach().to(device=device, dtype=model.dtype).requires_grad_(True)
    on_device = species.to(device), edge_index.to(device)
    if potential is not None:
        if not supports_groups(model.module):
            raise ValueError(f"{model.path} takes no external electrostatic potential (its charges, if any, "
                             "do not respond to one); an applied field or an electrostatic embedding needs "
                             "a model like multiscale's AIMNet2")
        potential = potential.detach().to(device=device, dtype=model.dtype).requires_grad_(True)
        out = grouped_forward(model.module, *on_device, vectors, n_local,
                              torch.zeros(n_all, dtype=torch.long, device=device),
                              torch.tensor([[float(charge), float(spin)]], dtype=model.dtype, device=device),
                              potential)
    else:
        out = model.module(*on_device, vectors, n_local, float(charge), int(spin))
    check_outputs(out, n_all, n_local, model.dtype, where=str(model.path))
    energies = out["energies"]
    if model.metadata.ghost_energies != "tally":
        energies = energies[:n_local]        # ghosts' own energies, if returned, are not counted
    total = energies.sum()
    potential_grad = None
    if potential is not None:
        grad, potential_grad = torch.autograd.grad(total, [vectors, potential], allow_unused=True)
        grad = torch.zeros_like(vectors) if grad is None else grad
        potential_grad = torch.zeros_like(potential) if potential_grad is None else potential_grad
        potential_grad = potential_grad.double().cpu()
    elif vectors.shape[0] > 0 and total.requires_grad:
        (grad,) = torch.autograd.grad(total, vectors)
    else:
        grad = torch.zeros_like(vectors)
    grad = grad.double().cpu()
    vec = vectors.detach().double().cpu()
    out = {key: value.detach().double().cpu() for key, value in out.items()}
    energies = energies.detach().double().cpu()
    edge_index = edge_index.cpu()
    i, j = edge_index[0], edge_index[1]
    forces = edge_forces(grad, edge_index, n_all)
    virial = -vec.T @ grad        # the sum of edge_virials, without the (E, 3, 3) array
    if "virials" in out:
        virials = out["virials"]
    elif not per_atom_virials:
        virials = None
    else:
        edge_virial = edge_virials(vec, grad)
        virials = torch.zeros((n_all, 3, 3), dtype=torch.float64)
        virials.index_add_(0, i, 0.5 * edge_virial).index_add_(0, j, 0.5 * edge_virial)
    per_atom = torch.zeros(n_all, dtype=torch.float64)
    per_atom[: energies.shape[0]] = energies
    charges, spin_charges = out.get("charges"), out.get("spin_charges")
    attention, levels = out.get("attention"), out.get("orbital_energies")
    return Results(energy=float(total.detach()), energies=per_atom, forces=forces,
                   virial=virial, virials=virials, charges=charges,
                   spin_charges=spin_charges, potential_grad=potential_grad, attention=attention,
                   orbital_energies=levels)
