"""Results of a coupled run: ``results.h5`` and the plots.

results.h5 (written atomically):

    /config                          the configuration's TOML text
    /regions/NAME/                   attrs: K_G (GPa sqrt(Å)), potential, ranks, material constants
        history/COLUMN               (n_increments,) increment, K, K_over_KG, tip_x, tip_y,
                                     continuum_tip_x/_y (Å), energy (eV), advanced, iterations,
                                     n_atoms, seconds_lammps, seconds_continuum, seconds_coupling,
                                     seconds_increment; mode "md" instead: increment, time (ps),
                                     K, tip_x, tip_y, velocity (m/s), energy, temperature,
                                     temperature_layer (K), advanced, K_over_KG, continuum_tip_x/_y,
                                     steps, n_atoms and the seconds
        (feedback runs add: stress GPa, compliance Å/GPa, load_line_displacement Å,
                                     schwarz_iterations, schwarz_residual Å, interface_force_change,
                                     schwarz_converged)
        stress/                      near-tip stress samples of every increment, concatenated:
            increment, K, tip        (n_increments,), (n_increments,), (n_increments, 2)
            offsets                  (n_increments + 1,): rows of increment j are offsets[j]:offsets[j+1]
            xy                       (m, 2) Å, atom positions
            atomistic, continuum     (m, 3) GPa sigma_xx, sigma_yy, sigma_xy (LAMMPS; the run's continuum model at the same points)
        trapping/                    mode "trapping" only: the lattice-trapping curve (TrappingCurve.write):
                                     attrs K_minus, K_plus, K_G (GPa sqrt(Å), also on the region's group),
                                     radius, stopped, past_K_plus / past_K_minus (what the crack does
                                     1 % beyond each fold); alpha, K, energy, max_force_free, max_force_boundary,
                                     evaluations (n_points,), positions (n_points, n_free, 3); with
                                     [trapping] outer > 0 also shell (n_points, n_II-IV, 3), Å
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

COLUMNS = ("increment", "K", "K_over_KG", "tip_x", "tip_y", "continuum_tip_x", "continuum_tip_y",
           "energy", "advanced", "iterations", "n_atoms", "seconds_lammps", "seconds_continuum",
           "seconds_coupling", "seconds_increment")


def write_results(path: Path, config, tracks) -> Path:
    import h5py
    tmp = path.with_name(path.name + ".tmp")
    with h5py.File(tmp, "w") as f:
        f["config"] = config.text
        for t in tracks:
            g = f.create_group(f"regions/{t.name}")
            g.attrs["K_G"] = t.k_g
            g.attrs["potential"] = t.config.spec["potential"]
            g.attrs["ranks"] = t.group.world_ranks
            for key, value in t.material.as_dict().items():
                g.attrs[key] = value
            for column in (list(t.rows[0]) if t.rows else COLUMNS):
                g[f"history/{column}"] = np.array([row[column] for row in t.rows])
            s = t.samples
            sizes = [len(x["xy"]) for x in s]
            g["stress/increment"] = np.array([x["increment"] for x in s], dtype=int)
            g["stress/K"] = np.array([x["K"] for x in s], dtype=float)
            g["stress/tip"] = np.array([x["tip"] for x in s], dtype=float).reshape(-1, 2)
            g["stress/offsets"] = np.concatenate([[0], np.cumsum(sizes)]).astype(int)
            for key, width in (("xy", 2), ("atomistic", 3), ("continuum", 3)):
                rows = [np.asarray(x[key], float).reshape(-1, width) for x in s]
                g[f"stress/{key}"] = np.concatenate(rows) if rows else np.zeros((0, width))
            if t.trapping is not None:
                t.trapping.write(g.create_group("trapping"))
                for key in ("K_minus", "K_plus"):
                    g.attrs[key] = g["trapping"].attrs[key]
    os.replace(tmp, path)
    return path


def read_history(path: Path) -> dict[str, dict[str, np.ndarray]]:
    """Region name -> column -> array, from a results.h5."""
    import h5py
    with h5py.File(path, "r") as f:
        return {name: {c: g["history"][c][()] for c in g["history"]} | {"K_G": g.attrs["K_G"]}
                for name, g in f["regions"].items()}


CONTINUUM_LABELS = {"lefm": "LEFM", "fem": "FE", "predictor": "predictor"}


def plot_all(folder: Path, tracks, continuum: str = "lefm") -> list[Path]:
    """``k_extension.png`` and ``stress_yy.png`` in ``folder``; ``continuum`` the run's model."""
    return [plot_k_extension(folder / "k_extension.png", tracks),
            plot_stress(folder / "stress_yy.png", tracks, CONTINUUM_LABELS.get(continuum, continuum))]


def plot_trapping(path: Path, tracks) -> Path | None:
    """K/K_G against the tip position of every region that traced its curve, in one figure."""
    curves = {t.name: t.trapping for t in tracks if t.trapping is not None and len(t.trapping.K) > 1}
    if not curves:
        return None
    (name, first), *others = curves.items()
    first.plot(path, dict(others), label=name)
    return path


def plot_load_displacement(path: Path, tracks) -> Path | None:
    """[continuum] feedback: remote stress against load-line displacement of the coupled specimen
    per region (the crack's advances marked), with the FE specimen's own line, and the compliance
    against K."""
    tracks = [t for t in tracks if t.rows and "compliance" in t.rows[0]]
    if not tracks:
        return None
    plt = _pyplot()
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(11, 4.2))
    for j, t in enumerate(tracks):
        stress = np.array([r["stress"] for r in t.rows])
        disp = np.array([r["load_line_displacement"] for r in t.rows])
        advanced = np.array([r["advanced"] for r in t.rows], bool)
        ax.plot(disp, stress, "o-", ms=3, color=f"C{j}", label=f"{t.name}: specimen + atoms")
        ax.plot(disp[advanced], stress[advanced], "x", ms=8, color=f"C{j}")
        top = stress.max() * 1.05
        ax.plot([0, t.fe_compliance * top], [0, top], "--", color=f"C{j}", lw=1, label=f"{t.name}: specimen alone")
        bx.plot([r["K"] / t.k_g for r in t.rows], [r["compliance"] / t.fe_compliance for r in t.rows], "o-", ms=3,
                color=f"C{j}", label=t.name)
    ax.set_xlabel("load-line displacement (Å)")
    ax.set_ylabel("remote stress (GPa)")
    ax.set_title("with atomistic feedback (x: the crack advanced)")
    ax.legend(fontsize=7)
    bx.set_xlabel(r"$K / K_G$ at the current tip")
    bx.set_ylabel("compliance / the specimen's alone")
    bx.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_md(path: Path, tracks) -> Path | None:
    """Mode "md": tip position, tip velocity and temperatures against time, and K against crack
    extension, one line per region."""
    tracks = [t for t in tracks if len(t.rows) > 1]
    if not tracks:
        return None
    plt = _pyplot()
    fig, axes = plt.subplots(2, 2, figsize=(10, 7))
    for j, t in enumerate(tracks):
        time = np.array([r["time"] for r in t.rows])
        tip = np.array([r["tip_x"] for r in t.rows])
        k = np.array([r["K"] for r in t.rows]) / t.k_g
        axes[0, 0].plot(time, tip, "-", color=f"C{j}", label=t.name)
        axes[0, 1].plot(time, [r["velocity"] for r in t.rows], "-", color=f"C{j}")
        axes[1, 0].plot(time[1:], [r["temperature"] for r in t.rows[1:]], "-", color=f"C{j}", label=f"{t.name} NVE core")
        axes[1, 0].plot(time[1:], [r["temperature_layer"] for r in t.rows[1:]], ":", color=f"C{j}",
                        label=f"{t.name} Langevin layer")
        axes[1, 1].plot(tip - tip[0], k, "o-", ms=2, color=f"C{j}")
    axes[0, 0].set_ylabel("tip x (Å)")
    axes[0, 1].set_ylabel(f"tip velocity (m/s, slope over {tracks[0].loading.window} exchanges)")
    axes[1, 0].set_ylabel("temperature (K)")
    axes[1, 0].legend(fontsize=8)
    for ax in (axes[0, 0], axes[0, 1], axes[1, 0]):
        ax.set_xlabel("time (ps)")
    axes[1, 1].set_xlabel("crack extension (Å)")
    axes[1, 1].set_ylabel(r"$K / K_G$")
    axes[1, 1].axhline(1.0, color="k", ls="--", lw=1)
    axes[0, 0].legend(fontsize=8)
    fig.suptitle("crack at temperature: MD region under a K rate")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _pyplot():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def plot_k_extension(path: Path, tracks) -> Path:
    """K against crack extension (atomistic tip x minus the initial tip) per region, K_G dashed."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    for j, t in enumerate(tracks):
        if not t.rows:
            continue
        color = f"C{j}"
        k = np.array([r["K"] for r in t.rows]) / 100
        x = np.array([r["tip_x"] for r in t.rows]) - t.rows[0]["continuum_tip_x"]
        ax.plot(x, k, "o-", ms=3, color=color, label=t.name)
        ax.axhline(t.k_g / 100, color=color, ls="--", lw=1, label=f"$K_G$ {t.name}")
    ax.set_xlabel("crack extension (Å)")
    ax.set_ylabel(r"$K_I$ (MPa$\sqrt{m}$)")
    ax.set_title("quasi-static crack growth")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def _snapshot(t) -> dict | None:
    """The stress sample of the last increment before the first advance (else the last)."""
    if not t.samples:
        return None
    advanced = [r["advanced"] for r in t.rows]
    j = advanced.index(True) if True in advanced else len(t.samples) - 1
    return t.samples[max(j - 1, 0) if True in advanced else j]


def plot_stress(path: Path, tracks, continuum: str = "LEFM") -> Path:
    """Per region: atomistic and continuum sigma_yy around the tip, and the atomistic one ahead
    of the tip beside the K-field's K/sqrt(2 pi r)."""
    plt = _pyplot()
    fig, axes = plt.subplots(len(tracks), 3, figsize=(13, 3.8 * len(tracks)), squeeze=False)
    for row, t in zip(axes, tracks):
        s = _snapshot(t)
        if s is None or len(s["xy"]) == 0:
            for ax in row:
                ax.set_axis_off()
            continue
        xy, tip = np.asarray(s["xy"]), np.asarray(s["tip"])
        atom, cont = np.asarray(s["atomistic"])[:, 1], np.asarray(s["continuum"])[:, 1]
        lim = np.nanpercentile(np.abs(np.concatenate([atom, cont])), 95)
        for ax, values, title in ((row[0], atom, "atomistic"), (row[1], cont, continuum)):
            sc = ax.scatter(xy[:, 0] - tip[0], xy[:, 1] - tip[1], c=values, s=12, cmap="RdBu_r",
                            vmin=-lim, vmax=lim)
            ax.set_aspect("equal")
            ax.set_title(rf"{t.name}: {title} $\sigma_{{yy}}$, K = {s['K'] / t.k_g:.3f} $K_G$", fontsize=9)
            ax.set_xlabel("x - tip (Å)")
            ax.set_ylabel("y - tip (Å)")
            fig.colorbar(sc, ax=ax, label="GPa")
        d = xy - tip
        ahead = (d[:, 0] > 0) & (np.abs(d[:, 1]) < 2.0)
        ax = row[2]
        ax.plot(d[ahead, 0], atom[ahead], "o", ms=4, label="atomistic")
        r = np.linspace(max(d[ahead, 0].min(initial=1.0), 0.5), max(d[ahead, 0].max(initial=2.0), 2.0), 200)
        ax.plot(r, s["K"] / np.sqrt(2 * np.pi * r), "-", label=r"LEFM $K/\sqrt{2\pi r}$")
        ax.set_xlabel("distance ahead of the tip (Å)")
        ax.set_ylabel(r"$\sigma_{yy}$ (GPa)")
        ax.set_title(r"ahead of the tip, $|y - y_{tip}| < 2$ Å", fontsize=9)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
