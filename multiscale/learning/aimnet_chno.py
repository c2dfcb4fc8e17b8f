"""The shipped charge/spin-aware model ``aimnet-chno``: data, training, validation, ablation.

    multiscale build-aimnet-chno [--conformers 5] [--ablation]

1. G2 molecules of C, H, N, O (multiscale.reference.charge_states) in charge states -2 .. +2
   and their singlet/doublet/triplet multiplicities, labelled by GFN2-xTB (tblite): energies,
   forces, charges, dipoles.  Every 7th molecule of three or more atoms (by name) is held out
   whole (the diatomics, H2, O2, CO, ..., are each the only example of their bond and stay
   in training);
2. an AIMNet2-class model (multiscale/data/aimnet_chno.toml) trained on energy + forces +
   charges + dipoles;
3. validation on the held-out molecules: errors per charge state, vertical ionisation
   potentials and electron affinities (E(Q+1) - E(Q)) and E(Q) over Q = -2 .. +2 against xTB,
   with a plot; written to multiscale/data/aimnet_chno.json (the model card,
   docs/aimnet_chno.md, quotes it);
4. ``--ablation``: the same model trained on energy + forces only (charge and dipole weights
   0), same data and epochs, and the held-out table of both (aimnet_chno_ablation.json).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Callable

import numpy as np

from ..model.registry import DATA

CONFIG = DATA / "aimnet_chno.toml"
WORK = DATA / "aimnet_chno_run"
HOLD_OUT_EVERY = 7


def split_molecules() -> tuple[list[str], list[str]]:
    """(training, held-out) G2 names: every HOLD_OUT_EVERY-th molecule of 3 or more atoms is
    held out."""
    from ase.collections import g2
    from ..reference.charge_states import chno_molecules
    names = chno_molecules()
    held = [n for n in names if len(g2[n]) >= 3][3::HOLD_OUT_EVERY]
    return [n for n in names if n not in held], held


def make_data(work: Path = WORK, conformers: int = 5, log: Callable[[str], None] = print) -> tuple[Path, Path]:
    """train.h5 and test.h5 in ``work`` (kept: a second build reuses them)."""
    from ..reference.charge_states import geometries
    return write_split(work, (conformers, max(2, conformers // 2)), geometries, "structures", log)


def write_split(work: Path, counts: tuple[int, int], make: Callable, what: str,
                log: Callable[[str], None] = print) -> tuple[Path, Path]:
    """train.h5 and test.h5 in ``work`` from the training and held-out molecules of
    split_molecules, labelled by GFN2-xTB (files kept: a second build reuses them).
    counts: geometries per molecule and state for (train, test); make(names, count, seed)
    returns the unlabelled structures (seed 0 for training, 1 for test); what: how to call them in the log."""
    from ..reference.charge_states import label_xtb
    from .data import write_structures
    work.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, names, seed, count in zip(("train", "test"), split_molecules(), (0, 1), counts):
        path = work / f"{name}.h5"
        if not path.exists():
            structures = make(names, count, seed)
            log(f"{name} set: {len(names)} molecules, {len(structures)} {what} to label with GFN2-xTB")
            write_structures(path, label_xtb(structures, progress=log))
        paths.append(path)
    return paths[0], paths[1]


def per_state_errors(model_file, test_file) -> dict:
    """Held-out errors of a model file, overall and per total charge Q."""
    import multiscale
    from .data import StructureDataset, read_structures
    from .trainer import evaluate
    loaded = multiscale.load(model_file)
    test = read_structures(test_file)
    dataset = StructureDataset(test, loaded.metadata.elements, loaded.metadata.cutoff)
    out = {"all": {"structures": len(test), **evaluate(loaded.module, dataset, range(len(test)))}}
    for q in sorted({int(a.info.get("charge", 0)) for a in test}):
        idx = [k for k, a in enumerate(test) if int(a.info.get("charge", 0)) == q]
        out[f"Q={q:+d}"] = {"structures": len(idx), **evaluate(loaded.module, dataset, idx)}
    return out


def charge_curves(model_file, names, figure: Path | None = None) -> dict:
    """E(Q) - E(0) (eV) over Q = -2 .. +2 at each molecule's G2 geometry, lowest multiplicity,
    for the model and GFN2-xTB; vertical IP = E(+1) - E(0), EA = E(0) - E(-1)."""
    from ase.build import molecule
    from tblite.ase import TBLite
    from ..engines.ase_calculator import MultiscaleCalculator
    from ..reference.charge_states import CHARGES, multiplicities
    calc = MultiscaleCalculator(model_file)
    curves = {}
    for name in names:
        atoms = molecule(name)
        z = int(atoms.get_atomic_numbers().sum())
        row = {"Q": [], "xtb": [], "model": []}
        for q in CHARGES:
            m = multiplicities(z - q, q)[0]
            ref = atoms.copy()
            ref.calc = TBLite(method="GFN2-xTB", charge=q, multiplicity=m, verbosity=0)
            try:
                e_ref = ref.get_potential_energy()
            except Exception:
                continue
            ours = atoms.copy()
            ours.info.update(charge=q, spin=m)
            ours.calc = calc
            row["Q"].append(q)
            row["xtb"].append(e_ref)
            row["model"].append(ours.get_potential_energy())
        if 0 not in row["Q"]:
            continue
        k0 = row["Q"].index(0)
        for key in ("xtb", "model"):
            row[key] = [e - row[key][k0] for e in row[key]]
        curves[name] = row
    ip = [(c["model"][c["Q"].index(1)], c["xtb"][c["Q"].index(1)]) for c in curves.values() if 1 in c["Q"]]
    ea = [(-c["model"][c["Q"].index(-1)], -c["xtb"][c["Q"].index(-1)]) for c in curves.values() if -1 in c["Q"]]
    shape = [abs(m - x) for c in curves.values() for m, x in zip(c["model"], c["xtb"])]
    summary = {"ip_mae_eV": float(np.mean([abs(a - b) for a, b in ip])),
               "ea_mae_eV": float(np.mean([abs(a - b) for a, b in ea])),
               "energy_vs_charge_mae_eV": float(np.mean(shape)), "molecules": len(curves)}
    if figure is not None:
        _plot_curves(curves, figure)
    return {"summary": summary, "curves": curves}


def field_response(model_file, names, strength: float = 0.3) -> dict:
    """The response to a uniform field of ``strength`` V/Å along x, y, z at each neutral
    molecule's G2 geometry: the dipole change (e Å; the model's sum q_i r_i, xTB's full dipole)
    and the energy change (eV), model and GFN2-xTB; their mean diagonal polarisabilities
    (e Å^2/V = d mu / d E)."""
    from ase.build import molecule
    from ..engines.ase_calculator import MultiscaleCalculator
    from ..reference.charge_states import multiplicities, xtb
    calc = MultiscaleCalculator(model_file)
    rows = {}
    for name in names:
        atoms = molecule(name)
        atoms.positions -= atoms.get_center_of_mass()
        m = multiplicities(int(atoms.get_atomic_numbers().sum()), 0)[0]
        ref0 = xtb(atoms, 0, m)
        ours = atoms.copy()
        ours.info.update(charge=0, spin=m)
        ours.calc = calc
        e0, mu0 = ours.get_potential_energy(), ours.get_charges() @ ours.positions
        alpha_model, alpha_xtb, d_energy = [], [], []
        for axis in range(3):
            field = np.zeros(3)
            field[axis] = strength
            ref = xtb(atoms, 0, m, field=field)
            ours.info["electric_field"] = field
            alpha_xtb.append((ref["dipole"][axis] - ref0["dipole"][axis]) / strength)
            alpha_model.append((ours.get_charges() @ ours.positions - mu0)[axis] / strength)
            d_energy.append((ours.get_potential_energy() - e0, ref["energy"] - ref0["energy"]))
            del ours.info["electric_field"]
        rows[name] = {"alpha_model_eA2_per_V": float(np.mean(alpha_model)),
                      "alpha_xtb_eA2_per_V": float(np.mean(alpha_xtb)),
                      "field_energy_model_eV": [float(a) for a, _ in d_energy],
                      "field_energy_xtb_eV": [float(b) for _, b in d_energy]}
    return rows


def _plot_curves(curves: dict, figure: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    names = list(curves)[:8]
    fig, axes = plt.subplots(2, 4, figsize=(12, 5.5), sharex=True)
    for ax, name in zip(axes.ravel(), names):
        c = curves[name]
        ax.plot(c["Q"], c["xtb"], "o-", color="k", label="GFN2-xTB")
        ax.plot(c["Q"], c["model"], "s--", color="tab:red", label="aimnet-chno")
        ax.set_title(name, fontsize=9)
        ax.set_xticks([-2, -1, 0, 1, 2])
    for ax in axes[-1]:
        ax.set_xlabel("total charge Q (e)")
    for ax in axes[:, 0]:
        ax.set_ylabel("E(Q) - E(0) (eV)")
    axes[0, 0].legend(fontsize=8)
    fig.suptitle("held-out molecules at their G2 geometry, lowest multiplicity")
    fig.tight_layout()
    figure.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(figure, dpi=110)
    plt.close(fig)


def _train(config_text: str, name: str, work: Path, log) -> Path:
    from .run import train_from_config
    config = work / f"{name}.toml"
    config.write_text(config_text)
    return train_from_config(config, log=log)


def build(conformers: int = 5, log: Callable[[str], None] = print, output: Path | None = None) -> Path:
    """Regenerate aimnet_chno.pt and its validation record."""
    _, test = make_data(WORK, conformers, log)
    text = CONFIG.read_text().replace('folder = "runs/aimnet_chno"', 'folder = "runs/multitask"')
    model = _train(text, "aimnet_chno", WORK, log)
    _, held = split_molecules()
    report = {"held_out_molecules": held, "errors": per_state_errors(model, test),
              "charge_states": charge_curves(model, held, figure=WORK / "energy_vs_charge.png"),
              "field_response": field_response(model, held)}
    log(json.dumps(report["errors"]["all"]) + " " + json.dumps(report["charge_states"]["summary"]))
    target = Path(output) if output else DATA / "aimnet_chno.pt"
    shutil.copy(model, target)
    target.with_suffix(".json").write_text(json.dumps(report, indent=1))
    log(f"shipped model {target}; report {target.with_suffix('.json')}")
    return target


def single_task_config() -> str:
    """The shipped configuration with the charge and dipole terms of the loss switched off."""
    text = CONFIG.read_text()
    for key in ("charge_weight", "dipole_weight"):
        lines = [ln for ln in text.splitlines() if ln.startswith(key)]
        if not lines:
            raise ValueError(f"{CONFIG} has no {key} line")
        text = text.replace(lines[0], f"{key} = 0.0")
    return text.replace('model = "aimnet_chno.pt"', 'model = "single_task.pt"').replace(
        'folder = "runs/aimnet_chno"', 'folder = "runs/single_task"')


def ablation(conformers: int = 5, log: Callable[[str], None] = print, multitask: Path | None = None) -> dict:
    """Single-task (energy + forces) vs multitask (the shipped model's loss) at equal data and
    epochs, on the held-out molecules; writes aimnet_chno_ablation.json."""
    _, test = make_data(WORK, conformers, log)
    single = WORK / "single_task.pt"          # kept, as the data: delete it to retrain
    if not single.is_file():
        single = _train(single_task_config(), "single_task", WORK, log)
    multitask = Path(multitask) if multitask else DATA / "aimnet_chno.pt"
    if not multitask.is_file():
        raise FileNotFoundError(f"{multitask} is missing: run `multiscale build-aimnet-chno` first")
    _, held = split_molecules()
    table = {}
    for name, path in (("single-task", single), ("multitask", multitask)):
        table[name] = {"errors": per_state_errors(path, test),
                       "charge_states": charge_curves(path, held)["summary"]}
        log(f"{name}: {json.dumps(table[name]['errors']['all'])} {json.dumps(table[name]['charge_states'])}")
    (DATA / "aimnet_chno_ablation.json").write_text(json.dumps(table, indent=1))
    return table
