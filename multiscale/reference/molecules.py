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
    out = []
    for k in range(count):
        reference = molecule(names[k % len(names)])
        pairs = np.triu_indices(len(reference), 1)
        distances = reference.get_all_distances()[pairs]
        while True:
            atoms = reference.copy()
            atoms.positions += rng.normal(0.0, rng.uniform(*amplitude), atoms.positions.shape)
            if (atoms.get_all_distances()[pairs] >= shortest * distances).all():
                break
        out.append(atoms)
    return out
