"""An ASE calculator whose forces come from LAMMPS on an MPI communicator of any size.

ASE's ``LAMMPSlib`` refuses a LAMMPS running on more than one rank (it reads per-atom energies
rank-locally).  This calculator is for SPMD use: every rank of ``comm`` runs the same Python
(a matscipy or scipy solver, an ASE optimizer) and calls ``get_forces`` with the same atoms;
LAMMPS splits the atoms over the ranks, and the energy and the forces, gathered by atom id, are
broadcast from the group's rank 0 so that every rank's solver sees the same bits and takes
the same steps.  Only the positions change between calls (a new atom count, cell or
periodicity makes a new LAMMPS instance).

Units: ASE's (Å, eV, eV/Å) = LAMMPS ``units metal``.
"""

from __future__ import annotations

import numpy as np
from ase.calculators.calculator import Calculator, all_changes

from .lammps import pair_lines as _pair_lines_of, quiet_lammps


class LammpsCalculator(Calculator):
    """``pair`` (LAMMPS commands setting the pair style for types 1..n = ``elements``, e.g.
    :func:`multiscale.engines.lammps.pair_lines`) on ``comm`` (default MPI_COMM_WORLD: every
    rank must call); ``plugin``: load pair_style multiscale; ``boundary``: LAMMPS' boundary
    for the non-periodic directions ("s": shrink-wrapped, the default, for clusters); masses
    (g/mol) do not enter forces and are set to 1."""

    implemented_properties = ["energy", "free_energy", "forces"]

    def __init__(self, pair: list[str], elements: tuple[str, ...] = ("Si",), comm=None, plugin: bool = False,
                 boundary: str = "s", **kwargs):
        super().__init__(**kwargs)
        from mpi4py import MPI
        self.pair, self.elements, self.plugin, self.boundary = list(pair), tuple(elements), plugin, boundary
        self.comm = comm if comm is not None else MPI.COMM_WORLD
        self.lmp, self._layout = None, None

    @classmethod
    def for_potential(cls, potential: str, elements: tuple[str, ...] = ("Si",), comm=None, **kwargs):
        """``potential`` as a region's: "sw" (native Stillinger-Weber) or a model file."""
        lines, plugin = _pair_lines_of(potential, elements)
        return cls(lines, elements, comm, plugin, **kwargs)

    def _start(self, atoms) -> None:
        """A LAMMPS instance holding ``atoms`` (ids 1..n in ASE's order)."""
        self.close()
        cell = np.asarray(atoms.cell)
        if not np.allclose(cell, np.diag(np.diag(cell))):
            raise ValueError("LammpsCalculator takes an orthogonal cell (a cluster's or an orthorhombic box's); "
                             f"got {cell.tolist()}")
        unknown = sorted(set(atoms.get_chemical_symbols()) - set(self.elements))
        if unknown:
            raise ValueError(f"atoms of {unknown} have no LAMMPS type; the calculator was made for {list(self.elements)}")
        self.lmp = lmp = quiet_lammps(self.plugin, self.comm)
        bounds = " ".join("p" if p else self.boundary for p in atoms.pbc)
        L = [float(v) for v in np.diag(cell)]
        lmp.commands_list(["units metal", "atom_style atomic", "atom_modify map array sort 0 0.0",
                           f"boundary {bounds}",
                           f"region box block 0 {L[0]!r} 0 {L[1]!r} 0 {L[2]!r} units box",
                           f"create_box {len(self.elements)} box",
                           *[f"mass {t + 1} 1.0" for t in range(len(self.elements))]])
        types = [self.elements.index(s) + 1 for s in atoms.get_chemical_symbols()]
        n = len(atoms)
        lmp.create_atoms(n, list(range(1, n + 1)), types, self._wrapped(atoms).ravel().tolist(),
                         shrinkexceed=True)
        if lmp.get_natoms() != n:
            raise RuntimeError(f"LAMMPS kept {lmp.get_natoms()} of {n} atoms: some lie outside the cell's periodic "
                               "directions")
        lmp.commands_list([*self.pair, "neighbor 1.0 bin", "neigh_modify every 1 delay 0 check yes",
                           "thermo_style custom step pe", "thermo_modify lost error norm no",
                           "variable energy equal pe"])
        self._layout = (n, tuple(atoms.get_chemical_symbols()), cell.tobytes(), tuple(atoms.pbc))

    @staticmethod
    def _wrapped(atoms) -> np.ndarray:
        """Positions with the periodic directions wrapped into the cell (LAMMPS' create_atoms
        and scatter_atoms take them as given)."""
        x = atoms.positions.copy()
        L = np.diag(np.asarray(atoms.cell))
        for k in range(3):
            if atoms.pbc[k]:
                x[:, k] = np.mod(x[:, k], L[k])
        return x

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        atoms = self.atoms
        layout = (len(atoms), tuple(atoms.get_chemical_symbols()), np.asarray(atoms.cell).tobytes(),
                  tuple(atoms.pbc))
        if self.lmp is None or layout != self._layout:
            self._start(atoms)
        x = np.ascontiguousarray(self._wrapped(atoms).ravel())
        self.lmp.scatter_atoms("x", 1, 3, np.ctypeslib.as_ctypes(x))
        self.lmp.command("run 0 post no")
        energy = float(self.lmp.extract_variable("energy", None, 0))
        forces = np.ctypeslib.as_array(self.lmp.gather_atoms("f", 1, 3)).reshape(-1, 3).copy()
        # one rank's bits for all: the group's solvers then take identical steps
        energy, forces = self.comm.bcast((energy, forces), root=0)
        self.results = {"energy": energy, "free_energy": energy, "forces": forces}

    def close(self) -> None:
        """End the LAMMPS instance (collective)."""
        if self.lmp is not None:
            lmp, self.lmp = self.lmp, None
            lmp.close()

    clean = close   # LAMMPSlib's name, which FlexibleCrack.close calls
