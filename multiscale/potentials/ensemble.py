"""A committee of models under the contract: the mean energy, and each member's."""

from __future__ import annotations

from typing import Dict, List

import torch
from torch import Tensor

from ..model.contract import ModelMetadata


class Ensemble(torch.nn.Module):
    """Energies averaged over ``members`` (same elements and cutoff).

    ``member_energies`` gives (n_members, n_local) per-atom energies for query by committee.
    Members that all output ``attention`` (attention models) give its mean too.
    """

    def __init__(self, members: List[torch.nn.Module]):
        super().__init__()
        if not members:
            raise ValueError("an ensemble needs at least one member")
        metas = [m.metadata() for m in members]
        if len({(m.elements, m.cutoff, m.hops) for m in metas}) != 1:
            raise ValueError("ensemble members must share elements, cutoff and hops")
        self._metadata = metas[0]
        self.with_attention = all("attention" in m.outputs for m in metas)
        self.members = torch.nn.ModuleList(members)

    def metadata(self) -> ModelMetadata:
        m = self._metadata
        return ModelMetadata(name=f"{m.name}-ensemble", elements=m.elements, cutoff=m.cutoff,
                             hops=m.hops, dtype=m.dtype, citation=m.citation,
                             outputs=("energies", "attention") if self.with_attention else ("energies",),
                             description=f"ensemble of {len(self.members)} x {m.name}")

    @torch.jit.export
    def member_energies(self, species: Tensor, edge_index: Tensor, edge_vectors: Tensor,
                        n_local: int) -> Tensor:
        out: List[Tensor] = []
        for member in self.members:
            out.append(member(species, edge_index, edge_vectors, n_local, 0.0, 1)["energies"][:n_local])
        return torch.stack(out)

    def forward(self, species: Tensor, edge_index: Tensor, edge_vectors: Tensor, n_local: int,
                charge: float = 0.0, spin: int = 1) -> Dict[str, Tensor]:
        total = torch.zeros(0, dtype=edge_vectors.dtype, device=edge_vectors.device)
        attention = torch.zeros(0, dtype=edge_vectors.dtype, device=edge_vectors.device)
        for k, member in enumerate(self.members):
            out = member(species, edge_index, edge_vectors, n_local, charge, spin)
            e = out["energies"][:n_local]
            total = e if k == 0 else total + e
            if self.with_attention:
                attention = out["attention"] if k == 0 else attention + out["attention"]
        if self.with_attention:
            return {"energies": total / len(self.members), "attention": attention / len(self.members)}
        return {"energies": total / len(self.members)}
