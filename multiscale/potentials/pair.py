"""Pair potentials under the model contract: Lennard-Jones and Morse.

Both give each local atom half of every pair energy it takes part in, which is
what LAMMPS' ``pair_style lj/cut`` and ``morse`` tally per atom (``ev_tally``),
so per-atom energies and virials match them exactly.
"""

from __future__ import annotations

from typing import Dict, List, Sequence

import torch
from torch import Tensor

from ..model.contract import ModelMetadata
from .graph import scatter_sum


def _pair_table(values, n: int, name: str) -> Tensor:
    """A per-element-pair parameter: a scalar (all pairs) or an n x n symmetric table."""
    t = torch.as_tensor(values, dtype=torch.float64)
    if t.dim() == 0:
        t = t.expand(n, n).clone()
    if t.shape != (n, n) or not torch.allclose(t, t.T):
        raise ValueError(f"{name} must be a scalar or a symmetric {n}x{n} table, got shape {tuple(t.shape)}")
    return t


class PairPotential(torch.nn.Module):
    """Energy sum_{i<j} phi(r_ij), optionally shifted to zero at the cutoff."""

    def __init__(self, elements: Sequence[str], cutoff: float, shift: bool, name: str,
                 citation: str, term: torch.nn.Module):
        super().__init__()
        self.term = term  # term(r, si, sj) -> phi, eV
        self.elements: List[str] = list(elements)
        self.cutoff = float(cutoff)
        self.shift = bool(shift)
        self._name = name
        self._citation = citation

    def metadata(self) -> ModelMetadata:
        return ModelMetadata(name=self._name, elements=tuple(self.elements), cutoff=self.cutoff,
                             hops=1, citation=self._citation,
                             description=f"reference {self._name} potential, shift={self.shift}")

    def forward(self, species: Tensor, edge_index: Tensor, edge_vectors: Tensor, n_local: int,
                charge: float = 0.0, spin: int = 1) -> Dict[str, Tensor]:
        # a one-hop model gets only edges of local atoms shorter than the cutoff (the contract)
        i, j = edge_index[0], edge_index[1]
        si, sj = species[i], species[j]
        r = torch.linalg.vector_norm(edge_vectors, dim=1)
        e = self.term(r, si, sj)
        if self.shift:
            e = e - self.term(torch.full_like(r, self.cutoff), si, sj)
        return {"energies": scatter_sum(0.5 * e, i, n_local)}


class LennardJones(PairPotential):
    """phi(r) = 4 epsilon [(sigma/r)^12 - (sigma/r)^6]; epsilon in eV, sigma and cutoff in Å.

    epsilon, sigma: scalars or symmetric per-element-pair tables (LAMMPS ``lj/cut``).
    """

    def __init__(self, elements: Sequence[str], epsilon, sigma, cutoff: float, shift: bool = False):
        n = len(elements)
        super().__init__(elements, cutoff, shift, "lennard-jones",
                         "J. E. Lennard-Jones, Proc. R. Soc. Lond. A 106, 463 (1924)",
                         _LennardJonesTerm(_pair_table(epsilon, n, "epsilon"),
                                           _pair_table(sigma, n, "sigma")))


class _LennardJonesTerm(torch.nn.Module):
    def __init__(self, epsilon: Tensor, sigma: Tensor):
        super().__init__()
        self.register_buffer("epsilon", epsilon)
        self.register_buffer("sigma", sigma)

    def forward(self, r: Tensor, si: Tensor, sj: Tensor) -> Tensor:
        sr2 = (self.sigma[si, sj] / r) ** 2
        sr6 = sr2 * sr2 * sr2
        return 4.0 * self.epsilon[si, sj] * (sr6 * sr6 - sr6)


class Morse(PairPotential):
    """phi(r) = D0 [exp(-2 alpha (r - r0)) - 2 exp(-alpha (r - r0))] (LAMMPS ``morse``).

    d0 in eV, alpha in 1/Å, r0 and cutoff in Å; scalars or symmetric tables.
    """

    def __init__(self, elements: Sequence[str], d0, alpha, r0, cutoff: float, shift: bool = False):
        n = len(elements)
        super().__init__(elements, cutoff, shift, "morse", "P. M. Morse, Phys. Rev. 34, 57 (1929)",
                         _MorseTerm(_pair_table(d0, n, "d0"), _pair_table(alpha, n, "alpha"),
                                    _pair_table(r0, n, "r0")))


class _MorseTerm(torch.nn.Module):
    def __init__(self, d0: Tensor, alpha: Tensor, r0: Tensor):
        super().__init__()
        self.register_buffer("d0", d0)
        self.register_buffer("alpha", alpha)
        self.register_buffer("r0", r0)

    def forward(self, r: Tensor, si: Tensor, sj: Tensor) -> Tensor:
        x = torch.exp(-self.alpha[si, sj] * (r - self.r0[si, sj]))
        return self.d0[si, sj] * (x * x - 2.0 * x)
