"""Labelled structures on disk (extended XYZ or HDF5) and their batched graphs.

A structure is an ASE ``Atoms`` with a reference energy (eV) and forces (eV/Å),
stored by ASE's extxyz writer or in our HDF5 layout:

    numbers (n_atoms_total,) int, positions (n_atoms_total, 3) Å, forces (n_atoms_total, 3) eV/Å,
    offsets (n_structures + 1,) int, cells (n_structures, 3, 3) Å, pbc (n_structures, 3) bool,
    energies (n_structures,) eV, and optionally stresses (n_structures, 6) eV/Å^3 (Voigt
    xx yy zz yz xz xy, ASE's sign; NaN rows for structures without one), total_charges
    (n_structures,) e and multiplicities (n_structures,) (``atoms.info["charge"]``,
    ``["spin"]``), reference atomic charges (n_atoms_total,) e and dipoles (n_structures, 3)
    e Å (NaN where a structure has none), electric_fields (n_structures, 3) V/Å
    (``info["electric_field"]``: a uniform applied field, potential -E.r)

Multitask targets (charges, dipole) live in the structure's calculator results, as ASE's
extxyz writer and reader keep them.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import NamedTuple, Sequence

import numpy as np
import torch
from ase import Atoms
from ase.calculators.singlepoint import SinglePointCalculator

from ..engines import neighbors


def read_structures(path: str | Path) -> list[Atoms]:
    """Structures with energy and forces from ``.xyz``/``.extxyz`` or ``.h5``/``.hdf5``."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"dataset {path} does not exist")
    if path.suffix in (".h5", ".hdf5"):
        import h5py
        with h5py.File(path, "r") as f:
            missing = [k for k in ("numbers", "positions", "forces", "offsets", "cells", "pbc", "energies")
                       if k not in f]
            if missing:
                raise ValueError(f"dataset {path} lacks {missing}; expected the layout in "
                                 "multiscale/training/data.py")
            off = f["offsets"][:]
            numbers, pos, forces = f["numbers"][:], f["positions"][:], f["forces"][:]
            cells, pbc, energies = f["cells"][:], f["pbc"][:], f["energies"][:]
            stresses = f["stresses"][:] if "stresses" in f else None
            q_tot = f["total_charges"][:] if "total_charges" in f else np.zeros(len(energies))
            mult = f["multiplicities"][:] if "multiplicities" in f else np.ones(len(energies), int)
            charges = f["charges"][:] if "charges" in f else None
            dipoles = f["dipoles"][:] if "dipoles" in f else None
            fields = f["electric_fields"][:] if "electric_fields" in f else None
        out = []
        for s in range(len(energies)):
            a, b = off[s], off[s + 1]
            atoms = Atoms(numbers=numbers[a:b], positions=pos[a:b], cell=cells[s], pbc=pbc[s])
            extra = {}
            if stresses is not None and np.isfinite(stresses[s]).all():
                extra["stress"] = stresses[s]
            if charges is not None and np.isfinite(charges[a:b]).all():
                extra["charges"] = charges[a:b]
            if dipoles is not None and np.isfinite(dipoles[s]).all():
                extra["dipole"] = dipoles[s]
            if q_tot[s] != 0 or mult[s] != 1:
                atoms.info.update(charge=float(q_tot[s]), spin=int(mult[s]))
            if fields is not None and np.any(fields[s] != 0):
                atoms.info["electric_field"] = fields[s]
            atoms.calc = SinglePointCalculator(atoms, energy=float(energies[s]), forces=forces[a:b], **extra)
            out.append(atoms)
        return out
    from ase.io import read
    structures = read(path, index=":")
    for k, atoms in enumerate(structures):
        if atoms.calc is None or "energy" not in atoms.calc.results or "forces" not in atoms.calc.results:
            raise ValueError(f"{path}: structure {k} has no energy and forces")
    return structures


def write_structures(path: str | Path, structures: Sequence[Atoms]) -> Path:
    """Write labelled structures as extxyz or HDF5 (by suffix)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix in (".h5", ".hdf5"):
        import h5py
        sizes = [len(a) for a in structures]
        with h5py.File(path, "w") as f:
            f["numbers"] = np.concatenate([a.numbers for a in structures])
            f["positions"] = np.concatenate([a.positions for a in structures])
            f["forces"] = np.concatenate([a.get_forces() for a in structures])
            f["offsets"] = np.concatenate([[0], np.cumsum(sizes)])
            f["cells"] = np.stack([a.cell.array for a in structures])
            f["pbc"] = np.stack([a.pbc for a in structures])
            f["energies"] = np.array([a.get_potential_energy() for a in structures])
            stresses = [_stress(a) for a in structures]
            if any(st is not None for st in stresses):
                f["stresses"] = np.stack([st if st is not None else np.full(6, np.nan) for st in stresses])
            if any("charge" in a.info or "spin" in a.info for a in structures):
                f["total_charges"] = np.array([float(a.info.get("charge", 0.0)) for a in structures])
                f["multiplicities"] = np.array([int(a.info.get("spin", 1)) for a in structures])
            if any("electric_field" in a.info for a in structures):
                f["electric_fields"] = np.stack([np.asarray(a.info.get("electric_field", np.zeros(3)), float)
                                                 for a in structures])
            if any(_result(a, "charges") is not None for a in structures):
                f["charges"] = np.concatenate([_result(a, "charges", np.full(len(a), np.nan)) for a in structures])
            if any(_result(a, "dipole") is not None for a in structures):
                f["dipoles"] = np.stack([_result(a, "dipole", np.full(3, np.nan)) for a in structures])
        return path
    from ase.io import write
    write(path, list(structures), format="extxyz")
    return path


def _result(atoms: Atoms, key: str, default=None):
    """A reference result (``charges``, ``dipole``) of a labelled structure, or ``default``."""
    results = getattr(atoms.calc, "results", {}) if atoms.calc is not None else {}
    return np.asarray(results[key], dtype=float) if key in results else default


def _stress(atoms: Atoms):
    """The reference stress (6,) eV/Å^3 (Voigt) of a labelled structure, or None."""
    if atoms.calc is None or "stress" not in getattr(atoms.calc, "results", {}):
        return None
    return np.asarray(atoms.get_stress(voigt=True), dtype=float)


@dataclasses.dataclass
class GraphBatch:
    """Several structures as one graph (all atoms local).

    species (n,) int64; edge_index (2, E); edge_vectors (E, 3) Å; structure (n,) index of each
    atom's structure; n_atoms (S,); energy (S,) eV; forces (n, 3) eV/Å; volume (S,) Å^3
    (0 where not periodic); stress (S, 3, 3) eV/Å^3 reference (NaN where there is none);
    charge (S,) e and spin (S,) multiplicity of each structure; charges (n,) e reference atomic
    charges and dipole (S, 3) e Å (NaN where there are none); positions (n, 3) Å; field
    (S, 3) V/Å applied uniform field (0 for none).
    """

    species: torch.Tensor
    edge_index: torch.Tensor
    edge_vectors: torch.Tensor
    structure: torch.Tensor
    n_atoms: torch.Tensor
    energy: torch.Tensor
    forces: torch.Tensor
    volume: torch.Tensor
    stress: torch.Tensor
    charge: torch.Tensor
    spin: torch.Tensor
    charges: torch.Tensor
    dipole: torch.Tensor
    positions: torch.Tensor
    field: torch.Tensor

    def to(self, dtype: torch.dtype) -> "GraphBatch":
        return dataclasses.replace(self, edge_vectors=self.edge_vectors.to(dtype),
                                   energy=self.energy.to(dtype), forces=self.forces.to(dtype),
                                   volume=self.volume.to(dtype), stress=self.stress.to(dtype),
                                   charge=self.charge.to(dtype), charges=self.charges.to(dtype),
                                   dipole=self.dipole.to(dtype), positions=self.positions.to(dtype),
                                   field=self.field.to(dtype))


class _Item(NamedTuple):
    """One structure as the dataset holds it (tensors float64; see GraphBatch for units)."""

    species: torch.Tensor
    edge_index: torch.Tensor
    vectors: torch.Tensor
    energy: float
    forces: torch.Tensor
    volume: float
    stress: torch.Tensor
    state: tuple          # (total charge e, multiplicity)
    charges: torch.Tensor
    dipole: torch.Tensor
    positions: torch.Tensor
    field: torch.Tensor


class StructureDataset:
    """Structures with their neighbour lists computed once (positions do not change)."""

    def __init__(self, structures: Sequence[Atoms], elements: Sequence[str], cutoff: float):
        index = {el: k for k, el in enumerate(elements)}
        self.items = []
        for k, atoms in enumerate(structures):
            unknown = sorted(set(atoms.get_chemical_symbols()) - index.keys())
            if unknown:
                raise ValueError(f"structure {k} contains {unknown}; the model's elements are {list(elements)}")
            edge_index, vectors = neighbors.edges(atoms.positions, atoms.cell.array, atoms.pbc, cutoff)
            stress, volume = _stress(atoms), float(atoms.get_volume()) if atoms.pbc.all() else 0.0
            stress = np.full((3, 3), np.nan) if stress is None or volume == 0.0 else \
                stress[[[0, 5, 4], [5, 1, 3], [4, 3, 2]]]
            charges = _result(atoms, "charges", np.full(len(atoms), np.nan))
            dipole = _result(atoms, "dipole", np.full(3, np.nan)) if not atoms.pbc.any() else np.full(3, np.nan)
            self.items.append(_Item(
                torch.tensor([index[s] for s in atoms.get_chemical_symbols()], dtype=torch.long),
                edge_index, vectors,
                float(atoms.get_potential_energy()), torch.tensor(atoms.get_forces(), dtype=torch.float64),
                volume, torch.tensor(stress, dtype=torch.float64),
                (float(atoms.info.get("charge", 0.0)), int(atoms.info.get("spin", 1))),
                torch.tensor(charges, dtype=torch.float64), torch.tensor(dipole, dtype=torch.float64),
                torch.tensor(atoms.positions, dtype=torch.float64),
                torch.tensor(np.asarray(atoms.info.get("electric_field", np.zeros(3)), float))))
        self.structures = list(structures)

    def __len__(self) -> int:
        return len(self.items)

    def batch(self, indices: Sequence[int]) -> GraphBatch:
        species, edges, vectors, structure, forces, energy, sizes = [], [], [], [], [], [], []
        volumes, stresses, states, charges, dipoles, positions, fields = [], [], [], [], [], [], []
        offset = 0
        for s, k in enumerate(indices):
            sp, ei, vec, e, f, vol, st, state, q, mu, pos, field = self.items[k]
            fields.append(field)
            states.append(state)
            charges.append(q)
            dipoles.append(mu)
            positions.append(pos)
            volumes.append(vol)
            stresses.append(st)
            species.append(sp)
            edges.append(ei + offset)
            vectors.append(vec)
            structure.append(torch.full((len(sp),), s, dtype=torch.long))
            forces.append(f)
            energy.append(e)
            sizes.append(len(sp))
            offset += len(sp)
        return GraphBatch(torch.cat(species), torch.cat(edges, 1), torch.cat(vectors),
                          torch.cat(structure), torch.tensor(sizes), torch.tensor(energy, dtype=torch.float64),
                          torch.cat(forces), torch.tensor(volumes, dtype=torch.float64), torch.stack(stresses),
                          torch.tensor([q for q, _ in states], dtype=torch.float64),
                          torch.tensor([m for _, m in states], dtype=torch.long),
                          torch.cat(charges), torch.stack(dipoles), torch.cat(positions), torch.stack(fields))

    def composition(self, n_elements: int) -> np.ndarray:
        """(n_structures, n_elements) counts of each element."""
        return np.stack([np.bincount(item.species.numpy(), minlength=n_elements) for item in self.items])

    def energies(self) -> np.ndarray:
        return np.array([item.energy for item in self.items])

    def has_charges(self) -> bool:
        """Whether any structure has reference atomic charges."""
        return any(bool(torch.isfinite(item.charges).all()) for item in self.items)
