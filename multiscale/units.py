"""Unit conversions, all from one source: ASE's CODATA constants (``ase.units``).

multiscale works in Å, eV and e inside; engines convert at their boundary.
"""

from ase import units as _ase

EV_PER_A3_TO_GPA = 1.0 / _ase.GPa                  # stress: eV/Å^3 -> GPa (160.2...)
EV_PER_A2_TO_J_PER_M2 = _ase.m ** 2 / _ase.J        # surface energy: eV/Å^2 -> J/m^2 (16.02...)
BAR_TO_GPA = 1e-4                                   # LAMMPS metal pressure (bar) -> GPa, exact
EV_TO_KJ_PER_MOL = _ase.eV / (_ase.kJ / _ase.mol)   # OpenMM energies: eV -> kJ/mol (96.48...)
NM_TO_ANGSTROM = _ase.nm / _ase.Angstrom              # OpenMM lengths: nm -> Å (10, exact)
COULOMB_EV_A = _ase.Hartree * _ase.Bohr            # e^2 / (4 pi eps0) in eV·Å (14.3996...)
