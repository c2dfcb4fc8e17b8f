"""The shipped attention models: et-chno against GFN2-xTB and in the engines; si-attention's
validation record against native SW beside si-ani's."""

from __future__ import annotations

import json

import numpy as np
import pytest

import multiscale
from multiscale.cli import main as cli_main
from multiscale.model.registry import model_path

ET_CHNO = model_path("et-chno")


def test_listed_with_its_metadata(capsys):
    assert cli_main(["models"]) == 0
    listed = {line.split("\t")[0]: line.split("\t")[1] for line in capsys.readouterr().out.splitlines()}
    assert listed["et-chno"] == str(ET_CHNO)
    meta = multiscale.load(ET_CHNO).metadata
    assert multiscale.load("et-chno").metadata == meta      # a shipped name loads its file
    assert list(meta.elements) == ["C", "H", "N", "O"] and meta.cutoff == 5.0 and meta.hops == 3
    assert meta.outputs == ("energies", "attention") and meta.dtype == "float64"


def test_et_chno_record_and_fresh_xtb_conformers():
    """The record's held-out errors, and new conformers of held-out molecules labelled by xTB now."""
    from multiscale.learning.aimnet_chno import split_molecules
    from multiscale.reference.charge_states import geometries, label_xtb
    record = json.loads(ET_CHNO.with_suffix(".json").read_text())
    ours, aimnet = record["errors"]["et-chno"], record["errors"]["aimnet-chno"]
    # unseen molecules: 53 small training molecules transfer poorly (docs/attention.md)
    assert ours["energy_mae_meV_per_atom"] <= 100 and ours["force_rmse_eV_per_A"] < aimnet["force_rmse_eV_per_A"]
    _, held = split_molecules()
    structures = [a for a in geometries(held[:3], 4, seed=99, amplitude=(0.02, 0.08), charges=(0,),
                                        field_fraction=0.0) if a.info["spin"] == 1]
    labelled = label_xtb(structures, progress=lambda _m: None)
    calc = multiscale.MultiscaleCalculator(ET_CHNO)
    de, df = [], []
    for ref in labelled:
        atoms = ref.copy()
        atoms.calc = calc
        de.append(abs(atoms.get_potential_energy() - ref.get_potential_energy()) / len(atoms))
        df.append(((atoms.get_forces() - ref.get_forces()) ** 2).ravel())
    assert len(labelled) >= 8
    assert np.mean(de) * 1e3 <= 3 * ours["energy_mae_meV_per_atom"]
    assert np.sqrt(np.mean(np.concatenate(df))) <= 3 * ours["force_rmse_eV_per_A"]


def test_et_chno_same_in_ase_and_openmm():
    from ase.build import molecule
    from multiscale.engines.openmm import create_force
    from openmm_systems import single_point, system_of, topology_of
    atoms = molecule("CH3CH2OH")
    atoms.rattle(0.05, seed=3)
    atoms.calc = multiscale.MultiscaleCalculator(ET_CHNO)
    e_ase, f_ase = atoms.get_potential_energy(), atoms.get_forces()
    top = topology_of(atoms)
    e, f = single_point(system_of(top, create_force(ET_CHNO, top)), atoms.positions, "Reference")
    assert abs(e - e_ase) <= 1e-6 * abs(e_ase)
    assert np.abs(f - f_ase).max() <= 1e-6 * np.abs(f_ase).max()


SI_ATTENTION = model_path("si-attention")
# relative to native sw; C12 and C44 miss the 5 % (docs/attention.md): these bounds
# hold what was reached, so that a rebuild that does worse fails
BOUNDS = {"lattice_constant_A": 0.003, "C11_GPa": 0.05, "C12_GPa": 0.05, "C44_GPa": 0.05,
          "surface_energy_111_J_per_m2": 0.05}


def test_si_attention_record_beside_si_ani():
    """The record of `multiscale build-silicon-model --model si-attention`: properties computed in
    LAMMPS through the plugin and with native sw, on si-ani's held-out set."""
    record = json.loads(SI_ATTENTION.with_suffix(".json").read_text())
    si_ani = json.loads(model_path("si-ani").with_suffix(".json").read_text())
    assert record["test_structures"] == si_ani["test_structures"]
    assert record["properties"]["native_sw"] == si_ani["properties"]["native_sw"]
    for key, bound in BOUNDS.items():
        assert abs(record["relative_differences"][key]) <= bound, (key, record["relative_differences"][key])
    module = multiscale.load(SI_ATTENTION)
    assert record["training"]["parameters"] == sum(p.numel() for p in module.module.parameters())
    assert module.metadata.cutoff == 5.0 and module.metadata.hops == 3
    assert module.metadata.outputs == ("energies", "attention")


def elastic_constants_in_ase(model, a: float, strain: float = 5e-3) -> dict[str, float]:
    """C11, C12 (stress under +-strain along x) and relaxed C44 (shear yz, atoms relaxed by
    BFGS at fixed cell) of a 64-atom diamond cell, GPa, from the ASE calculator's stresses."""
    from ase.build import bulk
    from ase.optimize import BFGS
    from ase.units import GPa
    calc = multiscale.MultiscaleCalculator(model)
    base = bulk("Si", "diamond", a=a, cubic=True).repeat(2)

    def stress(eps, relax=False):
        atoms = base.copy()
        atoms.set_cell(base.cell.array @ (np.eye(3) + eps), scale_atoms=True)
        atoms.calc = calc
        if relax:
            BFGS(atoms, logfile=None).run(fmax=1e-5)
        return atoms.get_stress(voigt=False) / GPa

    e = np.zeros((3, 3))
    e[0, 0] = strain
    plus, minus = stress(e), stress(-e)
    g = np.zeros((3, 3))
    g[1, 2] = g[2, 1] = strain / 2                       # engineering shear strain = strain
    return {"C11_GPa": (plus[0, 0] - minus[0, 0]) / (2 * strain),
            "C12_GPa": (plus[1, 1] - minus[1, 1]) / (2 * strain),
            "C44_GPa": (stress(g, True)[1, 2] - stress(-g, True)[1, 2]) / (2 * strain)}


def test_si_attention_elastic_constants_in_ase_match_lammps_and_sw():
    """Computed now in ASE (an engine independent of the record's LAMMPS runs) at the record's
    lattice constant: the LAMMPS values of the record to 1 %, native SW's to 5 %."""
    record = json.loads(SI_ATTENTION.with_suffix(".json").read_text())["properties"]
    ours = elastic_constants_in_ase(SI_ATTENTION, record["model"]["lattice_constant_A"])
    for key, value in ours.items():
        assert value == pytest.approx(record["model"][key], rel=0.01), (key, value, record["model"][key])
        assert value == pytest.approx(record["native_sw"][key], rel=0.05), (key, value, record["native_sw"][key])


@pytest.mark.slow
def test_si_attention_nve_drift_beside_si_ani():
    """400 steps of 1 fs NVE (ASE's velocity Verlet) on the same 64-atom crystal at about
    600 K: both models conserve the total energy to well under the potential energy's
    fluctuation (benchmarks/attention_models.py runs 1000 steps at 216 atoms)."""
    from ase import units
    from ase.build import bulk
    from ase.md.velocitydistribution import Stationary, thermalize_momenta
    from ase.md.verlet import VelocityVerlet
    drift = {}
    for name in ("si-attention", "si-ani"):
        atoms = bulk("Si", "diamond", a=5.431, cubic=True).repeat(2)
        thermalize_momenta(atoms, temperature_K=1200, rng=np.random.default_rng(0))
        Stationary(atoms)
        atoms.calc = multiscale.MultiscaleCalculator(name)
        total, potential = [], []

        def record(a=atoms):
            total.append(a.get_total_energy())
            potential.append(a.get_potential_energy())
        dyn = VelocityVerlet(atoms, 1.0 * units.fs)
        dyn.attach(record, interval=10)
        dyn.run(400)
        total, potential = np.array(total) / len(atoms), np.array(potential) / len(atoms)
        drift[name] = (np.abs(total - total[0]).max(), np.ptp(potential))
    for name, (d, fluctuation) in drift.items():
        assert fluctuation > 0.03, (name, fluctuation)        # eV/atom: the crystal is hot and moving
        assert d < 1e-3, (name, drift)                         # eV/atom over 0.4 ps
    assert drift["si-attention"][0] < 10 * drift["si-ani"][0] + 1e-4, drift
