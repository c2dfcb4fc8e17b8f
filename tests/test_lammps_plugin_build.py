"""The built plugin loads into LAMMPS, and pair_style multiscale with a Lennard-Jones model
file reproduces LAMMPS' native lj/cut: energy, forces, virial, per-atom energy and stress.

A quick in-process check of ``make install``; tests/test_lammps_parity.py runs the full
matrix (potentials, boxes, MPI ranks) through ``multiscale lmp``.
"""

import numpy as np
import pytest

from multiscale import export
from multiscale.engines.lammps import load_plugin, new_lammps, plugin_path
from multiscale.potentials import LennardJones

EPSILON, SIGMA, CUTOFF = 0.0104, 3.40, 8.5  # argon: eV, Å, Å

BOX = ["units metal", "atom_style atomic", "lattice fcc 5.26", "region box block 0 4 0 4 0 4",
       "create_box 1 box", "create_atoms 1 box", "mass 1 39.948",
       "displace_atoms all random 0.1 0.1 0.1 12345"]
PER_ATOM = ["compute pe all pe/atom", "compute st all stress/atom NULL"]


@pytest.fixture(scope="module")
def lj_model(model_dir):
    return export(LennardJones(["Ar"], EPSILON, SIGMA, CUTOFF), model_dir / "lj.pt")


def evaluate(pair_lines: list[str], plugin: bool) -> dict:
    """Energy (eV), pressure tensor (bar, no velocities: virial only), forces (eV/Å),
    per-atom energies (eV) and per-atom stresses (bar Å^3) of the displaced fcc box."""
    lmp = new_lammps(cmdargs=["-log", "none", "-screen", "none", "-nocite"], plugin=plugin)
    try:
        lmp.commands_list([*BOX, *pair_lines, *PER_ATOM, "run 0"])
        n = lmp.get_natoms()
        return {
            "energy": lmp.get_thermo("pe"),
            "pressure": np.array([lmp.get_thermo(k) for k in ("pxx", "pyy", "pzz", "pxy", "pxz", "pyz")]),
            "forces": lmp.numpy.extract_atom("f")[:n].copy(),
            "atom_energies": lmp.numpy.extract_compute("pe", 1, 1)[:n].copy(),
            "atom_stresses": lmp.numpy.extract_compute("st", 1, 2)[:n].copy(),
        }
    finally:
        lmp.close()


def test_plugin_is_built():
    assert plugin_path().is_file()


def test_load_plugin_is_idempotent():
    lmp = new_lammps(cmdargs=["-log", "none", "-screen", "none", "-nocite"])
    try:
        load_plugin(lmp)
        assert lmp.has_style("pair", "multiscale")
    finally:
        lmp.close()


def test_lennard_jones_matches_native_lj_cut(lj_model):
    ours = evaluate([f"pair_style multiscale {lj_model}", "pair_coeff * * Ar"], plugin=True)
    native = evaluate([f"pair_style lj/cut {CUTOFF}", f"pair_coeff * * {EPSILON} {SIGMA}"], plugin=False)
    assert np.abs(native["forces"]).max() > 1e-3  # the box is displaced: forces are not zero
    for key, reference in native.items():
        error = np.max(np.abs(ours[key] - reference)) / np.max(np.abs(reference))
        assert error < 1e-10, f"{key}: relative difference {error:.2e} from lj/cut"
