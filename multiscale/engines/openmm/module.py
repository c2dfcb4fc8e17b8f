"""The TorchScript modules that openmm-torch runs: OpenMM units in, model contract inside.

forward(positions (N, 3) nm[, box (3, 3) nm]) -> energy, kJ/mol.  They build the neighbour
list themselves (vesin, periodic or not, triclinic boxes included), convert nm to Å and
eV to kJ/mol, and pass the fixed species, charge and spin to the model.
:class:`EmbeddedOpenMMModel` adds the MM point charges' potential at the ML atoms
(electrostatic embedding).
"""

from typing import Optional, Tuple

import torch
from torch import Tensor
from vesin_torch import NeighborList

from ...units import EV_TO_KJ_PER_MOL, NM_TO_ANGSTROM


class OpenMMModel(torch.nn.Module):
    """Wraps a loaded model for openmm-torch.

    model: the model's TorchScript module; species: (n,) int64 model element indices of the
    atoms it sees; atoms: (n,) indices of those atoms in the OpenMM System, or None for all;
    cutoff: Å; dtype: the model's dtype.
    """

    def __init__(self, model: torch.nn.Module, species: Tensor, atoms: Optional[Tensor],
                 cutoff: float, dtype: torch.dtype, periodic: bool, charge: float, spin: int):
        super().__init__()
        self.model = model
        self.register_buffer("species", species)
        self.register_buffer("atoms", atoms if atoms is not None else torch.zeros(0, dtype=torch.long))
        self.subset = atoms is not None
        self.cutoff = cutoff
        self.dtype = dtype
        self.periodic = periodic
        self.charge = charge
        self.spin = spin
        self.nm_to_angstrom = NM_TO_ANGSTROM
        self.ev_to_kj_per_mol = EV_TO_KJ_PER_MOL

    def forward(self, positions: Tensor, box: Optional[Tensor] = None) -> Tensor:
        if self.subset:
            positions = positions[self.atoms]
        pos = positions.to(torch.float64) * self.nm_to_angstrom
        cell = _cell(pos, box, self.periodic, self.cutoff, self.nm_to_angstrom)
        edge_index, vectors = _graph(pos, cell, self.cutoff, self.periodic)
        n = pos.shape[0]
        out = self.model(self.species, edge_index, vectors.to(self.dtype), n, self.charge, self.spin)
        return out["energies"].sum().to(torch.float64) * self.ev_to_kj_per_mol


def _cell(pos: Tensor, box: Optional[Tensor], periodic: bool, cutoff: float, nm_to_angstrom: float) -> Tensor:
    """The box in Å; for a non-periodic system a large cube (vesin needs a full-rank box)."""
    if periodic:
        if box is None:
            raise RuntimeError("the model was set up for a periodic system but OpenMM passed no box")
        return box.to(torch.float64) * nm_to_angstrom
    return torch.eye(3, dtype=torch.float64, device=pos.device) * (1.0 + 2.0 * cutoff + (pos.max() - pos.min()).detach())


def _graph(pos: Tensor, cell: Tensor, cutoff: float, periodic: bool) -> Tuple[Tensor, Tensor]:
    """Edges (2, E) and edge vectors r_j - r_i (E, 3) Å within ``cutoff``, differentiable in pos."""
    nl = NeighborList(cutoff=cutoff, full_list=True)
    i, j, shifts = nl.compute(points=pos.detach(), box=cell.detach(), periodic=periodic, quantities="ijS")
    return torch.stack([i, j]), pos[j] - pos[i] + shifts.to(torch.float64) @ cell


class EmbeddedOpenMMModel(torch.nn.Module):
    """Electrostatic embedding: a model whose charges respond to an external potential
    (multiscale.model.reductions.GroupReduced) in the field of fixed MM point charges.

    phi_i = k_e sum_m q_m K(r_im) (V) at each ML atom i, K = 1/r over every MM atom without a
    box; with one, minimum image and the shifted-force form 1/r - 1/rc + (r - rc)/rc^2 inside
    ``mm_cutoff`` (Å), zero beyond (smooth at rc).  The model gets [Q, M, phi] per atom, its
    charges respond, and its energy includes sum q_i phi_i, so forces act on ML and MM atoms.
    ml_atoms, mm_atoms: (n,), (m,) indices in the System; mm_charges: (m,) e.
    """

    def __init__(self, model: torch.nn.Module, species: Tensor, ml_atoms: Tensor, mm_atoms: Tensor,
                 mm_charges: Tensor, cutoff: float, dtype: torch.dtype, periodic: bool, charge: float,
                 spin: int, mm_cutoff: float, coulomb: float):
        super().__init__()
        self.model = model
        self.register_buffer("species", species)
        self.register_buffer("ml_atoms", ml_atoms)
        self.register_buffer("mm_atoms", mm_atoms)
        self.register_buffer("mm_charges", mm_charges.to(torch.float64))
        self.cutoff, self.mm_cutoff, self.coulomb = float(cutoff), float(mm_cutoff), float(coulomb)
        self.dtype, self.periodic = dtype, periodic
        self.charge, self.spin = float(charge), int(spin)
        self.nm_to_angstrom = NM_TO_ANGSTROM
        self.ev_to_kj_per_mol = EV_TO_KJ_PER_MOL

    def potential(self, pos: Tensor, mm: Tensor, cell: Tensor) -> Tensor:
        """(n,) V at the ML atoms ``pos`` (n, 3) Å from the MM charges at ``mm`` (m, 3) Å."""
        d = mm.unsqueeze(0) - pos.unsqueeze(1)                           # (n, m, 3)
        if self.periodic:
            frac = d @ torch.linalg.inv(cell)
            d = (frac - torch.round(frac)) @ cell
        r = torch.linalg.vector_norm(d, dim=2)
        if self.periodic:
            rc = self.mm_cutoff
            kernel = torch.where(r < rc, 1.0 / r - 1.0 / rc + (r - rc) / (rc * rc), torch.zeros_like(r))
        else:
            kernel = 1.0 / r
        return self.coulomb * (kernel * self.mm_charges.unsqueeze(0)).sum(1)

    def forward(self, positions: Tensor, box: Optional[Tensor] = None) -> Tensor:
        all_pos = positions.to(torch.float64) * self.nm_to_angstrom
        pos, mm = all_pos[self.ml_atoms], all_pos[self.mm_atoms]
        cell = _cell(pos, box, self.periodic, self.cutoff, self.nm_to_angstrom)
        edge_index, vectors = _graph(pos, cell, self.cutoff, self.periodic)
        vectors = vectors.to(self.dtype)
        n = pos.shape[0]
        state = torch.stack([torch.full((n,), self.charge, dtype=torch.float64, device=pos.device),
                             torch.full((n,), float(self.spin), dtype=torch.float64, device=pos.device),
                             self.potential(pos, mm, cell)], 1).to(self.dtype)
        out = self.model.forward_inline(self.species, edge_index, vectors, n, state,
                                        torch.zeros(n, dtype=torch.long, device=pos.device), 1)
        return out["energies"].sum().to(torch.float64) * self.ev_to_kj_per_mol
