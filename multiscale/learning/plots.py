"""Plots of what people look at: learning curves, active-learning rounds.  Only here is
matplotlib imported, and only with the Agg backend."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence


def _pyplot():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def _save(plt, fig, path: str | Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return Path(path)


def learning_curves(histories: Sequence[Sequence[dict]], path: str | Path) -> Path:
    """Validation energy MAE and force RMSE against epoch, one line per ensemble member; a
    dotted line where a [fine_tune] stage begins."""
    plt = _pyplot()
    fig, (ax_e, ax_f) = plt.subplots(1, 2, figsize=(9, 3.5))
    for k, history in enumerate(histories):
        epochs = [row["epoch"] for row in history]
        ax_e.semilogy(epochs, [row.get("energy_mae_meV_per_atom", float("nan")) for row in history],
                      label=f"member {k}")
        ax_f.semilogy(epochs, [row.get("force_rmse_eV_per_A", float("nan")) for row in history])
        starts = [row["epoch"] - 0.5 for prev, row in zip(history, history[1:])
                  if row.get("stage") != prev.get("stage")]
        for x in starts if k == 0 else []:
            for ax in (ax_e, ax_f):
                ax.axvline(x, color="0.5", linestyle=":", label="fine_tune" if ax is ax_e else None)
    ax_e.set(xlabel="epoch", ylabel="validation energy MAE (meV/atom)")
    ax_f.set(xlabel="epoch", ylabel="validation force RMSE (eV/Å)")
    ax_e.legend(fontsize=8)
    return _save(plt, fig, path)


def active_learning_rounds(rounds: Sequence[dict], path: str | Path) -> Path:
    """Held-out errors and committee disagreement against active-learning round."""
    plt = _pyplot()
    fig, (ax_f, ax_d) = plt.subplots(1, 2, figsize=(9, 3.5))
    r = [row["round"] for row in rounds]
    ax_f.plot(r, [row["test_force_rmse_eV_per_A"] for row in rounds], "o-", label="force RMSE (eV/Å)")
    ax_f.plot(r, [row["test_energy_mae_meV_per_atom"] / 1e3 for row in rounds], "s-",
              label="energy MAE (eV/atom)")
    ax_f.set(xlabel="round", ylabel="held-out error", yscale="log")
    ax_f.legend(fontsize=8)
    ax_d.plot(r, [row["test_mean_disagreement_eV_per_atom"] for row in rounds], "o-", label="mean")
    ax_d.plot(r, [row["test_max_disagreement_eV_per_atom"] for row in rounds], "s-", label="max")
    ax_d.set(xlabel="round", ylabel="committee disagreement on held-out set (eV/atom)", yscale="log")
    ax_d.legend(fontsize=8)
    return _save(plt, fig, path)


def parity(reference: dict, predicted: dict, path: str | Path, title: str = "") -> Path:
    """Predicted against reference energies (eV/atom) and force components (eV/Å).

    ``reference`` and ``predicted``: {"energy_per_atom": (n_structures,), "forces": (n_components,)}.
    """
    import numpy as np
    plt = _pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(9, 4))
    for ax, key, unit in ((axes[0], "energy_per_atom", "eV/atom"), (axes[1], "forces", "eV/Å")):
        x, y = np.asarray(reference[key]), np.asarray(predicted[key])
        lo, hi = min(x.min(), y.min()), max(x.max(), y.max())
        ax.plot([lo, hi], [lo, hi], color="0.6", lw=1)
        ax.scatter(x, y, s=4, alpha=0.5)
        err = np.abs(x - y).mean() if key == "energy_per_atom" else np.sqrt(((x - y) ** 2).mean())
        label = f"MAE {1e3 * err:.2f} meV/atom" if key == "energy_per_atom" else f"RMSE {err:.3f} eV/Å"
        ax.set_xlabel(f"reference ({unit})")
        ax.set_ylabel(f"model ({unit})")
        ax.set_title(f"{key.replace('_', ' ')}: {label}", fontsize=10)
    if title:
        fig.suptitle(title, fontsize=10)
    return _save(plt, fig, path)
