"""Lennard-Jones and Morse reference models equal their closed forms."""

import numpy as np
import pytest
from ase import Atoms

import multiscale
from multiscale.potentials import LennardJones, Morse


def lj(r, eps, sig):
    return 4 * eps * ((sig / r) ** 12 - (sig / r) ** 6)


def morse(r, d0, alpha, r0):
    return d0 * (np.exp(-2 * alpha * (r - r0)) - 2 * np.exp(-alpha * (r - r0)))


@pytest.mark.parametrize("shift", [False, True])
@pytest.mark.parametrize("kind", ["lj", "morse"])
def test_cluster_energy_matches_closed_form(tmp_path, kind, shift):
    rng = np.random.default_rng(0)
    pos = rng.uniform(0, 7.0, size=(12, 3))
    atoms = Atoms("Ar12", positions=pos)
    cutoff = 6.0
    if kind == "lj":
        model, f = LennardJones(["Ar"], 0.0104, 3.4, cutoff, shift=shift), lambda r: lj(r, 0.0104, 3.4)
    else:
        model, f = Morse(["Ar"], 0.3, 1.2, 3.8, cutoff, shift=shift), lambda r: morse(r, 0.3, 1.2, 3.8)
    atoms.calc = multiscale.MultiscaleCalculator(multiscale.export(model, tmp_path / "m.pt"))
    d = atoms.get_all_distances()
    iu = np.triu_indices(len(atoms), 1)
    r = d[iu]
    r = r[r < cutoff]
    expected = np.sum(f(r) - (f(cutoff) if shift else 0.0))
    assert atoms.get_potential_energy() == pytest.approx(expected, rel=1e-12)
    per_atom = atoms.get_potential_energies()
    for a in range(len(atoms)):
        ra = np.delete(d[a], a)
        ra = ra[ra < cutoff]
        assert per_atom[a] == pytest.approx(0.5 * np.sum(f(ra) - (f(cutoff) if shift else 0.0)), rel=1e-12)


def test_dimer_force_closed_form(tmp_path):
    eps, sig, r = 0.0104, 3.4, 3.7
    atoms = Atoms("Ar2", positions=[[0, 0, 0], [r, 0, 0]])
    atoms.calc = multiscale.MultiscaleCalculator(
        multiscale.export(LennardJones(["Ar"], eps, sig, 8.0), tmp_path / "lj.pt"))
    dphi = 4 * eps * (-12 * sig**12 / r**13 + 6 * sig**6 / r**7)
    f = atoms.get_forces()
    assert f[1, 0] == pytest.approx(-dphi, rel=1e-12)
    assert f[0, 0] == pytest.approx(dphi, rel=1e-12)


def test_mixed_elements_use_pair_table(tmp_path):
    eps = [[0.01, 0.02], [0.02, 0.03]]
    model = LennardJones(["Ar", "Kr"], eps, 3.5, 8.0)
    atoms = Atoms("ArKr", positions=[[0, 0, 0], [3.9, 0, 0]])
    atoms.calc = multiscale.MultiscaleCalculator(multiscale.export(model, tmp_path / "m.pt"))
    assert atoms.get_potential_energy() == pytest.approx(lj(3.9, 0.02, 3.5), rel=1e-12)
    with pytest.raises(ValueError, match="symmetric 2x2 table"):
        LennardJones(["Ar", "Kr"], [[0.01, 0.02], [0.05, 0.03]], 3.5, 8.0)
