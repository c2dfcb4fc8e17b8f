"""The shipped silicon model against its reference, Stillinger-Weber (issue: shipped model)."""

import json

import numpy as np
import pytest

import multiscale
from multiscale import properties
from multiscale.cli import main as cli_main
from multiscale.datasets.silicon import configurations, sw_pair_lines
from multiscale.oracles import label, lammps_oracle
from multiscale.registry import model_path, shipped_models

MODEL = model_path("si-ani")
PAIR = [f"pair_style multiscale {MODEL}", "pair_coeff * * Si"]


def test_listed_with_its_path(capsys):
    assert shipped_models()["si-ani"]["path"] == str(MODEL)
    assert cli_main(["models"]) == 0
    line = [x for x in capsys.readouterr().out.splitlines() if x.startswith("si-ani")][0]
    assert str(MODEL) in line
    meta = multiscale.load(MODEL).metadata
    assert list(meta.elements) == ["Si"] and meta.cutoff >= 3.77 and meta.dtype == "float64"


def test_validation_record_meets_targets():
    report = json.loads(MODEL.with_suffix(".json").read_text())
    assert report["energy_mae_meV_per_atom"] <= 2.0
    assert report["force_rmse_eV_per_A"] <= 0.1


@pytest.mark.slow
def test_fresh_sw_configurations():
    # configurations the model never saw (another seed), labelled now by native SW
    kinds = configurations(scale=0.1, seed=12345, progress=lambda _m: None)
    structures = label([a for group in kinds.values() for a in group], lammps_oracle(),
                       progress=lambda _m: None)
    calc = multiscale.MultiscaleCalculator(MODEL)
    de, df = [], []
    for ref in structures:
        atoms = ref.copy()
        atoms.calc = calc
        de.append(abs(atoms.get_potential_energy() - ref.get_potential_energy()) / len(atoms))
        df.append(((atoms.get_forces() - ref.get_forces()) ** 2).ravel())
    assert np.mean(de) * 1e3 <= 2.0
    assert np.sqrt(np.mean(np.concatenate(df))) <= 0.1


@pytest.mark.slow
def test_properties_in_lammps_match_native_sw():
    a_ref = properties.lattice_constant(sw_pair_lines())
    a = properties.lattice_constant(PAIR, plugin=True)
    assert abs(a - a_ref) / a_ref <= 0.003
    ref = properties.elastic_constants(sw_pair_lines(), a_ref)
    ours = properties.elastic_constants(PAIR, a, plugin=True)
    for k in ("C11", "C12", "C44"):
        assert abs(ours[k] - ref[k]) / ref[k] <= 0.05, (k, ours[k], ref[k])
    g_ref = properties.surface_energy(sw_pair_lines(), a_ref, "111")
    g = properties.surface_energy(PAIR, a, "111", plugin=True)
    assert abs(g - g_ref) / g_ref <= 0.05
