"""The TorchScript module that openmm-torch runs: OpenMM units in, model contract inside.

forward(positions (N, 3) nm[, box (3, 3) nm]) -> energy, kJ/mol.  It builds the neighbour
list itself (vesin, periodic or not, triclinic boxes included), converts nm to Å and
eV to kJ/mol, and passes the fixed species, charge and spin to the model.
"""

from typing import Optional

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
        if self.periodic:
            if box is None:
                raise RuntimeError("the model was set up for a periodic system but OpenMM passed no box")
            cell = box.to(torch.float64) * self.nm_to_angstrom
        else:
            # vesin needs a full-rank box even when nothing is periodic; it is never used
            cell = torch.eye(3, dtype=torch.float64) * (1.0 + 2.0 * self.cutoff +
                                                         (pos.max() - pos.min()).detach())
        nl = NeighborList(cutoff=self.cutoff, full_list=True)
        i, j, shifts = nl.compute(points=pos.detach(), box=cell.detach(), periodic=self.periodic,
                                  quantities="ijS")
        vectors = pos[j] - pos[i] + shifts.to(torch.float64) @ cell
        n = pos.shape[0]
        out = self.model(self.species, torch.stack([i, j]), vectors.to(self.dtype), n,
                         self.charge, self.spin)
        return out["energies"].sum().to(torch.float64) * self.ev_to_kj_per_mol
