"""Conformers of small molecules: turns about every non-ring bond between heavy atoms, then
random displacements.  Double bonds (multiscale's ML-EHM study) turn by at most
``max_double_twist`` degrees, single bonds freely.  Bonds come from ASE's natural cutoffs (x 1.2);
a C-C bond shorter than 1.42 Å or a C-N bond shorter than 1.36 Å counts as double (or triple).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
from ase import Atoms

from .molecules import displace

DOUBLE_BOND = {frozenset("C"): 1.42, frozenset("CN"): 1.36, frozenset("N"): 1.30}


def bonds(atoms: Atoms) -> list[tuple[int, int]]:
    """(i, j), i < j, of every bonded pair by ASE's natural cutoffs."""
    from ase.neighborlist import natural_cutoffs, neighbor_list
    i, j = neighbor_list("ij", atoms, natural_cutoffs(atoms, mult=1.2))
    return sorted({(int(a), int(b)) for a, b in zip(i, j) if a < b})


def side(atoms_bonds: list[tuple[int, int]], n: int, i: int, j: int) -> list[int] | None:
    """Atoms on j's side of bond i-j, or None if the bond is in a ring."""
    neighbours = {a: set() for a in range(n)}
    for a, b in atoms_bonds:
        if {a, b} != {i, j}:
            neighbours[a].add(b)
            neighbours[b].add(a)
    seen, todo = {j}, [j]
    while todo:
        for b in neighbours[todo.pop()]:
            if b not in seen:
                seen.add(b)
                todo.append(b)
    return None if i in seen else sorted(seen)


def turn(atoms: Atoms, i: int, j: int, moving: Sequence[int], angle_deg: float) -> None:
    """Turn ``moving`` atoms about the i -> j axis by ``angle_deg``, in place."""
    axis = atoms.positions[j] - atoms.positions[i]
    atoms.rotate(angle_deg, axis, center=atoms.positions[j])
    # Atoms.rotate turns every atom; undo for the others by rotating back a copy of them
    staying = [a for a in range(len(atoms)) if a not in set(moving)]
    back = atoms[staying].copy()
    back.rotate(-angle_deg, axis, center=atoms.positions[j])
    atoms.positions[staying] = back.positions


def torsions(atoms: Atoms) -> list[tuple[int, int, list[int], bool]]:
    """(i, j, moving atoms, is double) of every turnable non-ring bond between heavy atoms
    whose both ends carry other atoms."""
    symbols = atoms.get_chemical_symbols()
    found = bonds(atoms)
    out = []
    for i, j in found:
        if "H" in (symbols[i], symbols[j]):
            continue
        moving = side(found, len(atoms), i, j)
        if moving is None or len(moving) < 2 or len(moving) > len(atoms) - 2:
            continue
        limit = DOUBLE_BOND.get(frozenset((symbols[i], symbols[j])), 0.0)
        out.append((i, j, moving, atoms.get_distance(i, j) < limit))
    return out


def conformers(names: Sequence[str], count: int, seed: int, max_double_twist: float = 60.0,
               amplitude: tuple[float, float] = (0.01, 0.05)) -> list[Atoms]:
    """``count`` structures, molecule names in turn: each torsion of ASE's ``molecule(name)``
    turned at random (single bonds 0-360 degrees, double bonds within +-max_double_twist),
    then every coordinate displaced (multiscale.reference.molecules.displace).  info holds
    "molecule" and "twists" (degrees, one per torsion)."""
    from ase.build import molecule
    rng = np.random.default_rng(seed)
    out = []
    for k in range(count):
        name = names[k % len(names)]
        atoms = molecule(name)
        twists = []
        for i, j, moving, double in torsions(atoms):
            angle = rng.uniform(-max_double_twist, max_double_twist) if double else rng.uniform(0.0, 360.0)
            turn(atoms, i, j, moving, angle)
            twists.append(float(angle))
        atoms = displace(atoms, rng, amplitude, 0.9)
        atoms.info.update(molecule=name, twists=twists, charge=0, spin=1)
        out.append(atoms)
    return out
