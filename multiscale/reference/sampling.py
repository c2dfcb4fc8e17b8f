"""Configurations sampled by LAMMPS: MD snapshots and minimisations of ASE structures.

Used to build training sets (driven by a reference potential) and in active learning
(driven by the current model through pair_style multiscale).
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Sequence

import numpy as np
from ase import Atoms
from ase.io.lammpsdata import write_lammps_data

from ..engines.lammps import quiet_lammps


def _structure(lmp, symbols: Sequence[str], pbc) -> Atoms:
    n = lmp.get_natoms()
    ids = np.array(lmp.numpy.extract_atom("id")[:n])
    order = np.argsort(ids)
    x = np.array(lmp.numpy.extract_atom("x")[:n])[order]
    boxlo, boxhi, xy, yz, xz, _, _ = lmp.extract_box()
    lx, ly, lz = (boxhi[k] - boxlo[k] for k in range(3))
    cell = np.array([[lx, 0, 0], [xy, ly, 0], [xz, yz, lz]])
    atoms = Atoms(symbols=list(symbols), positions=x - np.array(boxlo), cell=cell, pbc=pbc)
    atoms.wrap()
    return atoms


def _system(atoms: Atoms, pair_lines: Sequence[str], plugin: bool, elements, commands: Sequence[str]):
    """A quiet LAMMPS holding ``atoms`` (types in the order of ``elements``) with the potential
    ``pair_lines``, after ``commands``; non-periodic directions shrink-wrapped."""
    elements = list(elements or sorted(set(atoms.get_chemical_symbols())))
    lmp = quiet_lammps(plugin)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            data = Path(tmp) / "data.lmp"
            write_lammps_data(str(data), atoms, specorder=elements, masses=True, units="metal",
                              force_skew=True)
            bc = " ".join("p" if p else "s" for p in atoms.pbc)
            lmp.commands_list(["units metal", "atom_style atomic", "atom_modify map array",
                               f"boundary {bc}", f"read_data {data}", *pair_lines, *commands])
    except Exception:
        lmp.close()
        raise
    return lmp


def md_snapshots(atoms: Atoms, pair_lines: Sequence[str], temperature: float, count: int,
                 interval: int = 200, timestep: float = 0.001, seed: int = 1, plugin: bool = False,
                 elements: Sequence[str] | None = None, equilibrate: int = 500) -> list[Atoms]:
    """``count`` snapshots, ``interval`` steps apart, of NVT MD at ``temperature`` K.

    pair_lines: LAMMPS commands that set the potential; plugin: load pair_style multiscale.
    timestep in ps (metal units).  Non-periodic directions use LAMMPS' shrink-wrapped boundary.
    """
    lmp = _system(atoms, pair_lines, plugin, elements, [
        f"timestep {timestep}", f"velocity all create {temperature} {seed} mom yes rot yes dist gaussian",
        f"fix md all nvt temp {temperature} {temperature} {100 * timestep}", "thermo 0",
        f"run {equilibrate}"])
    try:
        out = []
        for _ in range(count):
            lmp.command(f"run {interval} pre no post no")
            out.append(_structure(lmp, atoms.get_chemical_symbols(), atoms.pbc))
        return out
    finally:
        lmp.close()


def minimised(atoms: Atoms, pair_lines: Sequence[str], plugin: bool = False,
              elements: Sequence[str] | None = None, steps: int = 2000) -> Atoms:
    """``atoms`` relaxed by LAMMPS' conjugate gradients (positions only)."""
    lmp = _system(atoms, pair_lines, plugin, elements,
                  ["thermo 0", f"minimize 1e-10 1e-6 {steps} {10 * steps}"])
    try:
        return _structure(lmp, atoms.get_chemical_symbols(), atoms.pbc)
    finally:
        lmp.close()
