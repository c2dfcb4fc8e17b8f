"""Which bonds an attention potential attends to, in a crack region or a molecule.

    pairs, weights, vectors = bond_attention(atoms, "si-attention")   # (B, 2), (B,), (B, 3)
    plot_attention(atoms, "si-attention", "attention.png")            # or `multiscale attention`
    broken = broken_bonds(before, after)     # the bonds that broke between two configurations

The model's ``attention`` output (n_edges, layers, heads) gives, for each directed edge
i -> j, the weight atom i puts on neighbour j's values in each layer and head (cutoff
included; docs/attention.md). A bond's attention is the mean |weight| over heads and over
its two directions, in one layer or averaged over all of them.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..engines.ase_calculator import MultiscaleCalculator


def bond_attention(atoms, model, layer: int | None = None,
                   max_distance: float | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-bond attention of ``model`` (a path, shipped name or LoadedModel) on ``atoms``.

    layer: which attention layer (0-based, negative from the end); None averages them.
    max_distance: Å; keep only the pairs closer than this (e.g. the covalent bonds), not every
    edge within the model's cutoff.
    Returns pairs (B, 2) with i < j, weights (B,), and vectors (B, 3) Å from atom i to the
    image of j the bond goes to (periodic structures).
    """
    calc = MultiscaleCalculator(model)
    if "attention" not in calc.model.metadata.outputs:
        raise ValueError(f"model {calc.model.metadata.name!r} has no attention output (outputs: "
                         f"{list(calc.model.metadata.outputs)}); attention maps need an attention "
                         "potential such as si-attention")
    atoms = atoms.copy()
    atoms.calc = calc
    attention = np.abs(calc.get_property("attention", atoms))   # (E, layers, heads)
    index = calc.results["edge_index"]
    layers = attention.shape[1]
    if layer is not None and not -layers <= layer < layers:
        raise ValueError(f"layer {layer} out of range: the model has {layers} attention layers (0..{layers - 1})")
    per_edge = (attention.mean(axis=1) if layer is None else attention[:, layer]).mean(axis=1)
    i, j = index
    vectors = calc.results["edge_vectors"]
    # one entry per bond: an edge and its reverse are the same pair with opposite vectors
    forward = (i < j)[:, None]
    pair = np.where(forward, np.stack([i, j], 1), np.stack([j, i], 1))
    keys = np.concatenate([pair, np.round(np.where(forward, vectors, -vectors), 6)], axis=1)
    bonds, inverse = np.unique(keys, axis=0, return_inverse=True)
    inverse = inverse.reshape(-1)
    weights = np.bincount(inverse, weights=per_edge) / np.bincount(inverse)
    pairs, vectors = bonds[:, :2].astype(int), bonds[:, 2:]
    if max_distance is not None:
        keep = np.linalg.norm(vectors, axis=1) < max_distance
        pairs, weights, vectors = pairs[keep], weights[keep], vectors[keep]
    return pairs, weights, vectors


def broken_bonds(before, after, bonded: float = 2.7, apart: float = 3.2) -> np.ndarray:
    """The bonds (k, 2), i < j, shorter than ``bonded`` Å in ``before`` and longer than
    ``apart`` Å in ``after`` (the same atoms in the same order; periodic directions by the
    minimum image), e.g. the bonds a crack broke between two increments."""
    from ase.geometry import find_mic
    from ase.neighborlist import neighbor_list
    if len(before) != len(after):
        raise ValueError(f"before has {len(before)} atoms and after {len(after)}: broken_bonds needs "
                         "the same atoms in the same order")
    i, j = neighbor_list("ij", before, bonded)
    keep = i < j
    i, j = i[keep], j[keep]
    _, length = find_mic(after.positions[j] - after.positions[i], after.cell, after.pbc)
    return np.stack([i, j], 1)[length > apart]


def plot_attention(atoms, model, path: str | os.PathLike, layer: int | None = None,
                   top: float = 0.15, axes: tuple[int, int] = (0, 1), title: str | None = None,
                   bonds: tuple | None = None, mark: np.ndarray | None = None,
                   max_distance: float | None = None) -> Path:
    """Draw the bonds that carry the most attention, projected on the plane of ``axes``
    (0, 1: x-y, the plane of a crack region), and write ``path`` (PNG).

    top: the fraction of bonds drawn in colour (the strongest); the rest are grey.
    bonds: what :func:`bond_attention` returned for these atoms, model and layer, if at hand.
    mark: pairs (k, 2) drawn as red dashed lines on top (e.g. :func:`broken_bonds`).
    max_distance: as for :func:`bond_attention`.
    """
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.collections import LineCollection

    pairs, weights, vectors = bonds if bonds is not None else bond_attention(atoms, model, layer, max_distance)
    a, b = axes
    start = atoms.positions[pairs[:, 0]]
    end = start + vectors
    segments = np.stack([start[:, [a, b]], end[:, [a, b]]], 1)
    strongest = np.argsort(weights)[-max(1, int(round(top * len(weights)))):]
    fig, ax = plt.subplots(figsize=(7, 6))
    ax.add_collection(LineCollection(segments, colors="0.85", linewidths=0.5, zorder=1))
    scale = weights[strongest]
    lines = LineCollection(segments[strongest],
                           array=scale, cmap="viridis", linewidths=0.8 + 3.0 * scale / scale.max(), zorder=2)
    ax.add_collection(lines)
    if mark is not None and len(mark):
        p, q = atoms.positions[mark[:, 0]], atoms.positions[mark[:, 1]]
        ax.add_collection(LineCollection(np.stack([p[:, [a, b]], q[:, [a, b]]], 1), colors="red",
                                         linestyles="--", linewidths=1.2, zorder=4, label="marked"))
    ax.scatter(atoms.positions[:, a], atoms.positions[:, b], s=8, c="k", zorder=3)
    fig.colorbar(lines, ax=ax, label="attention, mean |weight| over heads"
                 + (" and layers" if layer is None else f", layer {layer}"))
    ax.set_aspect("equal")
    ax.autoscale()
    ax.set_xlabel(f"{'xyz'[a]} (Å)")
    ax.set_ylabel(f"{'xyz'[b]} (Å)")
    ax.set_title(title or f"strongest {100 * top:.0f} % of bonds by attention")
    path = Path(path)
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)
    return path
