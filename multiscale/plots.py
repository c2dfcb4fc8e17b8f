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


def learning_curves(histories: Sequence[Sequence[dict]], path: str | Path) -> Path:
    """Validation energy MAE and force RMSE against epoch, one line per ensemble member."""
    plt = _pyplot()
    fig, (ax_e, ax_f) = plt.subplots(1, 2, figsize=(9, 3.5))
    for k, history in enumerate(histories):
        epochs = [row["epoch"] for row in history]
        ax_e.semilogy(epochs, [row.get("energy_mae_meV_per_atom", float("nan")) for row in history],
                      label=f"member {k}")
        ax_f.semilogy(epochs, [row.get("force_rmse_eV_per_A", float("nan")) for row in history])
    ax_e.set(xlabel="epoch", ylabel="validation energy MAE (meV/atom)")
    ax_f.set(xlabel="epoch", ylabel="validation force RMSE (eV/Å)")
    ax_e.legend(fontsize=8)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


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
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
