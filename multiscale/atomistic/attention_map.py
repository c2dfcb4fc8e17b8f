"""Which bonds an attention potential attends to, in a crack region or a molecule.

    pairs, weights = bond_attention(atoms, "si-attention")        # (B, 2) atoms, (B,) weights
    plot_attention(atoms, "si-attention", "attention.png")        # or `multiscale attention`

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


def bond_attention(atoms, model, layer: int | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-bond attention of ``model`` (a path, shipped name or LoadedModel) on ``atoms``.

    layer: which attention layer (0-based, negative from the end); None averages them.
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
    return bonds[:, :2].astype(int), weights, bonds[:, 2:]


def plot_attention(atoms, model, path: str | os.PathLike, layer: int | None = None,
                   top: float = 0.15, axes: tuple[int, int] = (0, 1), title: str | None = None,
                   bonds: tuple | None = None) -> Path:
    """Draw the bonds that carry the most attention, projected on the plane of ``axes``
    (0, 1: x-y, the plane of a crack region), and write ``path`` (PNG).

    top: the fraction of bonds drawn in colour (the strongest); the rest are grey.
    bonds: what :func:`bond_attention` returned for these atoms, model and layer, if at hand.
    """
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.collections import LineCollection

    pairs, weights, vectors = bonds if bonds is not None else bond_attention(atoms, model, layer)
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
