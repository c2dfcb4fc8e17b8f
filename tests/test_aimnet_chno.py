"""The shipped charge/spin model aimnet-chno: its record reproduces from the file and freshly
labelled xTB data, it holds its figures, and it runs in LAMMPS on 2 ranks as in ASE."""

import json

import numpy as np
import pytest
from ase.build import molecule

import multiscale
from lmp_runs import DUMP, THERMO, relative, run_ok
from multiscale.learning import aimnet_chno
from multiscale.model.registry import DATA, model_path


@pytest.fixture(scope="module")
def record():
    return json.loads((DATA / "aimnet_chno.json").read_text())


@pytest.fixture(scope="module")
def test_file(tmp_path_factory):
    """The held-out set as `multiscale build-aimnet-chno` makes it (default conformers)."""
    from multiscale.learning.data import write_structures
    from multiscale.reference.charge_states import geometries, label_xtb
    _, held = aimnet_chno.split_molecules()
    structures = label_xtb(geometries(held, 2, 1), progress=lambda msg: None)
    return write_structures(tmp_path_factory.mktemp("chno") / "test.h5", structures)


def test_metadata():
    meta = multiscale.load(model_path("aimnet-chno")).metadata
    assert meta.elements == ("C", "H", "N", "O") and meta.uses_charge and meta.uses_spin
    assert meta.contract_version == 2 and meta.reductions and meta.dtype == "float64"
    assert "spin_charges" in meta.outputs


def test_record_reproduces_from_the_file(record, test_file):
    """To 1e-4: the labels are xTB run again, whose SCF stops at its own tolerance (forces and
    dipoles move by up to ~2e-5 relative between runs and thread counts); the model's part is
    exact (its own outputs on the same geometries)."""
    again = aimnet_chno.per_state_errors(model_path("aimnet-chno"), test_file)
    for state, row in record["errors"].items():
        for key, value in row.items():
            assert again[state][key] == pytest.approx(value, rel=1e-4), (state, key)


def test_charge_curves_reproduce(record):
    name = record["held_out_molecules"][0]
    again = aimnet_chno.charge_curves(model_path("aimnet-chno"), [name])["curves"][name]
    assert again["Q"] == record["charge_states"]["curves"][name]["Q"]
    assert np.allclose(again["model"], record["charge_states"]["curves"][name]["model"], atol=1e-8)
    assert np.allclose(again["xtb"], record["charge_states"]["curves"][name]["xtb"], atol=1e-8)


def test_figures_hold(record):
    """Regression bounds on the held-out figures of docs/aimnet_chno.md."""
    overall = record["errors"]["all"]
    assert overall["charge_rmse_e"] < 0.1
    assert overall["energy_mae_meV_per_atom"] < 400
    summary = record["charge_states"]["summary"]
    assert summary["molecules"] >= 8


@pytest.mark.mpi
def test_two_ranks_equal_ase_for_a_charged_cluster(tmp_path):
    import ase.io
    parts = []
    for k, name in enumerate(("CH3OH", "H2O", "NH3", "CH3CN")):
        m = molecule(name)
        m.positions += np.array([3.5 * (k % 2), 3.5 * (k // 2), 0.3 * k]) + 4.0 - m.get_center_of_mass()
        parts.append(m)
    atoms = sum(parts[1:], parts[0])
    atoms.cell, atoms.pbc = [12.0, 12.0, 12.0], True
    ase.io.write(tmp_path / "data.lmp", atoms, format="lammps-data", specorder=["C", "H", "N", "O"], masses=True)
    electrons = int(atoms.get_atomic_numbers().sum()) - 1
    spin = 2 if electrons % 2 else 1
    atoms.calc = multiscale.MultiscaleCalculator("aimnet-chno", charge=1.0, spin=spin)
    order = np.lexsort(np.round(atoms.positions, 4).T[::-1])
    path = model_path("aimnet-chno")
    script = "\n".join(["units metal", "atom_style atomic", "atom_modify map array", "read_data ../data.lmp",
                        "comm_modify mode single", f"pair_style multiscale {path} charge 1.0 spin {spin}",
                        "pair_coeff * * C H N O", *DUMP, "run 0", *THERMO]) + "\n"
    got = run_ok(script, tmp_path / "r2", 2)
    assert abs(got["pe"] - atoms.get_potential_energy()) <= 1e-10 * abs(got["pe"])
    assert relative(got["forces"], atoms.get_forces()[order]) <= 1e-10
    assert abs(atoms.get_charges().sum() - 1.0) <= 1e-10
