"""Models that need per-system sums in the middle of their forward pass (contract version 2).

A model whose energy depends on the whole system -- charges normalised to the total charge
Q, say -- cannot compute it from one rank's atoms.  It declares ``reductions`` (the widths of
the sums it needs, one per stage) in its metadata and exports two methods:

    reduction_inputs(stage, species, edge_index, edge_vectors, n_local, charge, spin, sums)
        -> (n_local, width[stage]): each local atom's contribution to stage ``stage``'s sums;
           ``sums`` holds the totals of the earlier stages, (width[k],) each
    forward_reduced(species, edge_index, edge_vectors, n_local, charge, spin, sums)
        -> the usual outputs, given every stage's totals

An engine sums each stage's inputs over the local atoms of the whole system (LAMMPS:
MPI_Allreduce over ranks) and runs the backward pass through the same sums (their adjoint
is the same reduction).  ``forward`` stays the contract's: for one domain holding every atom
it runs the stages itself, which :class:`Reduced` provides.
"""

from __future__ import annotations

from typing import Dict, List

import torch
from torch import Tensor


class Reduced(torch.nn.Module):
    """Base class: ``forward`` on one domain from ``reduction_inputs`` and ``forward_reduced``.

    Subclasses set ``self.reduction_widths`` (list of int) and define both methods with
    ``@torch.jit.export``; ``metadata()`` should pass ``reductions=tuple(self.reduction_widths)``.
    """

    def forward(self, species: Tensor, edge_index: Tensor, edge_vectors: Tensor, n_local: int,
                charge: float = 0.0, spin: int = 1) -> Dict[str, Tensor]:
        sums: List[Tensor] = []
        for k in range(len(self.reduction_widths)):
            x = self.reduction_inputs(k, species, edge_index, edge_vectors, n_local, charge, spin, sums)
            sums.append(x.sum(0))
        return self.forward_reduced(species, edge_index, edge_vectors, n_local, charge, spin, sums)

    def reduction_inputs(self, stage: int, species: Tensor, edge_index: Tensor, edge_vectors: Tensor,
                         n_local: int, charge: float, spin: int, sums: List[Tensor]) -> Tensor:
        raise NotImplementedError

    def forward_reduced(self, species: Tensor, edge_index: Tensor, edge_vectors: Tensor, n_local: int,
                        charge: float, spin: int, sums: List[Tensor]) -> Dict[str, Tensor]:
        raise NotImplementedError

