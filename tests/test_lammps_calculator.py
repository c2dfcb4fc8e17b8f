"""multiscale.engines.lammps_calculator: an ASE calculator over LAMMPS on any number of ranks
(the 2-rank run is tests/test_trapping.py's region group)."""

import numpy as np
import pytest
from ase.build import bulk

from multiscale.engines.lammps_calculator import LammpsCalculator


def test_forces_equal_ase_lammpslib_and_follow_the_cell():
    from ase.calculators.lammpslib import LAMMPSlib
    from multiscale.engines.lammps import pair_lines
    atoms = bulk("Si", "diamond", a=5.431, cubic=True).repeat((2, 2, 2))
    atoms.rattle(0.05, seed=3)
    ours = LammpsCalculator.for_potential("sw")
    theirs = LAMMPSlib(lmpcmds=pair_lines("sw")[0], atom_types={"Si": 1}, log_file=None, keep_alive=True)
    for strain in (1.0, 1.01):                       # a new cell makes a new LAMMPS instance
        a = atoms.copy()
        a.set_cell(atoms.cell * strain, scale_atoms=True)
        b = a.copy()
        a.calc, b.calc = ours, theirs
        assert a.get_potential_energy() == pytest.approx(b.get_potential_energy(), abs=1e-9)
        np.testing.assert_allclose(a.get_forces(), b.get_forces(), atol=1e-10)
    ours.close()
    theirs.clean()


def test_bad_cells_and_elements_say_what_to_change():
    calc = LammpsCalculator.for_potential("sw")
    atoms = bulk("Si", "diamond", a=5.431)           # the primitive cell: triclinic
    atoms.calc = calc
    with pytest.raises(ValueError, match="orthogonal cell"):
        atoms.get_forces()
    carbon = bulk("C", "diamond", a=3.57, cubic=True)
    carbon.calc = calc
    with pytest.raises(ValueError, match=r"atoms of \['C'\] have no LAMMPS type"):
        carbon.get_forces()
