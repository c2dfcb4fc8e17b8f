"""TorchScript graph helpers shared by models: per-atom sums and triplets.

No library offers these two on our edge-list layout (vesin gives pairs, not
angle triplets), so they are written here.
"""

from typing import Tuple

import torch
from torch import Tensor


def scatter_sum(values: Tensor, index: Tensor, size: int) -> Tensor:
    """Sum ``values`` (n, ...) into ``size`` rows by ``index`` (n,)."""
    out = torch.zeros((size,) + values.shape[1:], dtype=values.dtype, device=values.device)
    return out.index_add_(0, index, values)


def triplets(centres: Tensor, edges: Tensor, n_all: int) -> Tuple[Tensor, Tensor]:
    """All unordered pairs of edges that share a centre atom.

    centres: (m,) centre atom of each candidate edge; edges: (m,) their edge ids.
    Returns (e1, e2), edge ids of each triplet j-i-k with e1 before e2 in
    centre-sorted order, so each angle appears once.
    """
    order = torch.argsort(centres, stable=True)
    centres = centres[order]
    edges = edges[order]
    m = centres.shape[0]
    # edges per centre; index_add rather than bincount, whose output size torch.export cannot
    # know (it is max(centres) + 1 when that exceeds n_all): here it is n_all by the contract
    counts = torch.zeros(n_all, dtype=centres.dtype, device=centres.device).index_add_(
        0, centres, torch.ones_like(centres))
    start = torch.cumsum(counts, 0) - counts
    rank = torch.arange(m, device=centres.device) - start[centres]
    partners = counts[centres] - rank - 1
    first = torch.repeat_interleave(torch.arange(m, device=centres.device), partners)
    offsets = torch.cumsum(partners, 0) - partners
    step = torch.arange(first.shape[0], device=centres.device) - offsets[first]
    second = first + 1 + step
    return edges[first], edges[second]
