"""Bonded molecules in LAMMPS: with a molecular atom style the pair style needs every bonded
pair in its neighbour list, which only `special_bonds lj/coul 1.0 1.0 1.0` gives; otherwise it
stops and names that fix (LAMMPS would drop the 1-2, 1-3 and 1-4 pairs silently)."""

import numpy as np
import pytest
from ase.build import molecule

import multiscale
from lmp_runs import run
from multiscale.potentials import MessagePassingPotential

pytestmark = pytest.mark.mpi
TYPES = {"C": 1, "H": 2}


@pytest.fixture(scope="module")
def model(model_dir):
    mp = MessagePassingPotential(["C", "H"], cutoff=3.0, hops=1, features=8, seed=4)
    return multiscale.export(mp, model_dir / "bonds_mp.pt")


def ethane_data(path):
    """Ethane as a LAMMPS data file for atom_style bond: every C-C and C-H bond listed."""
    atoms = molecule("C2H6")
    d = atoms.get_all_distances()
    bonds = [(i, j) for i in range(len(atoms)) for j in range(i + 1, len(atoms)) if d[i, j] < 1.7]
    lines = ["ethane", "", f"{len(atoms)} atoms", f"{len(bonds)} bonds", "2 atom types", "1 bond types", "",
             "-10 10 xlo xhi", "-10 10 ylo yhi", "-10 10 zlo zhi", "", "Masses", "", "1 12.011", "2 1.008",
             "", "Atoms # bond", ""]
    lines += [f"{k + 1} 1 {TYPES[s]} {x:.12f} {y:.12f} {z:.12f}"
              for k, (s, (x, y, z)) in enumerate(zip(atoms.get_chemical_symbols(), atoms.positions))]
    lines += ["", "Bonds", ""] + [f"{k + 1} 1 {i + 1} {j + 1}" for k, (i, j) in enumerate(bonds)]
    path.write_text("\n".join(lines) + "\n")
    return atoms, len(bonds)


def script(model, special):
    return "\n".join(["units metal", "atom_style bond", "boundary f f f", "read_data data.lmp",
                      "bond_style zero", "bond_coeff *", *special,
                      f"pair_style multiscale {model}", "pair_coeff * * C H", "run 0",
                      'print "$(pe:%.17g)" file pe.txt screen no']) + "\n"


@pytest.mark.parametrize("special, factors", [([], "0 0 0"), (["special_bonds lj 1.0 1.0 0.5"], "1 1 0.5")])
def test_default_special_bonds_is_refused_with_the_fix(tmp_path, model, special, factors):
    ethane_data(tmp_path / "data.lmp")
    proc = run(script(model, special), tmp_path)
    assert proc.returncode != 0
    errors = "\n".join(line for line in (proc.stdout + proc.stderr).splitlines() if line.startswith("ERROR"))
    assert f"needs every bonded pair at full weight, but special_bonds lj is {factors}: use " \
           "`special_bonds lj/coul 1.0 1.0 1.0`" in errors, proc.stdout[-2000:]


@pytest.mark.parametrize("special", ["lj/coul 1.0 1.0 1.0", "lj 1.0 1.0 1.0 coul 0.0 0.0 0.5"])
def test_full_special_bonds_gives_the_ase_energy(tmp_path, model, special):
    """With lj factors 1.0 every bonded pair is in the list (coul factors only flag them, and the
    pair style ignores the flags), so the energy is the ASE one."""
    atoms, nbonds = ethane_data(tmp_path / "data.lmp")
    assert nbonds == 7
    proc = run(script(model, [f"special_bonds {special}"]), tmp_path)
    assert proc.returncode == 0, proc.stdout[-3000:]
    pe = float(np.loadtxt(tmp_path / "pe.txt"))
    atoms.calc = multiscale.MultiscaleCalculator(model)
    assert pe == pytest.approx(atoms.get_potential_energy(), rel=1e-10)
