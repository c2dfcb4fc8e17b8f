"""Small molecules for reference data: ASE's ``molecule()`` geometries, randomly displaced."""

from __future__ import annotations

from typing import Sequence

import numpy as np
from ase import Atoms

MOLECULES = ("CH4", "C2H6", "C2H4", "H2O", "NH3", "CH3OH", "H3CNH2", "HCOOH")


def displaced_molecules(count: int, seed: int, amplitude: tuple[float, float] = (0.01, 0.05),
                        names: Sequence[str] = MOLECULES, shortest: float = 0.9) -> list[Atoms]:
    """``count`` ASE ``molecule()`` geometries, names in turn, every coordinate displaced by a
    Gaussian whose width (Å) is drawn per structure from ``amplitude``; a draw that shrinks
    any interatomic distance below ``shortest`` times its value in ``molecule()`` is redrawn
    (the rare squeezed bond would dominate every force RMSE)."""
    from ase.build import molecule

    rng = np.random.default_rng(seed)
    return [displace(molecule(names[k % len(names)]), rng, amplitude, shortest) for k in range(count)]


def displace(reference: Atoms, rng: np.random.Generator, amplitude: tuple[float, float],
             shortest: float) -> Atoms:
    """``reference`` with every coordinate displaced by a Gaussian of width drawn from
    ``amplitude`` (Å), redrawn until no distance is below ``shortest`` times its value."""
    pairs = np.triu_indices(len(reference), 1)
    distances = reference.get_all_distances()[pairs]
    while True:
        atoms = reference.copy()
        atoms.positions += rng.normal(0.0, rng.uniform(*amplitude), atoms.positions.shape)
        if (atoms.get_all_distances()[pairs] >= shortest * distances).all():
            return atoms


def twisted_ethylene(angle_deg: float) -> Atoms:
    """ASE's ethylene (C=C along z) with the CH2 group of the carbon at z > 0 turned by
    ``angle_deg`` about the C=C axis, nothing relaxed: 0 planar, 90 the HOMO/LUMO crossing."""
    from ase.build import molecule

    atoms = molecule("C2H4")
    c, s = np.cos(np.radians(angle_deg)), np.sin(np.radians(angle_deg))
    turn = np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])
    atoms.positions[2:4] = atoms.positions[2:4] @ turn.T
    return atoms
