"""The shipped ML-EHM model ehm-chno: its card's crossing study reproduces from the file and
fresh GFN2-xTB, it beats textbook EHT and the direct network in the untrained 60-120 degree
window, its held-out figures hold, and a short NVE run in ASE conserves energy."""

import json

import numpy as np
import pytest
from ase.build import molecule
from ase.md.velocitydistribution import Stationary, thermalize_momenta
from ase.md.verlet import VelocityVerlet
from ase import units

import multiscale
from multiscale.learning import ml_ehm
from multiscale.model.registry import DATA


@pytest.fixture(scope="module")
def card():
    return json.loads((DATA / "ehm_chno.json").read_text())


def test_the_file_says_it_is_a_whole_system_model_with_orbitals():
    meta = multiscale.load("ehm-chno").metadata
    assert meta.whole_system and "orbital_energies" in meta.outputs and set(meta.elements) == set("HCNO")


def test_crossing_curve_reproduces_from_the_file_and_fresh_xtb(card):
    """ML-EHM's and xTB's HOMO/LUMO at 0, 45, 90 and 135 degrees equal the card's to 1e-6 eV."""
    model = multiscale.load("ehm-chno").module
    study = json.loads((DATA / "ehm_chno_crossing.json").read_text())
    angles = [0, 45, 90, 135]
    index = [study["angles_deg"].index(a) for a in angles]
    from multiscale.reference.charge_states import xtb
    from multiscale.reference.molecules import twisted_ethylene
    for a, k in zip(angles, index):
        atoms = twisted_ethylene(a)
        item = {"symbols": atoms.get_chemical_symbols(), "positions": atoms.positions}
        mine = ml_ehm.predict(model, item)["frontier"].numpy()[2:4]
        ref = ml_ehm.frontier(xtb(atoms, 0, 1, orbitals=True)["orbital_energies"], item["symbols"])[2:4]
        assert np.abs(mine - study["curves"]["ml_ehm"][k]).max() < 1e-6
        assert np.abs(ref - study["curves"]["xtb"][k]).max() < 1e-6


def test_ml_ehm_beats_textbook_and_direct_beyond_the_training_twists(card):
    s = card["crossing"]
    assert abs(s["ml_ehm"]["gap_min_angle_deg"] - 90.0) <= 5.0
    assert s["ml_ehm"]["window_rmse_eV"] < 0.5
    assert s["ml_ehm"]["window_rmse_eV"] < 0.5 * s["textbook"]["window_rmse_eV"]
    assert s["ml_ehm"]["window_rmse_eV"] < 0.5 * s["direct"]["window_rmse_eV"]


def test_held_out_figures(card):
    h = card["held_out"]
    assert h["structures"] >= 40
    assert h["energy_mae_meV_per_atom"] < 60 and h["force_rmse_eV_per_A"] < 0.6
    assert h["frontier_rmse_eV"] < 0.5 * h["textbook_frontier_rmse_eV"]
    assert h["max_abs_charge_sum_e"] < 1e-10


def test_nve_energy_drift_is_bounded():
    """Acetaldehyde at 300 K, 200 steps of 0.5 fs (velocity Verlet): total energy within 2 meV/atom."""
    atoms = molecule("CH3CHO")
    atoms.calc = multiscale.MultiscaleCalculator("ehm-chno")
    thermalize_momenta(atoms, temperature_K=300, rng=np.random.default_rng(0))
    Stationary(atoms)
    total = []
    dyn = VelocityVerlet(atoms, 0.5 * units.fs)
    dyn.attach(lambda: total.append(atoms.get_total_energy()), interval=5)
    dyn.run(200)
    total = np.array(total)
    assert np.abs(total - total[0]).max() / len(atoms) < 2e-3
