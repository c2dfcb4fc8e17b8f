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

from typing import Dict, List, Optional

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



class GroupReduced(Reduced):
    """Base class of models whose sums can be taken per group of atoms -- per molecule in
    LAMMPS (``pair_style multiscale ... charge molecule``), per structure of a training batch
    -- each group with its own total charge and multiplicity.  Subclasses define

        reduction_inputs_grouped(stage, species, edge_index, edge_vectors, n_local, totals, sums)
            -> (n_local, width[stage])
        forward_grouped(species, edge_index, edge_vectors, n_local, totals, sums) -> outputs

    with ``state`` (n_all, 3): the total charge Q (e) and multiplicity M of each atom's group
    and the external electrostatic potential at the atom (V: the MM charges of an
    electrostatic embedding, an applied field; 0 otherwise), and ``sums`` the earlier stages'
    sums of each atom's group, (n_all, width[k]) each.  The single-system methods of
    :class:`Reduced` follow (every atom in one group, no external potential), and
    ``forward_inline`` for one domain holding every atom (the stages summed here per group;
    a model may override it to run each pass once).
    """

    def forward(self, species: Tensor, edge_index: Tensor, edge_vectors: Tensor, n_local: int,
                charge: float = 0.0, spin: int = 1) -> Dict[str, Tensor]:
        n = species.shape[0]
        return self.forward_inline(species, edge_index, edge_vectors, n_local,
                                   _one_group(n, charge, spin, edge_vectors),
                                   torch.zeros(n, dtype=torch.long, device=edge_vectors.device), 1)

    @torch.jit.export
    def forward_inline(self, species: Tensor, edge_index: Tensor, edge_vectors: Tensor, n_local: int,
                       state: Tensor, group: Tensor, n_groups: int) -> Dict[str, Tensor]:
        """Outputs for one domain holding every atom of every group; group: (n_all,) each
        atom's group in [0, n_groups) (ghosts: their owner's)."""
        local = group[:n_local]
        sums: List[Tensor] = []
        for k in range(len(self.reduction_widths)):
            x = self.reduction_inputs_grouped(k, species, edge_index, edge_vectors, n_local, state,
                                              [t[group] for t in sums])
            sums.append(torch.zeros((n_groups, x.shape[1]), dtype=x.dtype, device=x.device).index_add(0, local, x))
        return self.forward_grouped(species, edge_index, edge_vectors, n_local, state,
                                    [t[group] for t in sums])

    @torch.jit.export
    def reduction_inputs(self, stage: int, species: Tensor, edge_index: Tensor, edge_vectors: Tensor,
                         n_local: int, charge: float, spin: int, sums: List[Tensor]) -> Tensor:
        n = species.shape[0]
        return self.reduction_inputs_grouped(stage, species, edge_index, edge_vectors, n_local,
                                             _one_group(n, charge, spin, edge_vectors),
                                             [s.unsqueeze(0).expand(n, s.shape[0]) for s in sums])

    @torch.jit.export
    def forward_reduced(self, species: Tensor, edge_index: Tensor, edge_vectors: Tensor, n_local: int,
                        charge: float, spin: int, sums: List[Tensor]) -> Dict[str, Tensor]:
        n = species.shape[0]
        return self.forward_grouped(species, edge_index, edge_vectors, n_local,
                                    _one_group(n, charge, spin, edge_vectors),
                                    [s.unsqueeze(0).expand(n, s.shape[0]) for s in sums])

    def reduction_inputs_grouped(self, stage: int, species: Tensor, edge_index: Tensor,
                                 edge_vectors: Tensor, n_local: int, state: Tensor,
                                 sums: List[Tensor]) -> Tensor:
        raise NotImplementedError

    def forward_grouped(self, species: Tensor, edge_index: Tensor, edge_vectors: Tensor, n_local: int,
                        state: Tensor, sums: List[Tensor]) -> Dict[str, Tensor]:
        raise NotImplementedError


def _one_group(n: int, charge: float, spin: int, like: Tensor) -> Tensor:
    """(n, 3) rows [charge, spin, 0]: every atom in the one group, no external potential."""
    row = torch.tensor([charge, float(spin), 0.0], dtype=like.dtype, device=like.device)
    return row.unsqueeze(0).expand(n, 3)


def supports_groups(module) -> bool:
    """Whether a (Python or TorchScript) model has the grouped methods of GroupReduced."""
    return all(hasattr(module, m) for m in ("forward_grouped", "reduction_inputs_grouped", "forward_inline"))


def grouped_forward(module, species: Tensor, edge_index: Tensor, edge_vectors: Tensor, n_local: int,
                    group: Tensor, totals: Tensor, potential: Optional[Tensor] = None) -> Dict[str, Tensor]:
    """A GroupReduced model's outputs with its sums taken per group, on one domain.

    group: (n_all,) int64, each atom's group in [0, G) (ghost atoms: their owner's);
    totals: (G, 2) [Q e, M] per group; potential: (n_all,) V external potential at each atom,
    or None.  Differentiable (training builds on it)."""
    if not supports_groups(module):
        raise ValueError("this model takes one total charge per system: it has no per-group "
                         "(per-molecule) reductions (multiscale.model.reductions.GroupReduced)")
    totals = totals.to(edge_vectors.dtype)
    if potential is None:
        potential = torch.zeros(group.shape[0], dtype=edge_vectors.dtype, device=edge_vectors.device)
    node_totals = torch.cat([totals[group], potential.to(edge_vectors.dtype).unsqueeze(1)], 1)
    return module.forward_inline(species, edge_index, edge_vectors, n_local, node_totals, group,
                                 int(totals.shape[0]))
