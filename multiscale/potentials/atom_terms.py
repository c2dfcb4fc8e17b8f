"""The per-atom terms a graph network's energies get before they are summed.

A learned energy per element (eV; the trainer starts it at the data's per-element fit) and an
optional ZBL core (``repulsion.ZBL``), for the message-passing and transformer models.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor

from .repulsion import build_repulsion


class AtomTerms(torch.nn.Module):
    """(n_all,) network energies -> (n_local,) atom energies in eV: + e0(element) + core."""

    def __init__(self, elements: Sequence[str], repulsion=None):
        super().__init__()
        self.self_energy = torch.nn.Parameter(torch.zeros(len(elements)))
        self.repulsion = build_repulsion(list(elements), repulsion)

    def set_self_energies(self, values) -> None:
        """Per-element energies in eV, in the order of the model's elements."""
        with torch.no_grad():
            self.self_energy.copy_(torch.as_tensor(values, dtype=self.self_energy.dtype))

    def forward(self, network: Tensor, species: Tensor, edge_index: Tensor, edge_vectors: Tensor,
                n_local: int) -> Tensor:
        # only local atoms' energies count; ghosts' neighbourhoods are incomplete
        energies = (network + self.self_energy[species])[:n_local]
        if self.repulsion is not None:
            energies = energies + self.repulsion.atom_energies(species, edge_index, edge_vectors, n_local)
        return energies
