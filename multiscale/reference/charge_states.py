"""Small C/H/N/O molecules in several charge and spin states, labelled by GFN2-xTB (tblite).

Each molecule of ASE's G2 collection made of C, H, N and O only, in every total charge Q of
``charges`` (default -2 ... +2) with the multiplicities its electron count allows among
singlet, doublet and triplet (closed shells: singlet, and triplet for the neutral molecule;
open shells: doublet), at its G2 geometry and ``conformers - 1`` randomly displaced ones.
xTB labels energy (eV), forces (eV/Å), atomic charges (e, its Mulliken-type charges, which
sum to Q) and the dipole (e Å, about the centre of mass, where the molecule is placed).
A state whose SCF does not converge is dropped (reported): that is the "where stable" of the
data, as xTB cannot hold the extra electron of some small dianions either.  A fraction
``field_fraction`` of the displaced geometries sits in a uniform electric field (random
direction, 0.05 .. ``field_max`` V/Å): the charges' response to an external potential, which
an electrostatic embedding relies on, is in the data.

Structures carry ``info["charge"]``, ``info["spin"]`` (multiplicity), ``info["molecule"]`` and,
in a field, ``info["electric_field"]`` (3,) V/Å (potential -E.r about the origin, the centre
of mass; tblite's convention: energy - mu.E).
"""

from __future__ import annotations

import sys
from typing import Callable, Sequence

import numpy as np
from ase import Atoms
from ase.calculators.singlepoint import SinglePointCalculator

from .molecules import displace

ELEMENTS = ("C", "H", "N", "O")
CHARGES = (-2, -1, 0, 1, 2)


def chno_molecules(max_atoms: int = 12) -> list[str]:
    """G2 names of the molecules made of C, H, N, O with 2 .. max_atoms atoms, sorted."""
    from ase.collections import g2
    return sorted(n for n in g2.names
                  if set(g2[n].get_chemical_symbols()) <= set(ELEMENTS) and 2 <= len(g2[n]) <= max_atoms)


def multiplicities(electrons: int, charge: int) -> list[int]:
    """Singlet (+ triplet when neutral) for an even electron count, doublet for an odd one."""
    if electrons % 2:
        return [2]
    return [1, 3] if charge == 0 else [1]


def states(atoms: Atoms, charges: Sequence[int] = CHARGES) -> list[tuple[int, int]]:
    """(Q, M) pairs of one molecule."""
    z = int(atoms.get_atomic_numbers().sum())
    return [(q, m) for q in charges if z - q > 0 for m in multiplicities(z - q, q)]


def geometries(names: Sequence[str], conformers: int, seed: int,
               amplitude: tuple[float, float] = (0.01, 0.05),
               charges: Sequence[int] = CHARGES, field_fraction: float = 0.3,
               field_max: float = 0.5) -> list[Atoms]:
    """Unlabelled structures: each molecule x state x conformer, centred at the centre of mass."""
    from ase.build import molecule
    rng = np.random.default_rng(seed)
    out = []
    for name in names:
        reference = molecule(name)
        reference.positions -= reference.get_center_of_mass()
        for q, m in states(reference, charges):
            for k in range(conformers):
                atoms = reference.copy() if k == 0 else displace(reference, rng, amplitude, shortest=0.9)
                atoms.positions -= atoms.get_center_of_mass()
                atoms.info.update(charge=q, spin=m, molecule=name)
                if k > 0 and rng.uniform() < field_fraction:
                    direction = rng.normal(size=3)
                    atoms.info["electric_field"] = direction / np.linalg.norm(direction) * \
                        rng.uniform(0.05, field_max)
                out.append(atoms)
    return out


def xtb(atoms: Atoms, charge: int, multiplicity: int, method: str = "GFN2-xTB",
        field=None, orbitals: bool = False) -> dict:
    """Energy (eV), forces (eV/Å), charges (e) and dipole (e Å) (with ``orbitals``, also
    "orbital_energies" (eV, ascending) and "occupations" (0..2)) from tblite's own interface
    (its ASE calculator fails to pass an electric field to the library in tblite 0.8: a numpy
    array where cffi wants a pointer; the interface with the same defaults gives the same
    numbers as the ASE calculator to 1e-12 without a field)."""
    from ase.units import Bohr, Hartree
    from tblite.interface import Calculator
    from tblite.library import ffi
    calc = Calculator(method, atoms.numbers, atoms.positions / Bohr, charge=charge, uhf=multiplicity - 1)
    calc.set("verbosity", 0)
    if field is not None:
        au = np.ascontiguousarray(np.asarray(field, dtype=float) * Bohr / Hartree)
        calc.add("electric-field", ffi.from_buffer("double[]", au))
    res = calc.singlepoint()
    out = {"energy": float(res.get("energy")) * Hartree, "forces": -res.get("gradient") * Hartree / Bohr,
           "charges": np.array(res.get("charges")), "dipole": np.array(res.get("dipole")) * Bohr}
    if orbitals:
        out["orbital_energies"] = np.array(res.get("orbital-energies")) * Hartree
        out["occupations"] = np.array(res.get("orbital-occupations"))
    return out


def label_xtb(structures: Sequence[Atoms], method: str = "GFN2-xTB",
              progress: Callable[[str], None] | None = None, every: int = 200) -> list[Atoms]:
    """Copies labelled with energy, forces, charges and dipole by ``method`` in each
    structure's charge, multiplicity and field; unconverged ones are dropped and reported."""
    progress = progress or (lambda msg: print(msg, file=sys.stderr, flush=True))
    out, failed = [], []
    for k, atoms in enumerate(structures):
        atoms = atoms.copy()
        q, m = int(atoms.info["charge"]), int(atoms.info["spin"])
        try:
            results = xtb(atoms, q, m, method, atoms.info.get("electric_field"))
        except Exception as exc:            # tblite raises a bare RuntimeError on SCF failure
            failed.append((atoms.info.get("molecule"), q, m, str(exc).splitlines()[0] if str(exc) else ""))
            continue
        atoms.calc = SinglePointCalculator(atoms, **results)
        out.append(atoms)
        if (k + 1) % every == 0 or k + 1 == len(structures):
            progress(f"xTB labelled {k + 1}/{len(structures)} structures ({len(failed)} unconverged)")
    for name, q, m, why in sorted(set(failed)):
        progress(f"dropped {name} Q={q:+d} M={m}: {why}")
    return out
