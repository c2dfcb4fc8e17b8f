"""A small model with global reductions, for the engine tests of contract version 2.

Two passes of charges in two spin channels (alpha, beta; Q_a,b = (Q +/- (M - 1)) / 2), each
pass normalised to its channel's exact total over the whole system:

    pass 0: q~_i = a_s + b_s c_i,            f_i = softplus(d_s + 0.3 c_i)
    pass 1: q~_i = q_i + 0.4 c_i q_i^2 - 0.2 q_i,   same f_i
    q_i = q~_i + f_i (Q_ch - sum q~) / sum f     (sums over every atom of the system)

with c_i a smooth coordination number (cutoff 3.5 Å).  Energy per atom:
chi_s q + eta_s q^2 / 2 per channel of the final charges, plus 0.3 c_i and a small
coupling 0.05 q_a q_b c_i: nonlinear in both passes' sums, so forces and stresses exercise
every adjoint reduction.  Outputs the per-atom charges (alpha + beta).
"""

from __future__ import annotations

from typing import Dict, List, Tuple

import torch
from torch import Tensor

from multiscale.model.contract import ModelMetadata
from multiscale.model.reductions import Reduced


class TwoPassCharges(Reduced):
    def __init__(self, elements, cutoff: float = 3.5, seed: int = 0):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        n = len(elements)
        self.elements: List[str] = list(elements)
        self.cutoff = float(cutoff)
        self.reduction_widths = [4, 4]
        for name, scale, shift in (("a", 0.3, 0.0), ("b", 0.1, 0.0), ("d", 0.5, 0.0),
                                   ("chi", 1.0, 0.0), ("eta", 0.5, 2.0)):
            self.register_buffer(name, shift + scale * torch.randn(n, generator=g, dtype=torch.float64))

    def metadata(self) -> ModelMetadata:
        return ModelMetadata(name="two-pass-charges", elements=tuple(self.elements), cutoff=self.cutoff,
                             outputs=("energies", "charges"), uses_charge=True, uses_spin=True,
                             reductions=tuple(self.reduction_widths))

    def _coordination(self, edge_index: Tensor, edge_vectors: Tensor, n_local: int) -> Tensor:
        r = torch.linalg.vector_norm(edge_vectors, dim=1)
        w = torch.where(r < self.cutoff, (1.0 - r / self.cutoff) ** 2, torch.zeros_like(r))
        i = edge_index[0]
        mine = i < n_local
        c = torch.zeros(n_local, dtype=edge_vectors.dtype, device=edge_vectors.device)
        return c.index_add(0, i[mine], w[mine])

    def _channels(self, charge: float, spin: int) -> Tuple[float, float]:
        return 0.5 * (charge + (spin - 1)), 0.5 * (charge - (spin - 1))

    def _normalise(self, raw: Tensor, f: Tensor, sums: Tensor, charge: float, spin: int) -> Tensor:
        qa, qb = self._channels(charge, spin)
        alpha = raw[:, 0] + f * (qa - sums[0]) / sums[1]
        beta = raw[:, 1] + f * (qb - sums[2]) / sums[3]
        return torch.stack([alpha, beta], 1)

    def _passes(self, species: Tensor, edge_index: Tensor, edge_vectors: Tensor, n_local: int,
                charge: float, spin: int, sums: List[Tensor]) -> Tuple[Tensor, Tensor, Tensor]:
        """(raw charges of the next pass (n_local, 2), f (n_local,), c (n_local,)) after the
        passes whose sums are given."""
        s = species[:n_local]
        c = self._coordination(edge_index, edge_vectors, n_local)
        f = torch.nn.functional.softplus(self.d[s].to(c.dtype) + 0.3 * c)
        raw0 = (self.a[s].to(c.dtype) + self.b[s].to(c.dtype) * c).unsqueeze(1).repeat(1, 2)
        raw0 = raw0 + torch.tensor([0.05, -0.05], dtype=c.dtype)
        raw = raw0
        for k in range(len(sums)):
            q = self._normalise(raw, f, sums[k], charge, spin)
            raw = q + 0.4 * c.unsqueeze(1) * q * q - 0.2 * q
        return raw, f, c

    @torch.jit.export
    def reduction_inputs(self, stage: int, species: Tensor, edge_index: Tensor, edge_vectors: Tensor,
                         n_local: int, charge: float, spin: int, sums: List[Tensor]) -> Tensor:
        raw, f, c = self._passes(species, edge_index, edge_vectors, n_local, charge, spin, sums[:stage])
        return torch.stack([raw[:, 0], f, raw[:, 1], f], 1)

    @torch.jit.export
    def forward_reduced(self, species: Tensor, edge_index: Tensor, edge_vectors: Tensor, n_local: int,
                        charge: float, spin: int, sums: List[Tensor]) -> Dict[str, Tensor]:
        raw, f, c = self._passes(species, edge_index, edge_vectors, n_local, charge, spin,
                                 sums[:len(sums) - 1])
        q = self._normalise(raw, f, sums[len(sums) - 1], charge, spin)
        s = species[:n_local]
        chi, eta = self.chi[s].to(c.dtype), self.eta[s].to(c.dtype)
        energies = (chi.unsqueeze(1) * q + 0.5 * eta.unsqueeze(1) * q * q).sum(1) + 0.3 * c \
            + 0.05 * q[:, 0] * q[:, 1] * c
        return {"energies": energies, "charges": q.sum(1)}
