"""Neighbour lists for ASE-style systems (all atoms local, images by shifts), via vesin."""

from __future__ import annotations

import numpy as np
import torch
import vesin


def edges(positions: np.ndarray, cell: np.ndarray, pbc, cutoff: float):
    """Full neighbour list of atoms closer than ``cutoff``.

    positions: (N, 3) Å; cell: (3, 3) Å, rows are lattice vectors; pbc: 3 booleans.
    Returns edge_index (2, E) int64 and edge_vectors (E, 3) float64 = r_j + S.cell - r_i.
    """
    positions = np.ascontiguousarray(positions, dtype=np.float64)
    cell = np.asarray(cell, dtype=np.float64)
    pbc = np.broadcast_to(np.asarray(pbc, dtype=bool), (3,))
    box = cell.copy()
    for k in range(3):
        if not pbc[k] and np.linalg.norm(box[k]) == 0.0:
            # vesin needs a full-rank box; a non-periodic direction's vector is never used
            box[k] = np.eye(3)[k] * (np.ptp(positions[:, k]) + 2 * cutoff if len(positions) else 1.0)
    if pbc.any() and abs(np.linalg.det(box)) < 1e-12:
        raise ValueError("the cell is degenerate (zero volume) in a periodic direction")
    nl = vesin.NeighborList(cutoff=cutoff, full_list=True, sorted=True)
    # vesin's own vectors r_j + S.box - r_i: the box it was given is the cell in every periodic
    # direction, and a non-periodic direction's shift is zero
    i, j, vectors = nl.compute(points=positions, box=box, periodic=pbc.tolist(), quantities="ijD")
    i = torch.from_numpy(i.astype(np.int64))
    j = torch.from_numpy(j.astype(np.int64))
    return torch.stack([i, j]), torch.from_numpy(np.ascontiguousarray(vectors, dtype=np.float64))
