"""A small message-passing neural potential (SchNet-like continuous filters).

Exists to exercise engines with a model whose receptive field spans several
cutoffs (``hops`` layers): LAMMPS must then provide a ghost shell of hops x cutoff.
Weights are random unless trained.
"""

from __future__ import annotations

import math
from typing import Dict, List, Sequence

import torch
from torch import Tensor

from ..model.contract import ModelMetadata
from .graph import scatter_sum
from .atom_terms import AtomTerms
from .repulsion import describe


class GaussianBasis(torch.nn.Module):
    """(E,) distances in Å -> (E, n) Gaussians times a smooth cosine cutoff."""

    def __init__(self, cutoff: float, n: int):
        super().__init__()
        self.cutoff = cutoff
        self.register_buffer("centres", torch.linspace(0.0, cutoff, n, dtype=torch.float64))
        self.width = float(cutoff / n)

    def forward(self, r: Tensor) -> Tensor:
        envelope = 0.5 * (torch.cos(math.pi * r / self.cutoff) + 1.0) * (r < self.cutoff)
        # exponent floored at -80: torch's float32 exp is slow where it would underflow
        exponent = torch.clamp(-((r.unsqueeze(1) - self.centres) / self.width) ** 2, min=-80.0)
        return torch.exp(exponent) * envelope.unsqueeze(1)


class Interaction(torch.nn.Module):
    """h_i <- h_i + MLP(sum_j filter(r_ij) * h_j)."""

    def __init__(self, features: int, n_basis: int):
        super().__init__()
        self.filter = torch.nn.Linear(n_basis, features, bias=False)  # vanishes at the cutoff
        self.update = torch.nn.Sequential(torch.nn.Linear(features, features), torch.nn.SiLU(),
                                          torch.nn.Linear(features, features))

    def forward(self, h: Tensor, basis: Tensor, i: Tensor, j: Tensor) -> Tensor:
        messages = self.filter(basis) * h[j]
        return h + self.update(scatter_sum(messages, i, h.shape[0]))


class MessagePassingPotential(torch.nn.Module):
    """Per-atom energies from ``hops`` rounds of message passing; eV, Å.

    elements: chemical symbols; cutoff: Å; features: width of atom states; repulsion: a ZBL
    core (an ``repulsion.ZBL`` or a table {inner, outer} in Å) added to the local atoms' energies.
    """

    def __init__(self, elements: Sequence[str], cutoff: float = 4.0, hops: int = 2,
                 features: int = 32, n_basis: int = 16, seed: int = 0, repulsion=None):
        super().__init__()
        torch.manual_seed(seed)
        self.elements: List[str] = list(elements)
        self.cutoff = float(cutoff)
        self.hops = int(hops)
        self.embedding = torch.nn.Embedding(len(self.elements), features)
        self.basis = GaussianBasis(self.cutoff, n_basis)
        self.interactions = torch.nn.ModuleList([Interaction(features, n_basis) for _ in range(hops)])
        self.readout = torch.nn.Sequential(torch.nn.Linear(features, features), torch.nn.SiLU(),
                                           torch.nn.Linear(features, 1))
        self.atom_terms = AtomTerms(self.elements, repulsion)

    def set_self_energies(self, values) -> None:
        """Per-element energies in eV, in the order of ``elements`` (training starts here)."""
        self.atom_terms.set_self_energies(values)

    def metadata(self) -> ModelMetadata:
        return ModelMetadata(name="message-passing", elements=tuple(self.elements),
                             cutoff=self.cutoff, hops=self.hops,
                             description=f"SchNet-like message passing, {self.hops} hops"
                                         f"{describe(self.atom_terms.repulsion)}")

    def forward(self, species: Tensor, edge_index: Tensor, edge_vectors: Tensor, n_local: int,
                charge: float = 0.0, spin: int = 1) -> Dict[str, Tensor]:
        i, j = edge_index[0], edge_index[1]
        basis = self.basis(torch.linalg.vector_norm(edge_vectors, dim=1))
        h = self.embedding(species)
        for interaction in self.interactions:
            h = interaction(h, basis, i, j)
        energies = self.atom_terms(self.readout(h).squeeze(1), species, edge_index, edge_vectors, n_local)
        return {"energies": energies}
