"""Silicon configurations for training: crystal (strained, sheared, hot), (111)/(110)/(100)
surfaces, (111)[1-10] crack tips, liquid and amorphous.

Configurations are sampled by LAMMPS MD with a reference potential (native
Stillinger-Weber by default) and then labelled by an oracle (multiscale.reference.oracles).
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
from ase import Atoms
from ase.build import bulk, surface
from ase.lattice.cubic import Diamond

from ..engines.lammps import pair_lines as lammps_pair_lines
from ..units import EV_PER_A2_TO_J_PER_M2, EV_PER_A3_TO_GPA
from . import properties
from .sampling import md_snapshots


def crack_clusters(a: float, k1g: float, factors: Sequence[float], crack_field, rng) -> list[Atoms]:
    """(111)[1-10] crack tips: an oriented crystal displaced by the anisotropic LEFM field
    at K = factor * K_G (matscipy), tip at the centre, periodic along the crack front."""
    cell = Diamond(directions=[[1, 1, -2], [1, 1, 1], [1, -1, 0]], size=(3, 3, 1), symbol="Si",
                   latticeconstant=a, pbc=(False, False, True))
    centre = cell.positions[:, :2].mean(axis=0)
    out = []
    for f in factors:
        atoms = cell.copy()
        x, y = atoms.positions[:, 0], atoms.positions[:, 1]
        # tip between two (111) planes so that the crack opens across a bond layer
        y0 = centre[1] + 0.1 * a
        ux, uy = crack_field.displacements(x, y, centre[0], y0, f * k1g)
        atoms.positions[:, 0] += ux
        atoms.positions[:, 1] += uy
        atoms.rattle(0.02, seed=int(rng.integers(1 << 30)))
        atoms.center(vacuum=6.0, axis=(0, 1))
        out.append(atoms)
    return out


def configurations(scale: float = 1.0, seed: int = 0, pair_lines: Sequence[str] | None = None,
                   progress: Callable[[str], None] = print) -> dict[str, list[Atoms]]:
    """Unlabelled configurations by kind; ``scale`` multiplies every count."""
    from matscipy.fracture_mechanics.crack import CubicCrystalCrack

    pair_lines = list(pair_lines or lammps_pair_lines("sw")[0])
    rng = np.random.default_rng(seed)
    n = lambda k: max(1, int(round(k * scale)))  # noqa: E731
    a = properties.lattice_constant(pair_lines)
    progress(f"reference lattice constant {a:.5f} Å")
    out: dict[str, list[Atoms]] = {}

    crystal = bulk("Si", "diamond", a=a, cubic=True) * (2, 2, 2)
    out["bulk"] = []
    for k in range(n(12)):
        strain = rng.uniform(-0.04, 0.04, (3, 3))
        strain = 0.5 * (strain + strain.T)
        atoms = crystal.copy()
        atoms.set_cell(atoms.cell.array @ (np.eye(3) + strain), scale_atoms=True)
        temperature = [300.0, 900.0, 1500.0][k % 3]
        out["bulk"] += md_snapshots(atoms, pair_lines, temperature, count=n(1) * 5, interval=100,
                                    seed=int(rng.integers(1, 1 << 30)))
    progress(f"bulk: {len(out['bulk'])} snapshots")

    for miller in ("111", "110", "100"):
        slab = surface(bulk("Si", "diamond", a=a), tuple(int(c) for c in miller), layers=6, vacuum=6.0,
                       periodic=True)
        slab = slab.repeat((2, 2, 1)) if len(slab) < 24 else slab
        kind = f"surface{miller}"
        out[kind] = []
        for temperature in (300.0, 800.0):
            out[kind] += md_snapshots(slab, pair_lines, temperature, count=n(10), interval=100,
                                      seed=int(rng.integers(1, 1 << 30)))
        progress(f"{kind}: {len(out[kind])} snapshots of {len(slab)} atoms")

    elastic = properties.elastic_constants(pair_lines, a)
    gamma = properties.surface_energy(pair_lines, a, "111") / EV_PER_A2_TO_J_PER_M2  # eV/Å^2
    field = CubicCrystalCrack([1, 1, 1], [1, -1, 0], elastic["C11"], elastic["C12"], elastic["C44"])
    k1g = field.k1g(gamma * EV_PER_A3_TO_GPA)  # matscipy: surface energy in GPa Å -> K in GPa sqrt(Å)
    out["crack"] = crack_clusters(a, k1g, rng.uniform(0.6, 1.4, n(40)), field, rng)
    progress(f"crack: {len(out['crack'])} tips, {len(out['crack'][0])} atoms, K_G = {k1g:.4f} GPa sqrt(Å)")

    out["liquid"] = []
    for temperature in (2500.0, 3500.0):
        out["liquid"] += md_snapshots(crystal, pair_lines, temperature, count=n(15), interval=200,
                                      seed=int(rng.integers(1, 1 << 30)), equilibrate=2000)
    progress(f"liquid: {len(out['liquid'])} snapshots")
    out["amorphous"] = []
    for melt in out["liquid"][: n(6)]:
        out["amorphous"] += md_snapshots(melt, pair_lines, 600.0, count=n(1) * 3, interval=300,
                                         seed=int(rng.integers(1, 1 << 30)), equilibrate=3000)
    progress(f"amorphous: {len(out['amorphous'])} snapshots")
    return out
